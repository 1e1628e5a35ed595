"""Layer tars <-> layer directories usable as overlayfs lower (and upper) directories.

``unpack_layer`` reads an OCI layer (plain or gzip tar; zstd is refused with a clear error) into an
empty directory and turns OCI whiteouts into overlayfs ones (``.wh.NAME`` -> a whiteout for NAME,
``.wh..wh..opq`` -> an opaque directory), keeping modes, ownership (as root), symlinks, hard
links, device nodes (as root), fifos, times and xattrs. It computes the layer's diff id (sha256
of the uncompressed tar) as it goes. Entries with absolute names, ``..``, or a path through a
symlink that leaves the directory are refused, and so are xattrs in overlayfs's own namespace.

``diff_to_tar`` is the reverse: an overlay upper directory becomes an OCI layer tar.
The caller owns the directories (creating, renaming, removing); this module never touches
anything outside the directory it is given.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import os
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, cast

from stackd.drivers.fsutil import remove_tree
from stackd.drivers.images.digests import Digest, HashingReader, HashingWriter
from stackd.drivers.images.errors import ImageError
from stackd.drivers.images.members import clean_member_name, resolve_dir
from stackd.drivers.images.whiteouts import OVERLAY_XATTR_PREFIX, Whiteouts

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
XATTR_PAX = "SCHILY.xattr."
_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class LayerInfo:
    """What unpacking (or writing) a layer tar found: its diff id and uncompressed size."""

    diff_id: Digest
    size: int


class _Prefixed:
    """A stream that first returns ``head`` (bytes already read to sniff the format), then ``inner``."""

    def __init__(self, head: bytes, inner: BinaryIO) -> None:
        self._head = head
        self._inner = inner

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._inner.read(size)
        if size < 0:
            data, self._head = self._head + self._inner.read(), b""
            return data
        data, self._head = self._head[:size], self._head[size:]
        return data


def compression_of(head: bytes) -> str:
    """``gzip``, ``zstd`` or ``none`` from the first bytes of a layer blob."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_ZSTD):
        return "zstd"
    return "none"


def decompressed(stream: BinaryIO, what: str) -> BinaryIO:
    """``stream`` with gzip undone (detected by its magic number, not by media type)."""
    head = stream.read(4)
    kind = compression_of(head)
    source = cast(BinaryIO, _Prefixed(head, stream))
    if kind == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=source, mode="rb"))
    if kind == "zstd":
        raise ImageError(f"{what} is zstd-compressed; stackd reads only plain and gzip layers for now")
    return source


def unpack_layer(stream: BinaryIO, dest: Path, whiteouts: Whiteouts, what: str = "layer") -> LayerInfo:
    """Unpack the layer blob ``stream`` into the empty directory ``dest``; ``what`` names the layer
    in errors. Raises ``ImageError`` for a bad or truncated tar or an unsafe entry; ``dest`` is
    left half-filled then, and the caller removes it."""
    tar_bytes = HashingReader(decompressed(stream, what))
    unpacker = _Unpacker(dest, whiteouts, what)
    try:
        with tarfile.open(fileobj=cast(IO[bytes], tar_bytes), mode="r|") as tf:
            for member in tf:
                unpacker.apply(tf, member)
        tar_bytes.drain()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ImageError(f"{what} is not a valid tar (or it is truncated): {exc}") from exc
    unpacker.finish()
    return LayerInfo(tar_bytes.digest, tar_bytes.count)


class _Unpacker:
    """Applies tar entries one by one; directory metadata is set at the end (deepest first), so
    that read-only directories can still be filled."""

    def __init__(self, dest: Path, whiteouts: Whiteouts, what: str) -> None:
        self.dest = dest
        self.whiteouts = whiteouts
        self.what = what
        self.dirs: list[tuple[Path, tarfile.TarInfo]] = []

    def finish(self) -> None:
        for path, member in reversed(self.dirs):
            _set_metadata(path, member, self.what)

    def apply(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        what = self.what
        rel = clean_member_name(m.name, what)
        if rel == PurePosixPath("."):
            if not m.isdir():
                raise ImageError(f"{what}: the root entry {m.name!r} is not a directory")
            self.dirs.append((self.dest, m))
            return
        if any(part.startswith(WHITEOUT_PREFIX * 2) for part in rel.parent.parts):
            return  # inside aufs metadata (.wh..wh.plnk/...): not part of the filesystem
        parent = resolve_dir(self.dest, rel.parent, what)
        name = rel.name
        if name.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, name, m.name)
            return
        path = parent / name
        if m.isdir():
            hides_lower = self._is_whiteout(path)
            _clear(path, keep_dir=True)
            if not path.is_dir():
                path.mkdir(mode=0o700)
            if hides_lower:  # ".wh.d" then "d/": a new directory in place of the lower one
                self.whiteouts.make_opaque(path)
            self.dirs.append((path, m))
            return
        _clear(path, keep_dir=False)
        if m.islnk():
            _hardlink(self.dest, m, path, what)
            return  # a hard link shares the metadata of its target
        if m.isreg():
            _write_file(tf, m, path)
        elif m.issym():
            os.symlink(m.linkname, path)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            try:
                os.mknod(path, kind | 0o600, os.makedev(m.devmajor, m.devminor))
            except PermissionError as exc:
                raise ImageError(f"{what}: device node {m.name!r} can only be created as root "
                                 "(run stackd as root)") from exc
        elif m.isfifo():
            os.mkfifo(path, 0o600)
        else:
            raise ImageError(f"{what}: entry {m.name!r} has an unsupported tar type {m.type!r}")
        _set_metadata(path, m, what)

    def _whiteout(self, parent: Path, name: str, entry: str) -> None:
        if name == OPAQUE_MARKER:
            self.whiteouts.make_opaque(parent)
        elif not name.startswith(WHITEOUT_PREFIX * 2):  # other .wh..wh.* names are aufs metadata
            hidden = name[len(WHITEOUT_PREFIX):]
            if hidden in ("", ".", ".."):
                raise ImageError(f"{self.what}: invalid whiteout entry {entry!r}")
            # A whiteout hides only the layers below: an entry of this layer stays, and a
            # directory of this layer then replaces the lower one instead of merging with it.
            target = parent / hidden
            try:
                st = target.lstat()
            except FileNotFoundError:
                self.whiteouts.make_whiteout(target)
                return
            if stat.S_ISDIR(st.st_mode):
                self.whiteouts.make_opaque(target)

    def _is_whiteout(self, path: Path) -> bool:
        try:
            return self.whiteouts.is_whiteout(path, path.lstat())
        except FileNotFoundError:
            return False


def _clear(path: Path, keep_dir: bool) -> None:
    """Make room for a new entry at ``path`` (a later tar entry replaces an earlier one)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if not keep_dir:
            remove_tree(path)
    else:
        path.unlink()


def _hardlink(dest: Path, m: tarfile.TarInfo, path: Path, what: str) -> None:
    target_rel = clean_member_name(m.linkname, f"{what}: hard link {m.name!r}")
    target = resolve_dir(dest, target_rel.parent, what, create=False) / target_rel.name
    try:
        st = target.lstat()
    except FileNotFoundError:
        raise ImageError(f"{what}: hard link {m.name!r} points to {m.linkname!r}, "
                         "which is not earlier in the layer") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{what}: hard link {m.name!r} points to the directory {m.linkname!r}")
    os.link(target, path, follow_symlinks=False)


def _write_file(tf: tarfile.TarFile, m: tarfile.TarInfo, path: Path) -> None:
    source = tf.extractfile(m)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        if source is not None:
            shutil.copyfileobj(source, out, 1 << 20)


def _set_metadata(path: Path, m: tarfile.TarInfo, what: str) -> None:
    symlink = m.issym()
    if os.geteuid() == 0:
        os.chown(path, m.uid, m.gid, follow_symlinks=False)  # before chmod: chown drops set-id bits
    if not symlink:
        os.chmod(path, stat.S_IMODE(m.mode))
    for key, value in m.pax_headers.items():
        if not key.startswith(XATTR_PAX):
            continue
        attr = key[len(XATTR_PAX):]
        if attr.startswith(OVERLAY_XATTR_PREFIX):
            continue  # an image must not forge overlayfs's own markers
        try:
            os.setxattr(path, attr, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES):
                raise ImageError(f"{what}: cannot set xattr {attr} on {m.name!r}: {exc}") from exc
    with contextlib.suppress(NotImplementedError):
        os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)


def diff_to_tar(upper: Path, out: BinaryIO, whiteouts: Whiteouts) -> LayerInfo:
    """Write the overlay upper directory ``upper`` to ``out`` as an (uncompressed) OCI layer tar:
    whiteouts become ``.wh.NAME`` entries and opaque directories get ``.wh..wh..opq``. Entries
    are written in sorted order. Returns the diff id and size of what was written."""
    sink = HashingWriter(out)
    with tarfile.open(fileobj=cast(IO[bytes], sink), mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add_tree(tf, upper, PurePosixPath(), whiteouts)
    return LayerInfo(sink.digest, sink.count)


def _add_tree(tf: tarfile.TarFile, directory: Path, arc: PurePosixPath, whiteouts: Whiteouts) -> None:
    for name in sorted(os.listdir(directory)):
        path = directory / name
        arcname = arc / name
        st = path.lstat()
        if whiteouts.is_whiteout(path, st):
            _add_marker(tf, arc / (WHITEOUT_PREFIX + name), st)
            continue
        xattrs = _read_xattrs(path, arcname)
        info = tf.gettarinfo(str(path), arcname=str(arcname))
        if info is None:  # sockets and other types a tar cannot hold
            continue
        info.uname = info.gname = ""
        info.pax_headers = xattrs
        if info.isreg():
            with open(path, "rb") as f:
                tf.addfile(info, f)
        else:
            tf.addfile(info)
        if stat.S_ISDIR(st.st_mode):
            if whiteouts.is_opaque(path):
                _add_marker(tf, arcname / OPAQUE_MARKER, st)
            _add_tree(tf, path, arcname, whiteouts)


def _add_marker(tf: tarfile.TarFile, arcname: PurePosixPath, st: os.stat_result) -> None:
    info = tarfile.TarInfo(str(arcname))
    info.type = tarfile.REGTYPE
    info.mode = 0o644
    info.mtime = int(st.st_mtime)
    tf.addfile(info)


def _read_xattrs(path: Path, arcname: PurePosixPath) -> dict[str, str]:
    """The xattrs to carry into the tar; overlayfs's own are dropped after checking that none of
    them means the upper directory does not hold the whole change."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out: dict[str, str] = {}
    for attr in sorted(names):
        if attr.startswith(OVERLAY_XATTR_PREFIX):
            if attr in (OVERLAY_XATTR_PREFIX + "redirect", OVERLAY_XATTR_PREFIX + "metacopy"):
                raise ImageError(
                    f"upper directory entry {str(arcname)!r} has {attr}: its content lives in a lower "
                    "layer (mount the overlay with redirect_dir=off,metacopy=off to record changes)")
            continue
        with contextlib.suppress(OSError):
            value: Any = os.getxattr(path, attr, follow_symlinks=False)
            out[XATTR_PAX + attr] = bytes(value).decode("utf-8", "surrogateescape")
    return out
