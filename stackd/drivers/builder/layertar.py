"""Layer tars written directly from a list of entries (what COPY and ADD produce), and the
pieces of ``--chmod`` and ADD's archive handling they need.

An ``Entry`` is one file, directory or symlink at a path inside the image, with the mode, owner
and time it gets, and where its content comes from (a host file, inline bytes); an ``archive``
entry is a local tar (plain, gzip, bzip2 or xz) whose members are unpacked under its path, as
ADD does. ``write_layer`` streams the entries into an uncompressed OCI layer tar and returns its
diff id. Nothing here looks at an image or decides where things go: ``copyplan`` does.
"""

from __future__ import annotations

import posixpath
import re
import stat
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal, cast

from stackd.drivers.images.digests import HashingWriter
from stackd.drivers.images.layers import WHITEOUT_PREFIX, LayerInfo

EntryKind = Literal["dir", "file", "symlink", "archive"]
_SYMBOLIC = re.compile(r"([ugoa]*)([-+=])([rwxXst]*)")
_MAGIC: tuple[tuple[bytes, str, Literal["r:gz", "r:bz2", "r:xz"]], ...] = (
    (b"\x1f\x8b", "gz", "r:gz"), (b"BZh", "bz2", "r:bz2"), (b"\xfd7zXZ\x00", "xz", "r:xz"))


class CopyError(Exception):
    """A COPY or ADD that cannot be carried out (what is wrong, in the user's words)."""


@dataclass(frozen=True)
class Entry:
    """One entry of a layer: ``path`` is relative to the image root; ``source`` is the host file
    holding the content (of a file, or of an archive to unpack), ``data`` inline content.
    ``uid``/``gid`` ``None`` on an archive keep the owners recorded in it."""

    path: str
    kind: EntryKind
    mode: int = 0o755
    uid: int | None = 0
    gid: int | None = 0
    mtime: float = 0
    source: Path | None = None
    data: bytes | None = None
    target: str = ""


def parse_chmod(spec: str) -> Callable[[int, bool], int]:
    """``--chmod`` as a function of (current permission bits, is a directory): an octal mode
    sets the bits, a symbolic one (``u+x,go-w``, ``a=rX``) changes them as chmod(1) does."""
    if re.fullmatch(r"[0-7]{3,4}", spec):
        value = int(spec, 8)
        return lambda _mode, _is_dir: value
    clauses = []
    for part in spec.split(","):
        m = _SYMBOLIC.fullmatch(part)
        if m is None:
            raise CopyError(f"invalid --chmod value {spec!r}")
        clauses.append((m.group(1) or "a", m.group(2), m.group(3)))

    def apply(mode: int, is_dir: bool) -> int:
        for who, op, perms in clauses:
            bits = 0
            for w in "ugo" if "a" in who else who:
                shift = {"u": 6, "g": 3, "o": 0}[w]
                for p in perms:
                    if p == "r":
                        bits |= 4 << shift
                    elif p == "w":
                        bits |= 2 << shift
                    elif p == "x" or (p == "X" and (is_dir or mode & 0o111)):
                        bits |= 1 << shift
                    elif p == "s" and w in "ug":
                        bits |= stat.S_ISUID if w == "u" else stat.S_ISGID
                    elif p == "t" and w == "o":
                        bits |= stat.S_ISVTX
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                mask = 0
                for w in "ugo" if "a" in who else who:
                    mask |= 0o7 << {"u": 6, "g": 3, "o": 0}[w]
                    mask |= {"u": stat.S_ISUID, "g": stat.S_ISGID, "o": stat.S_ISVTX}[w]
                mode = (mode & ~mask) | bits
        return mode & 0o7777

    return apply


def archive_kind(path: Path) -> str | None:
    """``tar``, ``gz``, ``bz2`` or ``xz`` when ``path`` is a tar archive ADD unpacks (a
    compressed file must hold a tar), else ``None``."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return None
    for magic, kind, mode in _MAGIC:
        if head.startswith(magic):
            try:
                with tarfile.open(path, mode) as tf:
                    tf.next()
                return kind
            except (tarfile.TarError, OSError, EOFError):
                return None
    if len(head) == 512 and head[257:262] == b"ustar":
        return "tar"
    return None


def write_layer(entries: Sequence[Entry], out: BinaryIO) -> LayerInfo:
    """Write ``entries`` (in order: parents first) as an uncompressed OCI layer tar to ``out``."""
    sink = HashingWriter(out)
    with tarfile.open(fileobj=cast(IO[bytes], sink), mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            if e.kind == "archive":
                _unpack_archive(tf, e)
                continue
            info = tarfile.TarInfo(e.path)
            info.mode = e.mode & 0o7777
            info.uid, info.gid = e.uid or 0, e.gid or 0
            info.mtime = int(e.mtime)
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e.target
                tf.addfile(info)
            elif e.data is not None:
                info.size = len(e.data)
                tf.addfile(info, _BytesReader(e.data))
            else:
                assert e.source is not None
                with open(e.source, "rb") as f:
                    info.size = _size(f)
                    tf.addfile(info, f)
    return LayerInfo(sink.digest, sink.count)


def _size(f: BinaryIO) -> int:
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    return size


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.pos + size
        chunk = self.data[self.pos:end]
        self.pos += len(chunk)
        return chunk


def _member_path(base: str, name: str, archive: Path) -> str:
    """Where archive member ``name`` goes under ``base``; ``..`` may not climb above ``base``."""
    parts: list[str] = []
    for p in name.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                raise CopyError(f"archive {archive.name}: entry {name!r} climbs out of the destination")
            parts.pop()
        else:
            parts.append(p)
    return posixpath.join(base, *parts) if parts else base


def _unpack_archive(tf: tarfile.TarFile, e: Entry) -> None:
    """Copy the members of the archive ``e.source`` into ``tf`` under ``e.path``."""
    assert e.source is not None
    try:
        with tarfile.open(e.source, "r:*") as archive:
            for m in archive:
                name = posixpath.basename(m.name.rstrip("/"))
                if name.startswith(WHITEOUT_PREFIX):
                    continue  # not a deletion in this layer: a user's archive cannot delete
                if not (m.isdir() or m.isreg() or m.issym() or m.islnk() or m.isfifo()
                        or m.ischr() or m.isblk()):
                    continue
                path = _member_path(e.path, m.name, e.source)
                if not path:
                    continue  # the archive's root directory: the destination exists already
                info = tarfile.TarInfo(path)
                info.type, info.mode, info.mtime = m.type, m.mode, m.mtime
                info.uid = m.uid if e.uid is None else e.uid
                info.gid = m.gid if e.gid is None else e.gid
                info.devmajor, info.devminor = m.devmajor, m.devminor
                info.pax_headers = {k: v for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr.")}
                if m.islnk():
                    info.linkname = _member_path(e.path, m.linkname, e.source)
                elif m.issym():
                    info.linkname = m.linkname
                if m.isreg():
                    info.size = m.size
                    tf.addfile(info, archive.extractfile(m))
                else:
                    tf.addfile(info)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CopyError(f"cannot unpack archive {e.source.name}: {exc}") from exc
