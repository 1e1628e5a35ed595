"""The edge between stackd and a runtime binary: checking container ids, opening the files a
container's streams go to, reading a runtime's JSON log, and turning foreign failures into
``TransientDriverError`` (worth retrying: busy, interrupted, out of a resource for now) or
``PermanentDriverError`` (everything else).

Used by ``runtime.py``; these functions open files but never start processes.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from stackd.errors import DriverError, PermanentDriverError, TransientDriverError

StdioTarget = Path | int | IO[Any] | None
"""Where a container's stream goes: a file path (appended to), a file descriptor, an open file,
or ``None`` for /dev/null."""

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$")
_TRANSIENT = ("resource temporarily unavailable", "device or resource busy", "interrupted system call",
              "try again", "timed out", "cannot allocate memory", "too many open files")


def check_id(container_id: str) -> str:
    """``container_id`` if it is a safe container id (no path separators, not too long)."""
    if not _ID.match(container_id):
        raise PermanentDriverError(f"invalid container id {container_id!r}")
    return container_id


def error_class(message: str) -> type[DriverError]:
    """Transient when the runtime's message says the failure may pass, else permanent."""
    lower = message.lower()
    return TransientDriverError if any(t in lower for t in _TRANSIENT) else PermanentDriverError


def os_error(what: str, exc: OSError) -> DriverError:
    """A failure to start the runtime binary itself."""
    if isinstance(exc, FileNotFoundError | PermissionError):
        return PermanentDriverError(f"{what}: cannot execute: {exc}")
    return TransientDriverError(f"{what}: {exc}")


def log_errors(path: Path) -> str:
    """The error lines of a runtime's JSON log file (its own failures, not the container's)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    errors = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal", "panic"):
            errors.append(str(entry.get("msg", "")).strip())
    return "\n".join(e for e in errors if e)


@contextlib.contextmanager
def stdio(target: StdioTarget, mode: str) -> Iterator[int | IO[Any]]:
    """What to hand ``subprocess`` for one of the container's streams; a path is opened with
    ``mode`` and closed on exit (the container keeps its own copy of the descriptor)."""
    if target is None:
        yield subprocess.DEVNULL
    elif isinstance(target, Path):
        try:
            f = open(target, mode)  # noqa: SIM115 - closed below, after the child has it
        except OSError as exc:
            raise PermanentDriverError(f"cannot open {target}: {exc.strerror}") from exc
        with f:
            yield f
    else:
        yield target
