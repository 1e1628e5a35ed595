"""A container's root file system: an overlay of the image's unpacked layers (read-only, shared by
every container of the image) under the container's own writable ``upper`` directory, mounted
at ``rootfs``; and safe reads from inside it.

``mount_overlay`` and ``unmount`` are the side effects (``mount(2)``/``umount2(2)`` through
libc); ``is_mounted`` reads /proc/self/mountinfo. Files of the image are read with
``read_etc`` without ever following a symbolic link out of the root, and ``inside`` resolves a
container path (following the image's symlinks as the container would) to a host path that
stays below the root. Failures are ``PermanentDriverError``s (``TransientDriverError`` for a
busy mount). Nothing here decides which image or container.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from stackd.drivers.images.errors import ImageError
from stackd.drivers.images.members import resolve_dir
from stackd.drivers.runtime.host import read_mountinfo
from stackd.errors import DriverError, PermanentDriverError, TransientDriverError

MNT_DETACH = 2
PAGE = 4096
OVERLAY_OPTIONS = "redirect_dir=off,metacopy=off,index=off"


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def overlay_options(lowers_top_first: Sequence[Path], upper: Path, work: Path) -> str:
    """The mount data of the overlay (``lowerdir=top:...:bottom``)."""
    for path in (*lowers_top_first, upper, work):
        if any(c in str(path) for c in ",:\n"):
            raise PermanentDriverError(f"cannot use {path} in an overlay mount: ',' and ':' are not allowed")
    lower = ":".join(str(p) for p in lowers_top_first)
    return f"lowerdir={lower},upperdir={upper},workdir={work},{OVERLAY_OPTIONS}"


def mount_overlay(target: Path, lowers_top_first: Sequence[Path], upper: Path, work: Path) -> None:
    """Mount the overlay at ``target`` (which must exist)."""
    data = overlay_options(lowers_top_first, upper, work)
    if len(data) >= PAGE:
        raise PermanentDriverError(f"the image has too many layers for one overlay mount at {target} "
                                   f"({len(lowers_top_first)} layers, {len(data)} bytes of options)")
    if _libc().mount(b"overlay", str(target).encode(), b"overlay", 0, data.encode()) != 0:
        code = ctypes.get_errno()
        raise PermanentDriverError(f"cannot mount the root file system at {target}: {os.strerror(code)}")


def is_mounted(target: Path) -> bool:
    """Whether something is mounted at ``target`` (in this mount namespace)."""
    wanted = str(target)
    try:
        return any(e.mount_point == wanted for e in read_mountinfo())
    except DriverError:
        return os.path.ismount(target)


def unmount(target: Path) -> None:
    """Unmount ``target`` if mounted; a busy mount is detached lazily (it goes when unused)."""
    if not is_mounted(target):
        return
    libc = _libc()
    if libc.umount2(str(target).encode(), 0) == 0:
        return
    code = ctypes.get_errno()
    if code == errno.EBUSY and libc.umount2(str(target).encode(), MNT_DETACH) == 0:
        return
    code = ctypes.get_errno() or code
    if code in (errno.EINVAL, errno.ENOENT) and not is_mounted(target):
        return
    kind = TransientDriverError if code == errno.EBUSY else PermanentDriverError
    raise kind(f"cannot unmount {target}: {os.strerror(code)}")


def read_etc(rootfs: Path, name: str) -> str:
    """The text of the container's /etc/``name`` ("" when missing), never following a link."""
    etc = rootfs / "etc"
    if etc.is_symlink() or not etc.is_dir():
        return ""
    try:
        fd = os.open(etc / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return ""
        raise PermanentDriverError(f"cannot read the image's /etc/{name}: {exc.strerror}") from exc
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        return f.read()


def inside(rootfs: Path, path: str) -> Path | None:
    """The host directory that container path ``path`` names (symlinks followed inside the root),
    or ``None`` when it does not exist or is not a directory."""
    try:
        return resolve_dir(rootfs, PurePosixPath(path.lstrip("/")), f"path {path}", create=False)
    except ImageError:
        return None
