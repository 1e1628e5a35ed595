"""Read-only views of the file trees a build reads: the build context, and an image or stage as
the merge of its layer directories, without mounting anything.

``LayeredFS`` answers ``lstat``/``listdir``/``readlink`` for a path the way overlayfs would show
it over the same layer directories (top first): the topmost layer holding the path wins, a
whiteout hides it, a non-directory hides everything below it, an opaque directory hides the
lower layers' entries. ``resolve`` follows symlinks inside the view (an absolute target means the
view's root, ``..`` stops at the root), as Docker does when it places COPY sources and
destinations. ``ContextFS`` is a directory restricted to the entries a .dockerignore keeps.

Paths are ``/``-separated and relative to the view's root (``""`` is the root). Nothing here
writes; ``real`` gives the host path of an entry so that callers can read its content.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from stackd.drivers.images.whiteouts import Whiteouts

MAX_SYMLINKS = 40
_ROOT_STAT = os.stat_result((stat.S_IFDIR | 0o755, 0, 0, 0, 0, 0, 0, 0, 0, 0))


class ResolveError(Exception):
    """A path cannot be resolved inside the view (a symlink loop)."""


class SourceFS(Protocol):
    """A read-only tree: the build context, or an image's or stage's merged layers."""

    def lstat(self, rel: str) -> os.stat_result | None:
        """The entry's ``lstat``, or ``None`` when the view has no such entry."""

    def listdir(self, rel: str) -> list[str]:
        """The names in directory ``rel``, sorted."""

    def real(self, rel: str) -> Path:
        """The host path holding the entry ``rel`` (which must exist)."""


def norm(path: str) -> str:
    """``path`` as a relative, clean path inside a view (``""`` for its root); ``..`` stops at
    the root, as inside a container."""
    cleaned = posixpath.normpath("/" + path)
    return cleaned.lstrip("/")


def is_dir(fs: SourceFS, rel: str) -> bool:
    st = fs.lstat(rel)
    return st is not None and stat.S_ISDIR(st.st_mode)


def read_text(fs: SourceFS, path: str, limit: int = 1 << 22) -> str | None:
    """The text of the regular file at ``path`` (symlinks followed inside the view), or ``None``
    when there is none."""
    rel = resolve(fs, path)
    st = fs.lstat(rel)
    if st is None or not stat.S_ISREG(st.st_mode):
        return None
    with open(fs.real(rel), "rb") as f:
        return f.read(limit).decode("utf-8", "replace")


def resolve(fs: SourceFS, path: str, *, follow_last: bool = True) -> str:
    """``path`` with every symlink on the way replaced by its target, never leaving the view;
    missing components are kept as written. ``follow_last=False`` keeps a final symlink."""
    todo = [p for p in norm(path).split("/") if p]
    todo.reverse()
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop()
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        here = "/".join([*done, part])
        st = fs.lstat(here)
        if st is not None and stat.S_ISLNK(st.st_mode) and (todo or follow_last):
            hops += 1
            if hops > MAX_SYMLINKS:
                raise ResolveError(f"too many levels of symbolic links in {path!r}")
            target = os.readlink(fs.real(here))
            if target.startswith("/"):
                done = []
            todo.extend(reversed([p for p in target.split("/") if p]))
            continue
        done.append(part)
    return "/".join(done)


class ContextFS:
    """A build context directory, showing only the entries in ``entries`` (what .dockerignore
    keeps, as ``stackd.build.load_context`` lists them) and the directories above them."""

    def __init__(self, root: Path, entries: Iterable[str]) -> None:
        self.root = root
        self.children: dict[str, set[str]] = {"": set()}
        for entry in entries:
            parts = entry.split("/")
            for i in range(len(parts)):
                parent = "/".join(parts[:i])
                self.children.setdefault(parent, set()).add(parts[i])
        self.present = {"/".join(e.split("/")[:i + 1]) for e in entries for i in range(e.count("/") + 1)}

    def lstat(self, rel: str) -> os.stat_result | None:
        if rel and rel not in self.present:
            return None
        try:
            return os.lstat(self.root / rel) if rel else os.stat(self.root)
        except FileNotFoundError:
            return None

    def listdir(self, rel: str) -> list[str]:
        return sorted(self.children.get(rel, ()))

    def real(self, rel: str) -> Path:
        return self.root / rel if rel else self.root


class LayeredFS:
    """The merged view of layer directories (``layers`` top first) in overlayfs's format, with
    ``whiteouts`` telling deletion markers apart."""

    def __init__(self, layers: Sequence[Path], whiteouts: Whiteouts) -> None:
        self.layers = tuple(layers)
        self.whiteouts = whiteouts

    def _walk(self, layer: Path, parts: Sequence[str]) -> tuple[str, Path, os.stat_result | None, bool]:
        """Where ``parts`` leads in one layer: ``found``, ``whiteout`` (deleted here),
        ``blocked`` (a non-directory on the way hides it) or ``missing``; and whether an opaque
        directory on the way hides the lower layers."""
        here = layer
        opaque = False
        for i, part in enumerate(parts):
            here = here / part
            try:
                st = os.lstat(here)
            except (FileNotFoundError, NotADirectoryError):
                return "missing", here, None, opaque
            if self.whiteouts.is_whiteout(here, st):
                return "whiteout", here, st, opaque
            if i == len(parts) - 1:
                return "found", here, st, opaque
            if not stat.S_ISDIR(st.st_mode):
                return "blocked", here, st, opaque
            if self.whiteouts.is_opaque(here):
                opaque = True
        return "found", here, None, opaque

    def _locate(self, rel: str) -> tuple[Path, os.stat_result] | None:
        parts = [p for p in rel.split("/") if p]
        for layer in self.layers:
            kind, path, st, opaque = self._walk(layer, parts)
            if kind == "found" and st is not None:
                return path, st
            if kind in ("whiteout", "blocked") or opaque:
                return None
        return None

    def lstat(self, rel: str) -> os.stat_result | None:
        if not rel:
            return os.stat(self.layers[0]) if self.layers else _ROOT_STAT
        found = self._locate(rel)
        return None if found is None else found[1]

    def listdir(self, rel: str) -> list[str]:
        parts = [p for p in rel.split("/") if p]
        names: set[str] = set()
        hidden: set[str] = set()
        for layer in self.layers:
            kind, path, st, opaque = self._walk(layer, parts) if parts else ("found", layer, None, False)
            if kind in ("whiteout", "blocked"):
                break
            if kind == "found":
                if st is not None and not stat.S_ISDIR(st.st_mode):
                    break
                for name in os.listdir(path):
                    if name in names or name in hidden:
                        continue
                    if self.whiteouts.is_whiteout(path / name, os.lstat(path / name)):
                        hidden.add(name)
                    else:
                        names.add(name)
                if parts and self.whiteouts.is_opaque(path):
                    break
            if opaque:
                break
        return sorted(names)

    def real(self, rel: str) -> Path:
        if not rel and self.layers:
            return self.layers[0]
        found = self._locate(rel)
        if found is None:
            raise FileNotFoundError(rel)
        return found[0]
