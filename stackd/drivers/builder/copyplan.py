"""Where COPY and ADD put things: Docker's source and destination rules, as a list of layer entries.

``plan_copy`` reads the sources from one ``SourceFS`` (the build context, a stage, an image) and
places them in the image being built, seen through another (its layers so far):

- A relative destination is relative to WORKDIR. A destination ending in ``/`` (or ``.``), one
  that is an existing directory in the image, and the destination of several sources (named, or
  matched by one wildcard) is a directory: files go into it under their own names. Otherwise a
  single file is copied *to* the destination path. More than one named source needs a ``/``.
- A source directory copies its contents (not itself) into the destination directory, which is
  created with the source directory's permissions when it does not exist; a source named
  directly that is a symlink is followed (inside its tree), symlinks below it are copied as they
  are. ``--parents`` keeps each source's path under the destination.
- Missing parent directories are created (0755); symlinks in the image along the destination
  are followed, so ``COPY x /bin/`` lands in ``/usr/bin`` of a merged-/usr image rather than
  replacing the link with a directory.
- Everything copied is owned by root, or by ``--chown``; ``--chmod`` changes the permission bits
  of what is copied (not of the parents created). ``--exclude`` patterns leave entries out.
- ADD unpacks local tar archives (plain, gzip, bzip2, xz) into the destination directory.

Pure apart from reading the two trees (``lstat``, ``listdir``, archive headers).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from stackd.build.globs import match_regex
from stackd.build.ignore import IgnoreMatcher
from stackd.build.lexer import Heredoc
from stackd.drivers.builder.fsview import ResolveError, SourceFS, is_dir, norm, resolve
from stackd.drivers.builder.layertar import CopyError, Entry, archive_kind, parse_chmod

_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class CopyRequest:
    """One COPY/ADD, substituted: ``owner`` is the resolved ``--chown`` (``None``: root, and
    an archive's own owners), ``now`` the time given to the directories it creates."""

    sources: tuple[str, ...]
    dest: str
    workdir: str = "/"
    heredocs: tuple[Heredoc, ...] = ()
    chmod: str | None = None
    owner: tuple[int, int] | None = None
    exclude: tuple[str, ...] = ()
    parents: bool = False
    unpack_archives: bool = False
    now: float = 0


def has_magic(path: str) -> bool:
    return _MAGIC.search(path) is not None


def _component(pattern: str) -> re.Pattern[str]:
    """One path component of a Go ``filepath.Match`` pattern as a regular expression."""
    try:
        return re.compile(match_regex(pattern, within_component=False), re.DOTALL)
    except ValueError as exc:
        raise CopyError(str(exc)) from None


def glob(fs: SourceFS, pattern: str) -> list[str]:
    """The paths of ``fs`` that ``pattern`` matches (wildcards stay within one component)."""
    current = [""]
    for part in [p for p in norm(pattern).split("/") if p]:
        found: list[str] = []
        for base in current:
            if has_magic(part):
                rx = _component(part)
                found += [posixpath.join(base, n) for n in fs.listdir(base) if rx.fullmatch(n)]
            elif fs.lstat(posixpath.join(base, part)) is not None:
                found.append(posixpath.join(base, part))
        current = found
    return sorted(p for p in current if p)


def dest_is_directory(raw: str) -> bool:
    """Whether a destination as written names a directory (``/``, ``.`` or ``..`` at its end)."""
    return raw.endswith("/") or raw in (".", "..") or raw.endswith(("/.", "/.."))


class _Planner:
    def __init__(self, req: CopyRequest, src: SourceFS, image: SourceFS) -> None:
        self.req = req
        self.src = src
        self.image = image
        self.entries: dict[str, Entry] = {}
        self.chmod: Callable[[int, bool], int] | None = parse_chmod(req.chmod) if req.chmod else None
        self.excluded = IgnoreMatcher(req.exclude).excluded if req.exclude else (lambda _p: False)
        self.uid, self.gid = req.owner if req.owner is not None else (0, 0)

    def exists(self, rel: str) -> bool:
        return rel in self.entries or self.image.lstat(rel) is not None

    def place(self, path: str) -> str:
        """The image path ``path`` will be written at: its parent's symlinks followed, missing
        parents created."""
        parent, name = posixpath.split(norm(path))
        where = resolve(self.image, parent)
        self.ensure_dirs(where)
        return posixpath.join(where, name) if where else name

    def ensure_dirs(self, rel: str) -> None:
        parts = [p for p in rel.split("/") if p]
        for i in range(len(parts)):
            prefix = "/".join(parts[:i + 1])
            if not self.exists(prefix):
                self.add(Entry(prefix, "dir", 0o755, self.uid, self.gid, self.req.now))

    def add(self, entry: Entry) -> None:
        self.entries[entry.path] = entry

    def mode(self, st_mode: int, directory: bool) -> int:
        bits = stat.S_IMODE(st_mode)
        return self.chmod(bits, directory) if self.chmod is not None else bits

    def copy_dir(self, src_rel: str, target: str, fresh: bool) -> None:
        st = self.src.lstat(src_rel)
        assert st is not None
        if not fresh:
            resolved = resolve(self.image, target)
            fresh = not self.exists(resolved)
            target = self.place(resolved)
        if fresh or not is_dir(self.image, target):
            self.add(Entry(target, "dir", self.mode(st.st_mode, True), self.uid, self.gid, st.st_mtime))
        for name in self.src.listdir(src_rel):
            child = posixpath.join(src_rel, name)
            dest = posixpath.join(target, name) if target else name
            self.copy_entry(child, dest, fresh)

    def copy_entry(self, src_rel: str, dest: str, fresh: bool) -> None:
        st = self.src.lstat(src_rel)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            if not self.excluded(src_rel) or (self.req.exclude and _has_exceptions(self.req.exclude)):
                self.copy_dir(src_rel, dest, fresh)
            return
        if self.excluded(src_rel):
            return
        if not fresh:
            dest = self.place(dest)
        if stat.S_ISLNK(st.st_mode):
            target = _readlink(self.src, src_rel)
            self.add(Entry(dest, "symlink", 0o777, self.uid, self.gid, st.st_mtime, target=target))
        elif stat.S_ISREG(st.st_mode):
            self.add(Entry(dest, "file", self.mode(st.st_mode, False), self.uid, self.gid, st.st_mtime,
                           source=self.src.real(src_rel)))

    def top(self, named: str, dest: str, into_dir: bool) -> None:
        """Copy one source as named (or matched) to the destination path ``dest``."""
        real = resolve(self.src, named)
        st = self.src.lstat(real)
        if st is None:
            raise CopyError(f"{named or '.'!r}: a symlink that points to nothing")
        base = posixpath.join(dest, named) if self.req.parents else dest
        if stat.S_ISDIR(st.st_mode):
            self.copy_dir(real, base, fresh=False)
            return
        if self.req.unpack_archives and stat.S_ISREG(st.st_mode) and archive_kind(self.src.real(real)):
            where = resolve(self.image, base)
            self.ensure_dirs(where)
            owner = self.req.owner
            self.add(Entry(f"{where}//archive:{named}", "archive", 0, None if owner is None else owner[0],
                           None if owner is None else owner[1], source=self.src.real(real)))
            return
        if self.req.parents:
            target = base
        elif into_dir:
            target = posixpath.join(dest, posixpath.basename(named))
        else:
            target = dest
        if self.excluded(real):
            return
        self.copy_entry(real, target, fresh=False)


def _has_exceptions(patterns: Sequence[str]) -> bool:
    return any(p.startswith("!") for p in patterns)


def _readlink(fs: SourceFS, rel: str) -> str:
    return os.readlink(fs.real(rel))


def plan_copy(req: CopyRequest, src: SourceFS, image: SourceFS) -> list[Entry]:
    """The layer entries of one COPY/ADD (parents before children); ``CopyError`` when a
    source is missing or the destination cannot take the sources."""
    named = len(req.sources) + len(req.heredocs)
    is_dir_dest = dest_is_directory(req.dest)
    if named > 1 and not is_dir_dest:
        raise CopyError("when copying more than one source the destination must be a directory "
                        f"and end with a '/': {req.dest!r}")
    dest = req.dest if req.dest.startswith("/") else posixpath.join(req.workdir or "/", req.dest)
    tops: list[str] = []
    for source in req.sources:
        if has_magic(source):
            matches = glob(src, source)
            if not matches:
                raise CopyError(f"no source files were specified: {source!r} matches nothing")
            tops += matches
        else:
            rel = norm(source)
            if src.lstat(resolve(src, rel, follow_last=False)) is None:
                raise CopyError(f"{source!r} not found")
            tops.append(rel)
    planner = _Planner(req, src, image)
    try:
        into_dir = is_dir_dest or len(tops) + len(req.heredocs) > 1 or is_dir(image, resolve(image, dest))
        for top in tops:
            planner.top(top, norm(dest), into_dir)
        for doc in req.heredocs:
            target = planner.place(posixpath.join(dest, doc.name) if into_dir else dest)
            mode = planner.mode(0o644, False)
            planner.add(Entry(target, "file", mode, planner.uid, planner.gid, req.now,
                              data=doc.content.encode()))
    except ResolveError as exc:
        raise CopyError(str(exc)) from exc
    return [_unkeyed(e) for e in planner.entries.values()]


def _unkeyed(entry: Entry) -> Entry:
    """Archive entries are keyed apart (several may go to one directory): drop the key."""
    if entry.kind == "archive":
        return replace(entry, path=entry.path.split("//archive:", 1)[0])
    return entry
