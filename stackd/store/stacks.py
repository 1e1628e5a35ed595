"""Table methods of the store for applied stacks: every desired state ``up`` applied, numbered by
a per-project revision that only ever increases (also across ``forget_stack``).

Only the SQL of the ``stacks`` and ``revision_counters`` tables lives here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from stackd.store.base import Database
from stackd.store.codec import check_strings, dump_json, load_strings, parse_time, time_text
from stackd.store.records import StackRevision

_COLUMNS = "project, revision, files, envs, stack_json, applied_at, options"


def _stack(row: sqlite3.Row) -> StackRevision:
    return StackRevision(project=row["project"], revision=int(row["revision"]),
                         files=load_strings(row["files"], f"files of {row['project']}"),
                         envs=load_strings(row["envs"], f"envs of {row['project']}"),
                         stack_json=row["stack_json"], applied_at=parse_time(row["applied_at"]),
                         options_json=row["options"])


class StackMethods(Database):
    def add_stack_revision(self, project: str, *, files: Sequence[str], envs: Sequence[str] = (),
                           stack_json: str, applied_at: datetime | None = None,
                           options_json: str = "{}") -> StackRevision:
        """Record a newly applied desired state of ``project``; it gets the next revision."""
        file_list = check_strings(files, "files")
        env_list = check_strings(envs, "envs")
        files_text, envs_text = dump_json(file_list), dump_json(env_list)
        when = applied_at if applied_at is not None else self.now()
        when_text = time_text(when)
        with self.transaction():
            self._write("INSERT INTO revision_counters (project, last) VALUES (?, 1) "
                        "ON CONFLICT (project) DO UPDATE SET last = last + 1", (project,))
            row = self._read_one("SELECT last FROM revision_counters WHERE project = ?", (project,))
            assert row is not None
            revision = int(row["last"])
            self._write(f"INSERT INTO stacks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (project, revision, files_text, envs_text, stack_json, when_text, options_json))
        return StackRevision(project, revision, tuple(file_list), tuple(env_list), stack_json,
                             parse_time(when_text), options_json)

    def latest_stack(self, project: str) -> StackRevision | None:
        """The newest revision of ``project`` still kept (None when nothing was applied)."""
        row = self._read_one(f"SELECT {_COLUMNS} FROM stacks WHERE project = ? "
                             "ORDER BY revision DESC LIMIT 1", (project,))
        return None if row is None else _stack(row)

    def latest_revision(self, project: str) -> int | None:
        """The number of the newest revision of ``project`` still kept (without reading it)."""
        row = self._read_one("SELECT MAX(revision) AS r FROM stacks WHERE project = ?", (project,))
        return None if row is None or row["r"] is None else int(row["r"])

    def stack_revision(self, project: str, revision: int) -> StackRevision | None:
        row = self._read_one(f"SELECT {_COLUMNS} FROM stacks WHERE project = ? AND revision = ?",
                             (project, revision))
        return None if row is None else _stack(row)

    def stack_revisions(self, project: str) -> list[StackRevision]:
        """Every kept revision of ``project``, oldest first."""
        rows = self._read(f"SELECT {_COLUMNS} FROM stacks WHERE project = ? ORDER BY revision", (project,))
        return [_stack(r) for r in rows]

    def stack_projects(self) -> list[str]:
        """The projects that have at least one applied stack kept, sorted."""
        return [r["project"] for r in self._read("SELECT DISTINCT project FROM stacks ORDER BY project")]

    def prune_stack_revisions(self, project: str, keep: int) -> int:
        """Drop all but the newest ``keep`` revisions of ``project``; how many were dropped."""
        if keep < 1:
            raise ValueError(f"keep must be at least 1 (use forget_stack to drop all), got {keep}")
        return self._write("DELETE FROM stacks WHERE project = ? AND revision NOT IN "
                           "(SELECT revision FROM stacks WHERE project = ? ORDER BY revision DESC LIMIT ?)",
                           (project, project, keep))

    def forget_stack(self, project: str) -> int:
        """Drop every revision of ``project`` (after ``down``); the revision counter is kept, so
        the next ``up`` continues the numbering. How many revisions were dropped."""
        return self._write("DELETE FROM stacks WHERE project = ?", (project,))
