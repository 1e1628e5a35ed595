"""Table methods of the store for the groups, networks and volumes stackd made for a project:
key in the stack, host name, config hash. Only the SQL of the ``resources`` table lives here.
"""

from __future__ import annotations

import sqlite3

from stackd.store.base import Database
from stackd.store.errors import StoreError
from stackd.store.records import RESOURCE_KINDS, ResourceKind, StoredResource


def _kind(value: str) -> ResourceKind:
    for kind in RESOURCE_KINDS:
        if kind == value:
            return kind
    raise StoreError(f"stored resource kind {value!r} is unknown")


def _check(kind: str) -> None:
    if kind not in RESOURCE_KINDS:
        raise ValueError(f"resource kind must be one of {', '.join(RESOURCE_KINDS)}, got {kind!r}")


def _resource(row: sqlite3.Row) -> StoredResource:
    return StoredResource(kind=_kind(row["kind"]), project=row["project"], key=row["key"],
                          name=row["name"], config_hash=row["config_hash"])


class ResourceMethods(Database):
    def put_resource(self, resource: StoredResource) -> None:
        """Record (or replace) ``resource``, identified by kind, project and key."""
        _check(resource.kind)
        self._write("INSERT OR REPLACE INTO resources (kind, project, key, name, config_hash) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (resource.kind, resource.project, resource.key, resource.name, resource.config_hash))

    def resource(self, kind: ResourceKind, project: str, key: str) -> StoredResource | None:
        _check(kind)
        row = self._read_one("SELECT kind, project, key, name, config_hash FROM resources "
                             "WHERE kind = ? AND project = ? AND key = ?", (kind, project, key))
        return None if row is None else _resource(row)

    def resources(self, project: str, kind: ResourceKind | None = None) -> list[StoredResource]:
        """The resources of ``project`` (of one ``kind``), by kind and key."""
        if kind is not None:
            _check(kind)

        def read() -> tuple[StoredResource, ...]:
            rows = self._read("SELECT kind, project, key, name, config_hash FROM resources "
                              "WHERE project = ? AND (? IS NULL OR kind = ?) ORDER BY kind, key",
                              (project, kind, kind))
            return tuple(_resource(r) for r in rows)

        return list(self._cached(("resources", project, kind), read))

    def remove_resource(self, kind: ResourceKind, project: str, key: str) -> bool:
        """Forget a resource; whether it was recorded."""
        _check(kind)
        return self._write("DELETE FROM resources WHERE kind = ? AND project = ? AND key = ?",
                           (kind, project, key)) > 0
