"""How deletions are written into (and recognised in) an unpacked layer directory.

overlayfs marks a deleted entry with a 0/0 character device of the same name and a directory
whose lower contents are hidden with the xattr ``trusted.overlay.opaque=y``. Both need root
(mknod, trusted.* xattrs). ``OverlayWhiteouts`` is the real implementation; ``MemoryWhiteouts``
is the in-memory fake the unit tests use: it writes empty regular files and remembers which
inodes are whiteouts or opaque, so unpacking and diffing can be tested without root. Nothing
here decides *which* entries are whiteouts; that is the layer code's job.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Protocol

from stackd.errors import PermanentDriverError

OPAQUE_XATTR = "trusted.overlay.opaque"
OVERLAY_XATTR_PREFIX = "trusted.overlay."


class Whiteouts(Protocol):
    """Writes and recognises overlayfs deletion markers."""

    def make_whiteout(self, path: Path) -> None:
        """Create the marker that hides ``path`` of the layers below (nothing exists at ``path``)."""

    def make_opaque(self, directory: Path) -> None:
        """Mark ``directory`` so that the layers below contribute none of its entries."""

    def is_whiteout(self, path: Path, st: os.stat_result) -> bool:
        """Whether ``path`` (with lstat result ``st``) is a deletion marker."""

    def is_opaque(self, directory: Path) -> bool:
        """Whether ``directory`` is marked opaque."""


class OverlayWhiteouts:
    """overlayfs's own form: 0/0 character devices and ``trusted.overlay.opaque=y``."""

    def make_whiteout(self, path: Path) -> None:
        try:
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        except PermissionError as exc:
            raise PermanentDriverError(
                f"cannot create the overlay whiteout {path}: creating a 0/0 character device "
                "needs root (run stackd as root)") from exc

    def make_opaque(self, directory: Path) -> None:
        try:
            os.setxattr(directory, OPAQUE_XATTR, b"y", follow_symlinks=False)
        except PermissionError as exc:
            raise PermanentDriverError(
                f"cannot mark {directory} opaque: setting {OPAQUE_XATTR} needs root "
                "(run stackd as root)") from exc
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                raise PermanentDriverError(
                    f"cannot mark {directory} opaque: its filesystem has no trusted.* xattrs "
                    "(keep the image store on ext4, xfs or btrfs)") from exc
            raise

    def is_whiteout(self, path: Path, st: os.stat_result) -> bool:
        return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)

    def is_opaque(self, directory: Path) -> bool:
        try:
            return os.getxattr(directory, OPAQUE_XATTR, follow_symlinks=False) == b"y"
        except OSError:
            return False


class MemoryWhiteouts:
    """A fake for tests without root: empty regular files, remembered here by inode (so the
    marks survive the rename of a layer directory into place)."""

    def __init__(self) -> None:
        self.whiteouts: set[tuple[int, int]] = set()
        self.opaque: set[tuple[int, int]] = set()

    def make_whiteout(self, path: Path) -> None:
        path.touch(mode=0o000, exist_ok=False)
        self.whiteouts.add(_inode(path.lstat()))

    def make_opaque(self, directory: Path) -> None:
        self.opaque.add(_inode(directory.lstat()))

    def is_whiteout(self, path: Path, st: os.stat_result) -> bool:
        return stat.S_ISREG(st.st_mode) and st.st_size == 0 and stat.S_IMODE(st.st_mode) == 0 \
            and _inode(st) in self.whiteouts

    def is_opaque(self, directory: Path) -> bool:
        return _inode(directory.lstat()) in self.opaque


def _inode(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino
