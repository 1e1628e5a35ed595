"""The last healthcheck result of a container, kept beside it (``health.json``), so that ``ps``
and later waits see what the last probe found, whoever ran it.

The file is written atomically and goes with the container's directory. A result belongs to
one run of the container (its ``started_at``): ``current`` ignores one left from an earlier run.
Reading and writing this one file is all this module does; the rules that turn probe results
into a health are the caller's.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from stackd.drivers.fsutil import write_atomic
from stackd.drivers.host import HealthRecord
from stackd.errors import PermanentDriverError

_STATUSES = ("none", "starting", "healthy", "unhealthy")


def write_health(path: Path, record: HealthRecord) -> None:
    if not path.parent.is_dir():
        raise PermanentDriverError(f"no such container: {path.parent.name}")
    try:
        write_atomic(path, json.dumps(dataclasses.asdict(record), sort_keys=True).encode())
    except OSError as exc:
        raise PermanentDriverError(f"cannot write {path}: {exc.strerror or exc}") from exc


def read_health(path: Path) -> HealthRecord | None:
    """The record at ``path``; ``None`` when there is none or it cannot be read."""
    try:
        raw = json.loads(path.read_bytes())
        record = HealthRecord(status=raw["status"], failing_streak=int(raw["failing_streak"]),
                              output=str(raw["output"]), checked_at=str(raw["checked_at"]),
                              started_at=None if raw.get("started_at") is None else str(raw["started_at"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return record if record.status in _STATUSES else None


def current(record: HealthRecord | None, started_at: str | None, running: bool) -> HealthRecord | None:
    """``record`` if it is about the run that started at ``started_at`` and that run goes on."""
    if record is None or not running or record.started_at != started_at:
        return None
    return record
