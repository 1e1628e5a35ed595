"""The store: stackd's sqlite database (WAL) of applied stacks and their revisions, containers and
their restart bookkeeping, IPAM subnets and leases, the groups/networks/volumes made per project,
and events.

It remembers; it decides nothing (the planner and reconciler do) and touches nothing on the host
but its own file. Used only by execute, observe, reconcile and the daemon, from worker threads.
Records in and out are frozen dataclasses (``records``); failures are ``StoreError`` (permanent),
``StoreConflictError`` (a broken constraint) or ``StoreBusyError`` (transient).
"""

from stackd.store.base import DEFAULT_PATH, DEFAULT_TIMEOUT, Clock, utc_now
from stackd.store.errors import StoreBusyError, StoreConflictError, StoreError
from stackd.store.records import (
    RESOURCE_KINDS,
    Event,
    JsonScalar,
    ResourceKind,
    StackRevision,
    StoredContainer,
    StoredResource,
    StoredSubnet,
)
from stackd.store.schema import MIGRATIONS, migrate, schema_version
from stackd.store.store import Store

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_TIMEOUT",
    "MIGRATIONS",
    "RESOURCE_KINDS",
    "Clock",
    "Event",
    "JsonScalar",
    "ResourceKind",
    "StackRevision",
    "Store",
    "StoreBusyError",
    "StoreConflictError",
    "StoreError",
    "StoredContainer",
    "StoredResource",
    "StoredSubnet",
    "migrate",
    "schema_version",
    "utc_now",
]
