"""The records the image store hands out and takes in: resolved images, list entries, images to
add, gc reports. Data only: no I/O, no store access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from stackd.drivers.images.config import ImageConfig
from stackd.drivers.images.digests import Digest


@dataclass(frozen=True)
class ImageRef:
    """An image resolved for a runtime: its config and its layer directories, bottom first
    (overlayfs wants them the other way round: ``lowerdir=top:...:bottom``)."""

    name: str
    manifest_digest: Digest
    id: Digest
    config: ImageConfig
    layer_dirs: tuple[Path, ...]

    def overlay_lowerdirs(self) -> tuple[Path, ...]:
        """The layer directories in overlayfs ``lowerdir=`` order (top first). A layer that occurs
        more than once is kept only at its topmost place: overlayfs refuses a directory twice,
        and the lower copy is shadowed by the upper one anyway."""
        seen: set[Path] = set()
        out = []
        for d in reversed(self.layer_dirs):
            if d not in seen:
                seen.add(d)
                out.append(d)
        return tuple(out)


@dataclass(frozen=True)
class ImageSummary:
    """One line of ``stack image ls``."""

    name: str
    id: Digest
    manifest_digest: Digest
    created: str | None
    size: int


@dataclass(frozen=True)
class NewImage:
    """An image to add: its name, manifest and config bytes, and streams of its layer blobs
    (``None`` for a blob already in the store)."""

    name: str
    manifest: bytes
    config: bytes | None = None
    layers: Sequence[BinaryIO | None] | None = None


@dataclass(frozen=True)
class GcReport:
    """What ``gc`` removed."""

    blobs: tuple[Digest, ...] = ()
    layers: tuple[Digest, ...] = ()
    temporary: tuple[str, ...] = ()
