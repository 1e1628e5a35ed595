"""``Store``: stackd's sqlite database, one class with the methods of every table.

The tables and their methods live one concern per module (``stacks``, ``containers``, ``ipam``,
``resources``, ``events``); the connection, lock, transactions and durability choices in
``base``; the schema and its migrations in ``schema``. This module only puts them together.
"""

from __future__ import annotations

from stackd.store.containers import ContainerMethods
from stackd.store.events import EventMethods
from stackd.store.ipam import IpamMethods
from stackd.store.resources import ResourceMethods
from stackd.store.stacks import StackMethods


class Store(StackMethods, ContainerMethods, IpamMethods, ResourceMethods, EventMethods):
    """The store at ``path`` (created and migrated when opened). Every method is synchronous and
    short; call them from worker threads (``anyio.to_thread.run_sync``). Close it when done, or
    use it as a context manager."""

    def __enter__(self) -> Store:
        return self
