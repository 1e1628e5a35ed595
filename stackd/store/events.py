"""Table methods of the store for events: what happened to which resource of which project, in
order. Ids only increase and are never reused, so ``events_since(last_seen)`` is a cursor that
survives pruning. Only the SQL of the ``events`` table lives here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime

from stackd.store.base import Database
from stackd.store.codec import check_scalar_map, dump_json, load_scalar_map, parse_time, time_text
from stackd.store.records import Event, JsonScalar

_COLUMNS = "id, ts, project, resource, kind, message, data"


def _event(row: sqlite3.Row) -> Event:
    return Event(id=int(row["id"]), ts=parse_time(row["ts"]), project=row["project"],
                 resource=row["resource"], kind=row["kind"], message=row["message"],
                 data=load_scalar_map(row["data"], f"data of event {row['id']}"))


class EventMethods(Database):
    def add_event(self, project: str, resource: str, kind: str, message: str,
                  data: Mapping[str, JsonScalar] | None = None, *, ts: datetime | None = None) -> Event:
        """Record an event; it is stamped with the store's clock unless ``ts`` is given."""
        plain = check_scalar_map(data or {}, "event data")
        when = time_text(ts if ts is not None else self.now())
        new_id = self._insert(f"INSERT INTO events ({_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?)",
                              (when, project, resource, kind, message, dump_json(plain)))
        return Event(new_id, parse_time(when), project, resource, kind, message, plain)

    def events_since(self, after: int, *, project: str | None = None,
                     limit: int | None = None) -> list[Event]:
        """Events with an id greater than ``after`` (0: from the start), oldest first; only those
        of ``project`` when given; at most ``limit``."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        rows = self._read(f"SELECT {_COLUMNS} FROM events WHERE id > ? AND (? IS NULL OR project = ?) "
                          "ORDER BY id LIMIT ?", (after, project, project, -1 if limit is None else limit))
        return [_event(r) for r in rows]

    def last_event_id(self) -> int:
        """The id of the newest event ever recorded (0 when none was): where a follower starts."""
        row = self._read_one("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        return 0 if row is None else int(row["seq"])

    def prune_events(self, keep: int) -> int:
        """Drop all but the newest ``keep`` events; how many were dropped."""
        if keep < 0:
            raise ValueError(f"keep cannot be negative, got {keep}")
        return self._write("DELETE FROM events WHERE id NOT IN "
                           "(SELECT id FROM events ORDER BY id DESC LIMIT ?)", (keep,))
