"""OCI (and Docker schema 2) manifests, indexes and descriptors: parsing, checking and building.

Everything here works on bytes and plain values: parse a manifest or index the way the OCI image
spec describes it, refuse anything malformed with an ``ImageError`` that says which field is
wrong, and build the JSON documents stackd writes (manifests for ``docker save`` imports, the
image-layout ``index.json``). No I/O: the store and the archive code do the reading and writing.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stackd.drivers.images.digests import Digest, digest_bytes, parse_digest
from stackd.drivers.images.errors import ImageError

OCI_LAYOUT_VERSION = "1.0.0"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
         "armv7l": "arm", "i686": "386", "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x",
         "riscv64": "riscv64"}


@dataclass(frozen=True)
class Descriptor:
    """A pointer to a blob: its media type, digest and size (plus platform and annotations)."""

    media_type: str
    digest: Digest
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = dict(self.platform)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Manifest:
    """An image manifest: one config blob and the layer blobs, bottom layer first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


def load_json(data: bytes, what: str) -> dict[str, Any]:
    """``data`` parsed as a JSON object, or ``ImageError`` naming ``what``."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImageError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ImageError(f"{what} is not a JSON object")
    return value


def dump_json(value: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no spaces) so that the same document has one digest."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def parse_descriptor(raw: Any, what: str) -> Descriptor:
    """One descriptor object; ``what`` names it in errors (``manifest layers[2]``)."""
    if not isinstance(raw, dict):
        raise ImageError(f"{what} is not a descriptor object")
    media_type = raw.get("mediaType", "")
    size = raw.get("size")
    if not isinstance(media_type, str):
        raise ImageError(f"{what}.mediaType is not a string")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"{what}.size is missing or not a non-negative integer")
    annotations = raw.get("annotations") or {}
    plat = raw.get("platform") or {}
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        raise ImageError(f"{what}.annotations is not a map of strings")
    if not isinstance(plat, dict):
        raise ImageError(f"{what}.platform is not an object")
    return Descriptor(media_type, parse_digest(raw.get("digest"), f"{what}.digest"), size,
                      dict(annotations), {k: str(v) for k, v in plat.items() if isinstance(v, str)})


def parse_manifest(data: bytes, what: str = "manifest") -> Manifest:
    """An OCI or Docker schema 2 image manifest."""
    raw = load_json(data, what)
    media_type = raw.get("mediaType", OCI_MANIFEST)
    if raw.get("schemaVersion") != 2:
        raise ImageError(f"{what}: schemaVersion is {raw.get('schemaVersion')!r}; only 2 is supported")
    if media_type in INDEX_TYPES or "manifests" in raw:
        raise ImageError(f"{what} is an image index, not an image manifest")
    if media_type not in MANIFEST_TYPES:
        raise ImageError(f"{what}: unsupported mediaType {media_type!r}")
    layers = raw.get("layers")
    if not isinstance(layers, list):
        raise ImageError(f"{what}.layers is missing or not a list")
    return Manifest(media_type, parse_descriptor(raw.get("config"), f"{what}.config"),
                    tuple(parse_descriptor(d, f"{what}.layers[{i}]") for i, d in enumerate(layers)))


def parse_index(data: bytes, what: str = "index") -> list[Descriptor]:
    """The ``manifests`` of an OCI image index (or Docker manifest list)."""
    raw = load_json(data, what)
    if raw.get("schemaVersion") != 2:
        raise ImageError(f"{what}: schemaVersion is {raw.get('schemaVersion')!r}; only 2 is supported")
    manifests = raw.get("manifests")
    if not isinstance(manifests, list):
        raise ImageError(f"{what}.manifests is missing or not a list")
    return [parse_descriptor(d, f"{what}.manifests[{i}]") for i, d in enumerate(manifests)]


def build_manifest(config: bytes, layers: Sequence[tuple[str, str, int]]) -> bytes:
    """An OCI manifest for a config blob and ``(media type, digest, size)`` layer blobs."""
    return dump_json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_bytes(config), "size": len(config)},
        "layers": [{"mediaType": m, "digest": d, "size": s} for m, d, s in layers],
    })


def build_index(manifests: list[Descriptor]) -> bytes:
    """An OCI image index listing ``manifests``."""
    return dump_json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                      "manifests": [d.to_json() for d in manifests]})


def host_platform() -> tuple[str, str]:
    """``(os, architecture)`` of this machine in OCI words (``linux``, ``amd64``)."""
    machine = platform.machine().lower()
    return "linux", _ARCH.get(machine, machine)


def pick_platform(manifests: list[Descriptor], what: str) -> Descriptor:
    """The manifest of a multi-platform index that runs on this machine."""
    want_os, want_arch = host_platform()
    images = [d for d in manifests if d.media_type in MANIFEST_TYPES]
    if len(images) == 1 and not images[0].platform:
        return images[0]  # a one-image index that does not say its platform
    for d in manifests:
        if d.media_type in MANIFEST_TYPES and d.platform.get("os") == want_os \
                and d.platform.get("architecture") == want_arch:
            return d
    found = sorted({f"{d.platform.get('os', '?')}/{d.platform.get('architecture', '?')}" for d in manifests})
    raise ImageError(f"{what} has no image for {want_os}/{want_arch} (it has: {', '.join(found) or 'none'})")
