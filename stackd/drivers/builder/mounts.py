"""The root filesystem of a RUN step: an overlay of the stage's layers with a fresh upper
directory, mounted for the step and always unmounted afterwards.

``OverlayMounter`` mounts with ``redirect_dir=off,metacopy=off,index=off`` so that the upper
directory holds the whole change (what ``diff_to_tar`` needs), and names the lower directories
through short symlinks in its scratch directory (as Docker's overlay2 does) so that many layers
fit in the one page the kernel allows for mount options. ``PlainMounter`` is the fake for tests
without root: it "mounts" by making the upper directory itself the root filesystem (the lower
layers are not visible). ``unmount_under`` takes down whatever a crashed build left mounted in
its scratch directory. Side effects: mount(8) and umount(8), nothing else.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from stackd.drivers.mountinfo import mounts_under
from stackd.errors import PermanentDriverError, TransientDriverError

MOUNT_TIMEOUT = 60.0
OVERLAY_OPTIONS = "redirect_dir=off,metacopy=off,index=off"


class Mounter(Protocol):
    """Mounts and unmounts the writable root filesystem of a build step."""

    def mount(self, lowers: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
        """Mount ``lowers`` (top first; may be empty) with ``upper`` on top at ``target``;
        ``work`` is an empty directory on the same filesystem as ``upper``."""

    def unmount(self, target: Path) -> None:
        """Undo ``mount``."""


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=MOUNT_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise TransientDriverError(f"{argv[0]}: no answer within {MOUNT_TIMEOUT:g}s") from exc
    except OSError as exc:
        raise PermanentDriverError(f"cannot run {argv[0]}: {exc}") from exc


class OverlayMounter:
    """The real thing: an overlayfs mount (root only)."""

    def mount(self, lowers: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
        base = upper.parent
        links = base / "l"
        links.mkdir(exist_ok=True)
        names = []
        for i, lower in enumerate(lowers or [self._empty(base)]):
            link = links / str(i)
            if link.is_symlink():
                link.unlink()
            link.symlink_to(lower.resolve())
            names.append(f"l/{i}")
        for d in (upper, work, target):
            d.mkdir(exist_ok=True)
        options = (f"lowerdir={':'.join(names)},upperdir={os.path.relpath(upper, base)},"
                   f"workdir={os.path.relpath(work, base)},{OVERLAY_OPTIONS}")
        done = _run(["mount", "-t", "overlay", "stackd-build", "-o", options, str(target)], cwd=base)
        if done.returncode != 0:
            raise PermanentDriverError(f"cannot mount the build root filesystem at {target}: "
                                       f"{done.stderr.strip() or done.returncode} (overlayfs needs root)")

    @staticmethod
    def _empty(base: Path) -> Path:
        empty = base / "empty"
        empty.mkdir(exist_ok=True)
        return empty

    def unmount(self, target: Path) -> None:
        done = _run(["umount", str(target)])
        if done.returncode != 0:
            lazy = _run(["umount", "-l", str(target)])
            if lazy.returncode != 0:
                raise PermanentDriverError(f"cannot unmount {target}: {done.stderr.strip()}")


class PlainMounter:
    """For tests without root: the root filesystem is the upper directory itself."""

    def __init__(self) -> None:
        self.mounted: dict[Path, Path] = {}

    def mount(self, lowers: Sequence[Path], upper: Path, work: Path, target: Path) -> None:
        upper.mkdir(exist_ok=True)
        work.mkdir(exist_ok=True)
        target.symlink_to(upper)
        self.mounted[target] = upper

    def unmount(self, target: Path) -> None:
        target.unlink()
        del self.mounted[target]


def unmount_under(root: Path) -> None:
    """Unmount everything mounted at or below ``root`` (lazily where a plain unmount fails)."""
    for point in mounts_under(root):
        if _run(["umount", point]).returncode != 0:
            _run(["umount", "-l", point])
