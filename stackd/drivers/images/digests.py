"""Content digests (``sha256:<64 hex>``) and streams that hash what passes through them.

Only sha256 is supported; any other algorithm is refused with a clear error, and so is any string
that is not a well-formed digest (digests become file names, so they are checked before use).
Pure apart from the wrapped streams; this module never touches the filesystem.
"""

from __future__ import annotations

import hashlib
import re
from typing import NewType, Protocol

from stackd.drivers.images.errors import ImageError

Digest = NewType("Digest", str)

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_ANY_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
CHUNK = 1 << 20


def parse_digest(value: object, what: str = "digest") -> Digest:
    """``value`` as a ``Digest``, or ``ImageError`` naming ``what`` and what is wrong with it."""
    if isinstance(value, str) and _DIGEST.fullmatch(value):
        return Digest(value)
    if isinstance(value, str) and _ANY_DIGEST.fullmatch(value) and not value.startswith("sha256:"):
        algo = value.split(":", 1)[0]
        raise ImageError(f"{what} {value!r} uses {algo}; only sha256 digests are supported")
    raise ImageError(f"{what} {value!r} is not a digest (expected sha256:<64 hex digits>)")


def hex_of(digest: Digest) -> str:
    """The hex part of a digest (the file name it is stored under)."""
    return digest.split(":", 1)[1]


def digest_bytes(data: bytes) -> Digest:
    """The digest of ``data``."""
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class HashingReader:
    """A read-only stream over ``inner`` that hashes and counts every byte read through it."""

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever is left in the stream."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> Digest:
        return Digest("sha256:" + self._hash.hexdigest())


class HashingWriter:
    """A write-only stream over ``inner`` that hashes and counts every byte written through it."""

    def __init__(self, inner: Writable) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:
        self._inner.write(data)
        self._hash.update(data)
        self.count += len(data)
        return len(data)

    def flush(self) -> None:
        self._inner.flush()

    @property
    def digest(self) -> Digest:
        return Digest("sha256:" + self._hash.hexdigest())
