"""Reading and following a k8s-file log on disk: tail, since, timestamps, partial lines, a line
still being written, a replaced (rotated) or truncated file, a file that appears late, the end
of a container, and cancellation."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from stackd.drivers.monitor.logformat import LogLine
from stackd.drivers.monitor.logs import LogCursor, follow_logs, read_logs


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def rec(second: int, stream: str, text: str, partial: bool = False) -> bytes:
    return f"2026-01-01T00:00:{second:02d}.123456789Z {stream} {'P' if partial else 'F'} {text}\n".encode()


def append(path: Path, *records: bytes) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(records))


def texts(lines: list[LogLine]) -> list[tuple[str, str]]:
    return [(line.stream, line.text) for line in lines]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "ctr.log"
    append(path, rec(1, "stdout", "one"), rec(2, "stderr", "two"), rec(3, "stdout", "thr", partial=True),
           rec(4, "stdout", "ee"), rec(5, "stdout", "four"))
    return path


def test_read_all_lines_in_order_with_streams(log: Path) -> None:
    assert texts(list(read_logs(log))) == [
        ("stdout", "one"), ("stderr", "two"), ("stdout", "three"), ("stdout", "four")]


def test_tail(log: Path) -> None:
    assert texts(list(read_logs(log, tail=2))) == [("stdout", "three"), ("stdout", "four")]
    assert list(read_logs(log, tail=0)) == []
    assert len(list(read_logs(log, tail=100))) == 4
    with pytest.raises(ValueError, match="negative"):
        list(read_logs(log, tail=-1))


def test_since_is_inclusive_and_applies_before_tail(log: Path) -> None:
    since = datetime(2026, 1, 1, 0, 0, 2, 123456, tzinfo=UTC)
    assert texts(list(read_logs(log, since=since))) == [
        ("stderr", "two"), ("stdout", "three"), ("stdout", "four")]
    assert texts(list(read_logs(log, since=since, tail=1))) == [("stdout", "four")]
    # a joined line counts from the time it began
    after_three_began = datetime(2026, 1, 1, 0, 0, 3, 500000, tzinfo=UTC)
    assert texts(list(read_logs(log, since=after_three_began))) == [("stdout", "four")]
    with pytest.raises(ValueError, match="zone"):
        list(read_logs(log, since=datetime(2026, 1, 1)))


def test_timestamps_prefix_the_text(log: Path) -> None:
    first = next(read_logs(log, timestamps=True))
    assert first.text == "2026-01-01T00:00:01.123456Z one"


def test_unfinished_line_comes_last_marked_partial(tmp_path: Path) -> None:
    path = tmp_path / "ctr.log"
    append(path, rec(1, "stdout", "no newline ", partial=True), rec(2, "stderr", "done"),
           rec(3, "stdout", "yet", partial=True))
    lines = list(read_logs(path))
    assert [(line.text, line.partial) for line in lines] == [("done", False), ("no newline yet", True)]


def test_a_record_still_being_written_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "ctr.log"
    append(path, rec(1, "stdout", "whole"), rec(2, "stdout", "half-written")[:-9])
    assert texts(list(read_logs(path))) == [("stdout", "whole")]


def test_damaged_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "ctr.log"
    append(path, b"junk\n", rec(1, "stdout", "ok"), b"\n")
    assert texts(list(read_logs(path))) == [("stdout", "ok")]


def test_no_file_no_lines(tmp_path: Path) -> None:
    assert list(read_logs(tmp_path / "missing.log")) == []


def test_cursor_finishes_a_replaced_file_then_reads_the_new_one(tmp_path: Path) -> None:
    """conmon's rotation: the old file gets its last records, then a new file is renamed over it."""
    path = tmp_path / "ctr.log"
    append(path, rec(1, "stdout", "a"))
    cursor = LogCursor(path)
    try:
        assert texts(cursor.read()) == [("stdout", "a")]
        with open(path, "ab") as old:
            old.write(rec(2, "stdout", "b") + rec(3, "stdout", "split ", partial=True))
            fresh = tmp_path / "ctr.log.tmp"
            fresh.write_bytes(rec(4, "stdout", "line") + rec(5, "stderr", "c"))
            os.replace(fresh, path)
        assert texts(cursor.read()) == [("stdout", "b"), ("stdout", "split line"), ("stderr", "c")]
        append(path, rec(6, "stdout", "d"))
        assert texts(cursor.read()) == [("stdout", "d")]
    finally:
        cursor.close()


def test_cursor_rereads_a_file_truncated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "ctr.log"
    append(path, rec(1, "stdout", "a long first line"), rec(2, "stdout", "b"))
    cursor = LogCursor(path)
    try:
        assert len(cursor.read()) == 2
        path.write_bytes(rec(3, "stdout", "c"))
        assert texts(cursor.read()) == [("stdout", "c")]
    finally:
        cursor.close()


@pytest.mark.anyio
async def test_follow_sees_lines_written_after_it_started_and_ends_with_the_container(
        log: Path, tmp_path: Path) -> None:
    exit_file = tmp_path / "exit"
    seen: list[LogLine] = []
    with anyio.fail_after(20):
        following = follow_logs(log, tail=1, done=exit_file.exists, poll_interval=0.01)
        async with contextlib.aclosing(following) as lines:
            async for line in lines:
                seen.append(line)
                if line.text == "four":  # the tail of what was there: now the container writes more
                    append(log, rec(6, "stderr", "fi", partial=True), rec(7, "stderr", "ve"))
                elif line.text == "five":
                    append(log, rec(8, "stdout", "six"), rec(9, "stdout", "unterminated", partial=True))
                    exit_file.write_text("0")
    assert [(line.stream, line.text, line.partial) for line in seen] == [
        ("stdout", "four", False), ("stderr", "five", False), ("stdout", "six", False),
        ("stdout", "unterminated", True)]


@pytest.mark.anyio
async def test_follow_waits_for_a_file_that_appears_late(tmp_path: Path) -> None:
    path = tmp_path / "late.log"
    seen: list[str] = []

    async def writer() -> None:
        await anyio.sleep(0.05)
        append(path, rec(1, "stdout", "hello"))

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            async with contextlib.aclosing(follow_logs(path, poll_interval=0.01)) as lines:
                async for line in lines:
                    seen.append(line.text)
                    break
    assert seen == ["hello"]


@pytest.mark.anyio
async def test_follow_carries_on_across_rotation(tmp_path: Path) -> None:
    path = tmp_path / "ctr.log"
    append(path, rec(1, "stdout", "old-1"))
    seen: list[str] = []
    done = False
    with anyio.fail_after(20):
        async with contextlib.aclosing(follow_logs(path, done=lambda: done, poll_interval=0.01)) as lines:
            async for line in lines:
                seen.append(line.text)
                if line.text == "old-1":
                    with open(path, "ab") as old:
                        old.write(rec(2, "stdout", "old-2"))
                        (tmp_path / "new").write_bytes(rec(3, "stdout", "new-1"))
                        os.replace(tmp_path / "new", path)
                elif line.text == "new-1":
                    append(path, rec(4, "stdout", "new-2"))
                    done = True
    assert seen == ["old-1", "old-2", "new-1", "new-2"]


@pytest.mark.anyio
async def test_follow_without_an_end_stops_when_cancelled(log: Path) -> None:
    seen: list[str] = []
    with anyio.fail_after(20), anyio.CancelScope() as scope:
        async for line in follow_logs(log, poll_interval=0.01):
            seen.append(line.text)
            if len(seen) == 4:  # all there is: the follower would wait for more
                scope.cancel()
    assert scope.cancelled_caught
    assert seen == ["one", "two", "three", "four"]


@pytest.mark.anyio
async def test_follow_of_an_ended_container_reads_everything_and_stops(log: Path) -> None:
    with anyio.fail_after(20):
        lines = [line async for line in follow_logs(log, done=lambda: True, since=datetime(
            2026, 1, 1, 0, 0, 4, tzinfo=UTC))]
    assert texts(lines) == [("stdout", "four")]
