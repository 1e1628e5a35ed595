"""Errors of the store, and the one place sqlite's exceptions are classified.

``StoreBusyError`` (transient): the database stayed locked by another writer longer than the busy
timeout; worth retrying. ``StoreConflictError`` (permanent): a write broke a constraint (an
address leased twice on one network, a lease on a network without a subnet). ``StoreError``
(permanent): anything else (a damaged file, a schema newer than this stackd, a closed store).
This module only defines classes and ``translate``; it must not import anything else of the store.
"""

from __future__ import annotations

import sqlite3

from stackd.errors import PermanentDriverError, StackdError, TransientDriverError


class StoreError(PermanentDriverError):
    """The store cannot do what was asked, and retrying will not help."""


class StoreConflictError(StoreError):
    """A write broke a constraint of the schema (unique address, missing subnet, ...)."""


class StoreBusyError(TransientDriverError):
    """Another writer held the database longer than the busy timeout."""


def translate(exc: sqlite3.Error, where: str) -> StackdError:
    """The stackd error for a sqlite failure during ``where`` (callers ``raise ... from exc``)."""
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreConflictError(f"{where}: {text}")
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreBusyError(f"{where}: the database is busy ({text}); try again")
    if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
        return StoreError(f"{where}: {text} (the file is not a stackd database; move it away)")
    return StoreError(f"{where}: {text}")
