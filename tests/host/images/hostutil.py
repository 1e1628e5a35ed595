"""Utilities of the image host tests: root and tool checks, a scratch directory named ``stkt-img-*``
that is always unmounted and removed, overlay mounts, and a comparable snapshot of a tree.

Outside CI a missing root or tool skips a test; in CI (``CI`` set) it fails it, because CI runs
as root with the tools installed and a skipped host test there would hide a broken setup.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from stackd.drivers.mountinfo import mounts_under

PREFIX = "stkt-img-"


def need_root() -> None:
    if os.geteuid() != 0:
        message = "this host test needs root"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def need_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (Debian package {package})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def scratch() -> Iterator[Path]:
    """A fresh ``/tmp/stkt-img-*`` directory; on exit (also on failure) every mount under it is
    taken down and the directory removed."""
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        yield root
    finally:
        for point in mounts_under(root):
            if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def mount_overlay(merged: Path, lowers_top_first: Sequence[Path], upper: Path | None = None,
                  work: Path | None = None) -> None:
    """Mount an overlay at ``merged``; read-only when no ``upper`` is given."""
    lowerdir = ":".join(str(p) for p in lowers_top_first)
    opts = f"lowerdir={lowerdir},redirect_dir=off,metacopy=off,index=off"
    if upper is not None and work is not None:
        opts += f",upperdir={upper},workdir={work}"
    merged.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "overlay", f"{PREFIX}overlay", "-o", opts, str(merged)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"mount failed: {result.stderr}"


def umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=True, capture_output=True)


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``root``: type, mode, owner, and content, link target or device."""
    out: dict[str, tuple[object, ...]] = {}
    for top, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(top) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            kind = stat.S_IFMT(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                extra: object = path.read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = st.st_rdev
            else:
                extra = None
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, extra)
    return out
