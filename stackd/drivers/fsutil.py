"""Filesystem utilities shared by the drivers: temporary sibling names, atomic file writes,
flushing a directory or a filesystem, removing trees that contain read-only directories.

Generic on purpose: nothing here knows about images, containers or volumes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any


def tmp_name(base: str) -> str:
    """A temporary sibling name for ``base``: ``<base>.tmp-<random>`` (what ``gc`` sweeps)."""
    return f"{base}.tmp-{secrets.token_hex(6)}"


def is_tmp_name(name: str) -> bool:
    return ".tmp-" in name


def write_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data``: write a temporary sibling (with ``mode`` when given), flush
    it, rename it over."""
    tmp = path.with_name(tmp_name(path.name))
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Flush every dirty page of the filesystem holding ``path`` (``syncfs``), so that a directory
    of many files is on disk before it is renamed into place; falls back to ``sync``."""
    try:
        libc: Any = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        os.sync()
        return
    try:
        if libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove ``path`` (file or directory tree), also when it holds read-only directories."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        path.unlink()
        return

    if os.geteuid() != 0:  # root may remove entries of read-only directories; others may not
        os.chmod(path, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
        for top, dirs, _files in os.walk(path):
            for d in dirs:
                p = os.path.join(top, d)
                if not os.path.islink(p):
                    os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) | stat.S_IRWXU)
    shutil.rmtree(path)
