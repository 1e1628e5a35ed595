"""Names inside a layer or an archive, confined to their root directory.

``resolve_dir`` is the guard against layer entries that try to leave their layer directory
(``../``, absolute names, symlinks pointing out): every layer write goes through it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from stackd.drivers.images.errors import ImageError

MAX_SYMLINKS = 40


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
