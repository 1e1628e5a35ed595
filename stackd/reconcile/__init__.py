"""The reconciler: keeps every stack applied through the daemon in its declared state (``loop``),
one pass at a time (``passes``), with restart decisions (``restarts``), the desired state as kept
in the store (``desired``) and the events it journals (``journal``)."""

from stackd.reconcile.desired import Desired, options_json, widen
from stackd.reconcile.journal import Journal
from stackd.reconcile.loop import Reconciler
from stackd.reconcile.passes import Settings

__all__ = ["Desired", "Journal", "Reconciler", "Settings", "options_json", "widen"]
