"""Utilities of the volume host tests: the root check, a scratch directory ``/tmp/stkt-vol-*``
whose mounts are always taken down and which is always removed, child processes that are always
killed, and a comparable snapshot of a tree (with owners and xattrs).

Outside CI a missing root skips a test; in CI (``CI`` set) it fails it, because CI runs as root
and a skipped host test there would hide a broken setup.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from stackd.drivers.mountinfo import mounts_under

PREFIX = "stkt-vol-"


def need_root() -> None:
    if os.geteuid() != 0:
        message = "this host test needs root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh scratch directory; on exit every mount under it is undone and it is removed."""
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        yield root
    finally:
        for point in mounts_under(root):
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def in_new_mount_namespace(script: str) -> Iterator[subprocess.Popen[str]]:
    """Run ``script`` (sh) in a new private mount namespace; it must print ``ready`` once set up,
    then keep running. The process is killed and reaped on exit, which ends the namespace."""
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"namespace setup failed: {line!r} {err}")
        yield proc
    finally:
        proc.kill()
        proc.communicate()


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``root`` and ``root`` itself: type, mode, owner, mtime, xattrs, and
    content, link target or device number; hard links as the group of names sharing an inode."""
    out: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, list[str]] = {}
    for top, dirs, files in os.walk(root):
        for name in sorted(["."] if top == str(root) else []) + sorted(dirs + files):
            path = Path(top) if name == "." else Path(top) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISREG(st.st_mode):
                extra: object = path.read_bytes()
                inodes.setdefault(st.st_ino, []).append(rel)
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = st.st_rdev
            else:
                extra = None
            xattrs = {k: os.getxattr(path, k, follow_symlinks=False)
                      for k in sorted(os.listxattr(path, follow_symlinks=False))}
            mtime = st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else None  # dirs change as we read
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, mtime,
                        tuple(xattrs.items()), extra)
    out["<hard links>"] = tuple(sorted(tuple(sorted(v)) for v in inodes.values() if len(v) > 1))
    return out
