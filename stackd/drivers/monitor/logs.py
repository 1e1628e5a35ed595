"""A container's log, read from the file conmon writes (k8s-file format, see ``logformat``):
``read_logs`` yields what is there now, ``follow_logs`` (async) what is there and what comes
after, until the container has ended and the file is drained, or until it is cancelled.

conmon may replace the file when it grows past ``--log-size-max`` (a new, empty file is
renamed over the old one); a reader that is following finishes the old file through its open
descriptor and carries on with the new one from its start. A file truncated in place is read
again from its start.

This module reads files only: it never writes, removes or rotates them. Blocking reads of
``follow_logs`` run in worker threads (``anyio.to_thread``) so that an event loop never waits on
the disk.
"""

from __future__ import annotations

import collections
import os
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import anyio

from stackd.drivers.monitor.logformat import Joiner, LogLine, Record, parse_record

POLL_INTERVAL = 0.1


class LogCursor:
    """A reading position in a log file that survives the file being replaced or truncated.
    One owner at a time: it is not safe to use from two threads at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.joiner = Joiner()
        self._file: BinaryIO | None = None
        self._identity: tuple[int, int] | None = None
        self._rest = b""

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> bool:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - kept open across calls, closed by close()
        except FileNotFoundError:
            return False
        st = os.fstat(f.fileno())
        self._file, self._identity, self._rest = f, (st.st_dev, st.st_ino), b""
        return True

    def _records(self) -> Iterator[Record]:
        """The records completed in the open file since the last read; a line conmon is still
        writing is kept back until its newline arrives."""
        assert self._file is not None
        while True:
            chunk = self._file.readline()
            if not chunk:
                return
            if not chunk.endswith(b"\n"):
                self._rest += chunk
                return
            raw, self._rest = self._rest + chunk, b""
            record = parse_record(raw)
            if record is not None:
                yield record

    def _switch_if_replaced(self) -> bool:
        """After the open file is drained: move to a new file at the path (or back to the
        start of a truncated one). Whether there is something new to read from."""
        assert self._file is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # removed: what is left is what the descriptor still reads
        if (st.st_dev, st.st_ino) != self._identity:
            self.close()
            return self._open()
        if st.st_size < self._file.tell():
            self._file.seek(0)
            self._rest = b""
            return True
        return False

    def lines(self) -> Iterator[LogLine]:
        """The lines completed since the last read, following a replaced file."""
        if self._file is None and not self._open():
            return
        while True:
            for record in self._records():
                line = self.joiner.feed(record)
                if line is not None:
                    yield line
            if not self._switch_if_replaced():
                return

    def read(self) -> list[LogLine]:
        return list(self.lines())


def _shape(lines: Iterable[LogLine], tail: int | None, since: datetime | None,
           timestamps: bool) -> Iterator[LogLine]:
    if since is not None:
        lines = (line for line in lines if line.time >= since)
    if tail is not None:
        lines = collections.deque(lines, maxlen=tail) if tail > 0 else ()
    for line in lines:
        yield line.with_timestamp() if timestamps else line


def _check(tail: int | None, since: datetime | None) -> None:
    if tail is not None and tail < 0:
        raise ValueError(f"tail must not be negative: {tail}")
    if since is not None and since.tzinfo is None:
        raise ValueError("since must carry a time zone")


def read_logs(path: Path, *, tail: int | None = None, since: datetime | None = None,
              timestamps: bool = False) -> Iterator[LogLine]:
    """The lines in the log file at ``path``, oldest first (none when there is no file).

    ``since`` keeps the lines that began at or after it; ``tail`` then keeps the last ``tail``
    of those; ``timestamps`` puts each line's time in front of its text. A line whose end has
    not been logged comes last, marked ``partial``."""
    _check(tail, since)
    cursor = LogCursor(path)
    try:
        lines = cursor.lines()
        yield from _shape(_then_flushed(lines, cursor.joiner), tail, since, timestamps)
    finally:
        cursor.close()


def _then_flushed(lines: Iterator[LogLine], joiner: Joiner) -> Iterator[LogLine]:
    yield from lines
    yield from joiner.flush()


def _poll(cursor: LogCursor, done: Callable[[], bool] | None) -> tuple[list[LogLine], bool]:
    # the end is looked at before reading: conmon writes the exit file only after the last
    # line, so whatever follows the look is everything there will be
    ended = done() if done is not None else False
    lines = cursor.read()
    if ended:
        lines += cursor.joiner.flush()
    return lines, ended


async def follow_logs(path: Path, *, tail: int | None = None, since: datetime | None = None,
                      timestamps: bool = False, done: Callable[[], bool] | None = None,
                      poll_interval: float = POLL_INTERVAL) -> AsyncGenerator[LogLine, None]:
    """The lines of the log file at ``path`` as they are written: first those already there
    (``tail``, ``since`` and ``timestamps`` as for ``read_logs``), then new ones, checking
    every ``poll_interval`` seconds. Ends once ``done()`` (e.g. "the container's exit file
    exists"; called in a worker thread) is true and the file is drained; without ``done`` it
    follows until cancelled. The file may appear after following began.

    Close it when stopping early (``async with contextlib.aclosing(follow_logs(...))``) so
    that the file is closed at once."""
    _check(tail, since)
    cursor = LogCursor(path)
    try:
        lines, finished = await anyio.to_thread.run_sync(_poll, cursor, done)
        for line in _shape(lines, tail, since, timestamps):
            yield line
        while not finished:
            if not lines:
                await anyio.sleep(poll_interval)
            lines, finished = await anyio.to_thread.run_sync(_poll, cursor, done)
            for line in _shape(lines, None, since, timestamps):
                yield line
    finally:
        cursor.close()
