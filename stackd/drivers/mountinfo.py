"""The mount table of a process (``/proc/<pid>/mountinfo``) as data: one parser for every driver.

The runtime reads it for cgroup mounts and features, the cgroups driver for the layout, the
volumes driver for who uses a directory (device and root of each mount), the container driver
for its overlay mounts, the builder and the tests for what is mounted under a directory.
Parsing is pure; ``mounts_under`` reads ``/proc/self/mountinfo``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root`` in this mount namespace, deepest first."""
    prefix = str(root).rstrip("/")
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            entries = parse_mountinfo(f.read())
    except OSError:
        return []
    points = [e.mount_point for e in entries
              if e.mount_point == prefix or e.mount_point.startswith(prefix + "/")]
    return sorted(points, key=len, reverse=True)
