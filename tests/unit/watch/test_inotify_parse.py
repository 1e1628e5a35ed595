"""Parsing what one read of an inotify descriptor returns: records of a fixed header and a name
padded with NULs to the length the header gives."""

from __future__ import annotations

import os
import struct

import pytest

from stackd.drivers.inotify import (
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_IGNORED,
    IN_ISDIR,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    InotifyEvent,
    parse_inotify,
)
from stackd.drivers.watch import exit_names


def record(wd: int, mask: int, name: bytes = b"", cookie: int = 0, pad_to: int = 16) -> bytes:
    """One ``struct inotify_event`` as the kernel writes it (name NUL-padded to ``pad_to``)."""
    padded = b"" if not name else name + b"\0" * (pad_to - len(name) % pad_to or pad_to)
    return struct.pack("=iIII", wd, mask, cookie, len(padded)) + padded


def test_one_event_with_a_name_padded_with_nuls() -> None:
    data = record(1, IN_CLOSE_WRITE, b"shop-web-1")
    assert len(data) == 16 + 16
    assert parse_inotify(data) == [InotifyEvent(1, IN_CLOSE_WRITE, 0, "shop-web-1")]


def test_a_name_that_fills_its_padding_exactly_still_ends() -> None:
    data = record(1, IN_CREATE, b"a" * 15, pad_to=16)  # 15 bytes + 1 NUL
    assert parse_inotify(data)[0].name == "a" * 15
    data = record(1, IN_CREATE, b"b" * 16, pad_to=16)  # 16 bytes + a whole block of NULs
    assert parse_inotify(data)[0].name == "b" * 16


def test_several_events_in_one_read_keep_their_order_and_fields() -> None:
    data = (record(3, IN_CREATE, b"shop-db-1.Ab12Cd")
            + record(3, IN_CLOSE_WRITE, b"shop-db-1.Ab12Cd", pad_to=32)
            + record(3, IN_MOVED_TO, b"shop-db-1", cookie=77)
            + record(-1, IN_Q_OVERFLOW)
            + record(3, IN_IGNORED))
    assert parse_inotify(data) == [
        InotifyEvent(3, IN_CREATE, 0, "shop-db-1.Ab12Cd"),
        InotifyEvent(3, IN_CLOSE_WRITE, 0, "shop-db-1.Ab12Cd"),
        InotifyEvent(3, IN_MOVED_TO, 77, "shop-db-1"),
        InotifyEvent(-1, IN_Q_OVERFLOW, 0, ""),
        InotifyEvent(3, IN_IGNORED, 0, ""),
    ]


def test_names_that_are_not_utf8_survive_as_file_names() -> None:
    raw = b"caf\xe9-1"
    (event,) = parse_inotify(record(1, IN_CLOSE_WRITE, raw))
    assert os.fsencode(event.name) == raw


def test_nothing_read_is_no_event() -> None:
    assert parse_inotify(b"") == []


@pytest.mark.parametrize("data", [
    record(1, IN_CREATE, b"x")[:10],  # header cut short
    record(1, IN_CREATE, b"shop-web-1")[:-4],  # name runs past the end
    record(1, IN_CREATE, b"x") + b"\0\0\0",  # trailing garbage
])
def test_truncated_reads_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_inotify(data)


def test_exit_names_skip_conmons_temporary_file_but_not_what_is_renamed_to_such_a_name() -> None:
    events = [InotifyEvent(1, IN_CREATE, 0, "shop-db-1.Ab12Cd"),
              InotifyEvent(1, IN_CLOSE_WRITE, 0, "shop-db-1.Ab12Cd"),
              InotifyEvent(1, IN_MOVED_TO, 9, "shop-db-1"),
              InotifyEvent(1, IN_CLOSE_WRITE, 0, "shop-web-1"),
              InotifyEvent(1, IN_MOVED_TO, 10, "custom.name1")]
    assert exit_names(events) == ({"shop-db-1", "shop-web-1", "custom.name1"}, False)


def test_exit_names_skip_directories_and_hidden_files_and_flag_lost_events() -> None:
    events = [InotifyEvent(1, IN_CREATE | IN_ISDIR, 0, "sub"),
              InotifyEvent(1, IN_CLOSE_WRITE, 0, ".tmp"),
              InotifyEvent(-1, IN_Q_OVERFLOW, 0, "")]
    assert exit_names(events) == (set(), True)
    assert exit_names([InotifyEvent(1, IN_IGNORED, 0, "")]) == (set(), True)
