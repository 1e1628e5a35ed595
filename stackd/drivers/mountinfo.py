"""The mount table of a process (``/proc/<pid>/mountinfo``) as data: one parser for every driver.

The runtime reads it for cgroup mounts and features, the cgroups driver for the layout, the
volumes driver for who uses a directory (device and root of each mount), the container driver
for its overlay mounts. Parsing is pure; only ``read_mountinfo`` reads ``/proc``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    """One line of a mountinfo table."""

    mount_id: int
    device: str
    """``major:minor`` of the file system"""
    root: str
    """the directory of the file system that forms the root of the mount"""
    mount_point: str
    fstype: str
    source: str
    super_options: tuple[str, ...] = ()


def unescape(field: str) -> str:
    """A mountinfo path with its octal escapes (``\\040`` for a space, ...) decoded."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """The entries of a mountinfo text, in order; malformed lines are skipped. The optional
    fields before the ``-`` separator (``shared:3`` …) are passed over."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        try:
            dash = fields.index("-", 6)
            options = tuple(fields[dash + 3].split(",")) if len(fields) > dash + 3 else ()
            entries.append(MountEntry(mount_id=int(fields[0]), device=fields[2], root=unescape(fields[3]),
                                      mount_point=unescape(fields[4]), fstype=fields[dash + 1],
                                      source=unescape(fields[dash + 2]), super_options=options))
        except (ValueError, IndexError):
            continue
    return entries
