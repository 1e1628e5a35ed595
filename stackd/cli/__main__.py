"""``python -m stackd.cli`` runs the ``stack`` command."""

from stackd.cli.main import main

main()
