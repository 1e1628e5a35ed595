"""Docker's copy-up: filling an empty volume with what the image has at the mount target.

The copy is ``cp -a --reflink=auto --one-file-system SRC/. DST``: recursive, symlinks copied as
symlinks, hard links kept, and modes, owners, timestamps and extended attributes (file
capabilities, ``user.*``) preserved; the volume's top directory takes the source directory's
owner, mode and times, as in Docker. ``--reflink=auto`` shares blocks on file systems that can
(btrfs, xfs) and copies elsewhere; ``--one-file-system`` never descends into something mounted
under the source. Without root, owners cannot be kept and the copy belongs to the caller.

These functions do the copying and emptying only; when to copy is ``VolumeDriver``'s decision.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stackd.drivers.fsutil import remove_tree
from stackd.drivers.volumes.errors import VolumeError


def is_empty(directory: Path) -> bool:
    with os.scandir(directory) as it:
        return next(it, None) is None


def copy_contents(source: Path, target: Path) -> None:
    """Copy everything in ``source`` into the existing directory ``target`` (see the module text)."""
    cp = shutil.which("cp")
    if cp is None:
        raise VolumeError("cannot fill the volume: 'cp' (GNU coreutils) is not installed")
    argv = [cp, "-a", "--reflink=auto", "--one-file-system", "--", f"{source}/.", str(target)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise VolumeError(f"cannot run {cp}: {exc}") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        shown = "; ".join(lines[:3]) + (f" (and {len(lines) - 3} more)" if len(lines) > 3 else "")
        raise VolumeError(f"copying {source} into the volume failed: {shown or f'exit {done.returncode}'}")


def clear_contents(directory: Path) -> None:
    """Remove everything inside ``directory`` (not the directory itself)."""
    with os.scandir(directory) as it:
        names = [e.name for e in it]
    for name in names:
        remove_tree(directory / name)
