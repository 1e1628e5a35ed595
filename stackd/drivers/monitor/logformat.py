"""The k8s-file log format conmon writes, parsed: one record per file line,
``<RFC3339Nano time> <stdout|stderr> <F|P> <text>``, where ``P`` marks a piece of a line that
had not ended when conmon read it (the rest follows in later records of the same stream) and
``F`` the piece that ends it.

Pure functions and a small joiner that turns records into the container's lines: nothing here
opens files or waits (``logs.py`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Stream = Literal["stdout", "stderr"]
_STREAMS: dict[str, Stream] = {"stdout": "stdout", "stderr": "stderr"}


@dataclass(frozen=True)
class Record:
    """One line of the log file."""

    time: datetime
    stream: Stream
    partial: bool
    text: str


@dataclass(frozen=True)
class LogLine:
    """One line the container wrote: when it began, on which stream, and its text without the
    newline. ``partial`` marks a line whose end had not been logged yet (the container was
    still writing it, or ended without a final newline)."""

    time: datetime
    stream: Stream
    text: str
    partial: bool = False

    def with_timestamp(self) -> LogLine:
        """The same line with its time (UTC, RFC 3339) in front of the text, as
        ``docker logs --timestamps`` shows it."""
        return LogLine(self.time, self.stream, f"{format_time(self.time)} {self.text}", self.partial)


def parse_time(stamp: str) -> datetime:
    """An RFC 3339 time with up to nanoseconds (kept to microseconds) and a zone offset or ``Z``.
    ``ValueError`` when malformed or without a zone."""
    value = datetime.fromisoformat(stamp)
    if value.tzinfo is None:
        raise ValueError(f"time without a zone: {stamp!r}")
    return value


def format_time(value: datetime) -> str:
    """``value`` in UTC as ``2006-01-02T15:04:05.000000Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_record(raw: bytes) -> Record | None:
    """One file line (with or without its newline) as a record; ``None`` when it is not one
    (a damaged or foreign line is skipped, never fatal)."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    parts = raw.split(b" ", 3)
    if len(parts) < 3:
        return None
    stamp, name, tags = (p.decode("ascii", errors="replace") for p in parts[:3])
    stream = _STREAMS.get(name)
    if stream is None:
        return None
    tag = tags.split(":", 1)[0]
    if tag not in ("F", "P"):
        return None
    try:
        when = parse_time(stamp)
    except ValueError:
        return None
    text = parts[3].decode("utf-8", errors="replace") if len(parts) == 4 else ""
    return Record(when, stream, tag == "P", text)


class Joiner:
    """Joins the pieces of partial lines, per stream, into whole lines."""

    def __init__(self) -> None:
        self._pending: dict[Stream, list[Record]] = {}

    def feed(self, record: Record) -> LogLine | None:
        """The line ``record`` completes, or ``None`` when it is a piece to wait on."""
        pieces = self._pending.setdefault(record.stream, [])
        pieces.append(record)
        if record.partial:
            return None
        del self._pending[record.stream]
        return LogLine(pieces[0].time, record.stream, "".join(p.text for p in pieces))

    def flush(self) -> list[LogLine]:
        """The lines still waiting for their end, as partial lines, oldest first; forgets them."""
        lines = [LogLine(pieces[0].time, stream, "".join(p.text for p in pieces), partial=True)
                 for stream, pieces in self._pending.items() if pieces]
        self._pending.clear()
        return sorted(lines, key=lambda line: line.time)
