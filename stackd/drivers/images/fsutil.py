"""Filesystem utilities of the image store: path resolution confined to a directory, atomic file
writes, flushing a filesystem, removing trees that contain read-only directories.

``resolve_dir`` is the guard against layer entries that try to leave their layer directory
(``../``, absolute names, symlinks pointing out): every layer write goes through it. The functions
here decide nothing about images; they must stay generic.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from stackd.drivers.images.errors import ImageError

MAX_SYMLINKS = 40


def tmp_name(base: str) -> str:
    """A temporary sibling name for ``base``: ``<base>.tmp-<random>`` (what ``gc`` sweeps)."""
    return f"{base}.tmp-{secrets.token_hex(6)}"


def is_tmp_name(name: str) -> bool:
    return ".tmp-" in name


def clean_member_name(name: str, what: str) -> PurePosixPath:
    """A tar member name as a relative path inside the archive root, or ``ImageError`` when it is
    absolute or climbs out with ``..``. ``./`` prefixes and trailing slashes are dropped."""
    if not name or "\0" in name:
        raise ImageError(f"{what}: empty or NUL-containing entry name {name!r}")
    if name.startswith("/"):
        raise ImageError(f"{what}: entry {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageError(f"{what}: entry {name!r} climbs out of the archive with '..'")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def resolve_dir(root: Path, rel: PurePosixPath, what: str, *, create: bool = True) -> Path:
    """The real directory that ``root/rel`` names, following symlinks as a container would (an
    absolute target is relative to ``root``) but never leaving ``root``. Missing directories are
    created (mode 0755) when ``create``; a symlink that points out of ``root`` is an error."""
    todo = [p for p in rel.parts if p not in ("", ".")]
    todo.reverse()
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                raise ImageError(f"{what}: path {str(rel)!r} leads out of the layer through a symlink")
            done.pop()
            continue
        here = root.joinpath(*done, part)
        try:
            st = here.lstat()
        except FileNotFoundError:
            if not create:
                raise ImageError(f"{what}: directory {'/'.join([*done, part])!r} does not exist") from None
            here.mkdir(mode=0o755)
            done.append(part)
            continue
        if stat.S_ISDIR(st.st_mode):
            done.append(part)
        elif stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINKS:
                raise ImageError(f"{what}: too many levels of symlinks in {str(rel)!r}")
            target = os.readlink(here)
            if target.startswith("/"):
                done = []
            todo.extend(reversed(target.split("/")))
        else:
            raise ImageError(f"{what}: {'/'.join([*done, part])!r} is not a directory")
    return root.joinpath(*done)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: write a temporary sibling, flush it, rename it over."""
    tmp = path.with_name(tmp_name(path.name))
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
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
