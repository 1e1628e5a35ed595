"""Whether a directory is mounted anywhere on the host: in this mount namespace or in any other
(a container's), read from ``/proc/<pid>/mountinfo``.

A container sees a volume through a bind mount made in its own mount namespace, which the host's
mount table does not show. But every mountinfo line names the device and the path *inside that
file system* that forms the mount's root, so a bind mount of ``<volumes>/x/_data`` shows up in
the container's table with root ``/var/lib/stackd/volumes/x/_data`` (relative to its file
system) whatever the mount point is called inside. ``find_uses`` reads one table per mount
namespace and reports every mount whose root is the directory or below it, plus every mount
point at or below it in our own namespace.

Complete only as root: other users' namespaces cannot be read and are skipped. The parsing and
matching functions are pure; only ``find_uses`` reads ``/proc``. Nothing here changes anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stackd.drivers.mountinfo import MountEntry, parse_mountinfo


@dataclass(frozen=True, order=True)
class MountUse:
    """A mount of (a part of) the directory: seen by process ``pid`` at ``mount_point``."""

    pid: int
    mount_point: str


def is_under(path: str, base: str) -> bool:
    """Whether ``path`` is ``base`` or inside it (both absolute and normalised)."""
    return base in (path, "/") or path.startswith(base.rstrip("/") + "/")


def containing_mount(entries: list[MountEntry], path: str) -> MountEntry | None:
    """The mount that ``path`` (absolute, no symlinks) is on: the last-mounted one among those
    with the longest mount point above it."""
    best: MountEntry | None = None
    for e in entries:
        if is_under(path, e.mount_point) and (best is None or len(e.mount_point) >= len(best.mount_point)):
            best = e
    return best


def fs_path(entry: MountEntry, path: str) -> str:
    """Where ``path`` (on ``entry``'s mount) is inside its file system."""
    rest = path[len(entry.mount_point.rstrip("/")):].lstrip("/")
    root = entry.root.rstrip("/")
    return f"{root}/{rest}" if rest else (root or "/")


def uses_in(entries: list[MountEntry], device: str, fs_dir: str) -> list[MountEntry]:
    """The entries that mount ``fs_dir`` of file system ``device``, or something inside it."""
    return [e for e in entries if e.device == device and is_under(e.root, fs_dir)]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def find_uses(directory: Path, proc: Path = Path("/proc")) -> list[MountUse]:
    """Every mount, in any mount namespace this process can read, of ``directory`` or something
    inside it, and every mount point at or below it in this namespace; sorted, one process per
    namespace."""
    real = os.path.realpath(directory)
    own_text = _read(proc / "self" / "mountinfo")
    if own_text is None:
        return []
    own = parse_mountinfo(own_text)
    me = os.getpid()
    uses = {MountUse(me, e.mount_point) for e in own if is_under(e.mount_point, real)}
    host = containing_mount(own, real)
    if host is None:
        return sorted(uses)
    device, fs_dir = host.device, fs_path(host, real)
    seen: set[str] = set()
    for entry in _pids(proc):
        try:
            ns = os.readlink(proc / entry / "ns" / "mnt")
        except OSError:
            continue
        if ns in seen:
            continue
        seen.add(ns)
        text = _read(proc / entry / "mountinfo")
        if text is None:
            continue
        found = uses_in(parse_mountinfo(text), device, fs_dir)
        uses.update(MountUse(int(entry), e.mount_point) for e in found)
    return sorted(uses)


def _pids(proc: Path) -> list[str]:
    try:
        return sorted((n for n in os.listdir(proc) if n.isdigit()), key=int)
    except OSError:
        return []
