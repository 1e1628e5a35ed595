"""The k8s-file records conmon writes: parsing, joining partial lines per stream, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stackd.drivers.monitor.logformat import (
    Joiner,
    LogLine,
    Record,
    format_time,
    parse_record,
    parse_time,
)

T0 = "2026-11-29T19:06:54.065067932+00:00"


def test_full_line() -> None:
    record = parse_record(f"{T0} stdout F hello world\n".encode())
    when = datetime(2026, 11, 29, 19, 6, 54, 65067, tzinfo=UTC)
    assert record == Record(when, "stdout", False, "hello world")


def test_partial_stderr_line_keeps_spaces() -> None:
    record = parse_record(f"{T0} stderr P  two  spaces \n".encode())
    assert record is not None
    assert (record.stream, record.partial, record.text) == ("stderr", True, " two  spaces ")


def test_empty_line_and_missing_text() -> None:
    assert parse_record(f"{T0} stdout F \n".encode()) == parse_record(f"{T0} stdout F\n".encode())
    record = parse_record(f"{T0} stdout F \n".encode())
    assert record is not None and record.text == ""


def test_local_time_offset_is_kept() -> None:
    record = parse_record(b"2026-11-29T20:06:54.5+01:00 stdout F x\n")
    assert record is not None
    assert record.time == datetime(2026, 11, 29, 19, 6, 54, 500000, tzinfo=UTC)
    assert record.time.utcoffset() == timedelta(hours=1)


def test_text_that_is_not_utf8_is_replaced_not_fatal() -> None:
    record = parse_record(T0.encode() + b" stdout F caf\xe9\n")
    assert record is not None and record.text == "caf\ufffd"


def test_tags_after_a_colon_are_ignored() -> None:
    record = parse_record(f"{T0} stdout P:extra x\n".encode())
    assert record is not None and record.partial


@pytest.mark.parametrize("raw", [
    b"",
    b"not a log line\n",
    f"{T0} stdin F x\n".encode(),
    f"{T0} stdout X x\n".encode(),
    b"2026-11-29 stdout F x\n" + b"",
    b"2026-11-29T19:06:54 stdout F no zone\n",
    f"{T0}stdout F x\n".encode(),
])
def test_damaged_lines_are_skipped(raw: bytes) -> None:
    assert parse_record(raw) is None


def test_parse_time_needs_a_zone() -> None:
    with pytest.raises(ValueError, match="zone"):
        parse_time("2026-11-29T19:06:54")
    assert parse_time("2026-11-29T19:06:54Z") == datetime(2026, 11, 29, 19, 6, 54, tzinfo=UTC)


def _rec(second: int, stream: str, partial: bool, text: str) -> Record:
    raw = f"2026-01-01T00:00:{second:02d}.000000000Z {stream} {'P' if partial else 'F'} {text}\n"
    record = parse_record(raw.encode())
    assert record is not None
    return record


def test_joiner_joins_pieces_per_stream() -> None:
    joiner = Joiner()
    out = [joiner.feed(r) for r in (
        _rec(1, "stdout", True, "hel"),
        _rec(2, "stderr", False, "oops"),
        _rec(3, "stdout", True, "lo "),
        _rec(4, "stdout", False, "world"),
        _rec(5, "stdout", False, "next"),
    )]
    lines = [line for line in out if line is not None]
    assert [(line.stream, line.text) for line in lines] == [
        ("stderr", "oops"), ("stdout", "hello world"), ("stdout", "next")]
    # a joined line carries the time it began
    assert lines[1].time == datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert joiner.flush() == []


def test_joiner_flush_gives_unfinished_lines_oldest_first() -> None:
    joiner = Joiner()
    pieces = (_rec(3, "stderr", True, "err-"), _rec(1, "stdout", True, "out-"),
              _rec(4, "stdout", True, "more"))
    for record in pieces:
        assert joiner.feed(record) is None
    flushed = joiner.flush()
    assert [(line.stream, line.text, line.partial) for line in flushed] == [
        ("stdout", "out-more", True), ("stderr", "err-", True)]
    assert joiner.flush() == []


def test_with_timestamp_is_utc_rfc3339() -> None:
    plus_one = timezone(timedelta(hours=1))
    line = LogLine(datetime(2026, 11, 29, 20, 6, 54, 65067, tzinfo=plus_one), "stdout", "hi")
    assert line.with_timestamp().text == "2026-11-29T19:06:54.065067Z hi"
    assert line.with_timestamp().stream == "stdout"
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
