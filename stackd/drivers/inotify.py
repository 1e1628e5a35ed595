"""inotify through ctypes: one non-blocking, close-on-exec descriptor watching any number of
paths, read without blocking into ``InotifyEvent``s (``parse_inotify``).

Used by the host watch (conmon's exit files) and by drift repair (writes to the cgroup files of
running containers: a limit written by hand raises ``IN_MODIFY`` on its cgroup directory, so
only those containers need their limits read again). The caller decides what events mean.
"""

from __future__ import annotations

import ctypes
import os
import struct
from dataclasses import dataclass
from pathlib import Path

IN_MODIFY = 0x2
IN_CLOSE_WRITE = 0x8
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE_SELF = 0x400
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x0100_0000
IN_ISDIR = 0x4000_0000
_INOTIFY_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len; then len bytes of NUL-padded name


@dataclass(frozen=True)
class InotifyEvent:
    wd: int
    mask: int
    cookie: int
    name: str


def parse_inotify(data: bytes) -> list[InotifyEvent]:
    """The ``struct inotify_event`` records in one ``read`` of an inotify descriptor."""
    events = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _INOTIFY_EVENT.size:
            raise ValueError(f"truncated inotify event header at byte {offset}")
        wd, mask, cookie, length = _INOTIFY_EVENT.unpack_from(data, offset)
        start = offset + _INOTIFY_EVENT.size
        if start + length > len(data):
            raise ValueError(f"inotify event name at byte {start} runs past the end")
        name = os.fsdecode(data[start:start + length].split(b"\0", 1)[0])
        events.append(InotifyEvent(wd, mask, cookie, name))
        offset = start + length
    return events


class Inotify:
    """One inotify descriptor (``fd``); ``OSError`` when the kernel refuses."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = int(self._libc.inotify_init1(ctypes.c_int(os.O_NONBLOCK | os.O_CLOEXEC)))
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self.fd: int = fd

    def add(self, path: Path | str, mask: int) -> int:
        """Watch ``path`` for ``mask``; the watch descriptor (the same one for a path watched
        already)."""
        wd = int(self._libc.inotify_add_watch(ctypes.c_int(self.fd), ctypes.c_char_p(os.fsencode(path)),
                                              ctypes.c_uint32(mask)))
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_add_watch {path}: {os.strerror(code)}")
        return wd

    def remove(self, wd: int) -> None:
        """Stop watch ``wd`` (gone already: nothing to do)."""
        self._libc.inotify_rm_watch(ctypes.c_int(self.fd), ctypes.c_int(wd))

    def read(self) -> list[InotifyEvent]:
        """Every pending event, without blocking."""
        events: list[InotifyEvent] = []
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return events
            if not data:
                return events
            events.extend(parse_inotify(data))

    def close(self) -> None:
        os.close(self.fd)
