"""Table methods of the store for containers: what stackd remembers about each container it made
(config hash and parts, image, group) and the restart bookkeeping the reconciler keeps as data
(restarts, last exit code, backoff deadline, stopped by the user).

Updates of one field return the record as it is afterwards, or None when no such container is
recorded (it was removed meanwhile): the caller decides whether that matters. Only the SQL of
the ``containers`` table lives here.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from stackd.store.base import Database, Param
from stackd.store.codec import dump_json, load_str_map, opt_parse_time, opt_time_text, parse_time, time_text
from stackd.store.records import StoredContainer

_COLUMNS = ("name, project, service, number, config_hash, config_parts, image_id, grp, created_at, "
            "restarts, last_exit_code, stopped_by_user, backoff_until")


def _container(row: sqlite3.Row) -> StoredContainer:
    return StoredContainer(
        name=row["name"], project=row["project"], service=row["service"], number=int(row["number"]),
        config_hash=row["config_hash"],
        config_parts=load_str_map(row["config_parts"], f"config parts of {row['name']}"),
        image_id=row["image_id"], group=row["grp"], created_at=parse_time(row["created_at"]),
        restarts=int(row["restarts"]), last_exit_code=row["last_exit_code"],
        stopped_by_user=bool(row["stopped_by_user"]), backoff_until=opt_parse_time(row["backoff_until"]))


def _params(c: StoredContainer) -> tuple[Param, ...]:
    if c.restarts < 0:
        raise ValueError(f"container {c.name}: restarts cannot be negative ({c.restarts})")
    return (c.name, c.project, c.service, c.number, c.config_hash, dump_json(dict(c.config_parts)),
            c.image_id, c.group, time_text(c.created_at), c.restarts, c.last_exit_code,
            int(c.stopped_by_user), opt_time_text(c.backoff_until))


class ContainerMethods(Database):
    def put_container(self, container: StoredContainer) -> None:
        """Record ``container``, replacing any record of the same name (a recreated container
        starts with the counters the caller gives, normally zero)."""
        self._write(f"INSERT OR REPLACE INTO containers ({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _params(container))

    def container(self, name: str) -> StoredContainer | None:
        row = self._read_one(f"SELECT {_COLUMNS} FROM containers WHERE name = ?", (name,))
        return None if row is None else _container(row)

    def containers(self, project: str | None = None) -> list[StoredContainer]:
        """Every recorded container (of ``project``), by project, service and number."""
        where, params = ("WHERE project = ?", (project,)) if project is not None else ("", ())

        def read() -> tuple[StoredContainer, ...]:
            rows = self._read(f"SELECT {_COLUMNS} FROM containers {where} "
                              "ORDER BY project, service, number, name", params)
            return tuple(_container(r) for r in rows)

        return list(self._cached(("containers", project), read))

    def remove_container(self, name: str) -> bool:
        """Forget ``name``; whether it was recorded."""
        return self._write("DELETE FROM containers WHERE name = ?", (name,)) > 0

    def _update(self, name: str, assignments: str, params: tuple[Param, ...]) -> StoredContainer | None:
        with self.transaction():
            if not self._write(f"UPDATE containers SET {assignments} WHERE name = ?", (*params, name)):
                return None
            return self.container(name)

    def record_exit(self, name: str, exit_code: int) -> StoredContainer | None:
        """Note that ``name`` exited with ``exit_code``."""
        return self._update(name, "last_exit_code = ?", (exit_code,))

    def record_restart(self, name: str, *, backoff_until: datetime | None) -> StoredContainer | None:
        """Count one restart of ``name`` and set when the next one may happen at the earliest."""
        return self._update(name, "restarts = restarts + 1, backoff_until = ?",
                            (opt_time_text(backoff_until),))

    def reset_restarts(self, name: str) -> StoredContainer | None:
        """Clear the restart count and backoff of ``name`` (it ran long enough, or the user acted)."""
        return self._update(name, "restarts = 0, backoff_until = NULL", ())

    def set_stopped_by_user(self, name: str, stopped: bool) -> StoredContainer | None:
        """Mark ``name`` as stopped by the user (``stop``) or not (``start``, ``up``)."""
        return self._update(name, "stopped_by_user = ?", (int(stopped),))

    def set_restart_state(self, name: str, *, restarts: int,
                          backoff_until: datetime | None) -> StoredContainer | None:
        """Set the restart count of ``name`` (restarts made in a row) and when the next one is due."""
        if restarts < 0:
            raise ValueError(f"container {name}: restarts cannot be negative ({restarts})")
        return self._update(name, "restarts = ?, backoff_until = ?", (restarts, opt_time_text(backoff_until)))
