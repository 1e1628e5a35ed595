"""Store fixtures (see ``support``)."""

from tests.unit.store.support import db_path, store

__all__ = ["db_path", "store"]
