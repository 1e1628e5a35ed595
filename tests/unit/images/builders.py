"""Builders of small layer tars, image configs and image archives for the image tests.

Everything is made here with ``tarfile`` so the tests depend on no image and no network. The
OCI-layout and ``docker save`` writers follow the formats closely but independently of the code
under test (they do not import the archive module).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class E:
    """One tar entry: ``kind`` is file, dir, symlink, hardlink, fifo, chr or raw (any TarInfo type)."""

    name: str
    kind: str = "file"
    data: bytes = b""
    mode: int | None = None  # 0o755 for directories, else 0o644
    target: str = ""
    uid: int = 0
    gid: int = 0
    mtime: int = 1_700_000_000
    xattrs: dict[str, bytes] = field(default_factory=dict)
    dev: tuple[int, int] = (0, 0)


def layer_tar(entries: list[E]) -> bytes:
    """An uncompressed PAX layer tar of ``entries`` in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            default = 0o755 if e.kind == "dir" else 0o644
            info.mode = default if e.mode is None else e.mode
            info.uid, info.gid, info.mtime = e.uid, e.gid, e.mtime
            if e.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape")
                                    for k, v in e.xattrs.items()}
            body = None
            if e.kind == "file":
                info.size = len(e.data)
                body = io.BytesIO(e.data)
            elif e.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e.target
            elif e.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, e.target
            elif e.kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif e.kind == "chr":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = e.dev
            else:
                raise ValueError(e.kind)
            tf.addfile(info, body)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def config_json(layers: list[bytes], **config: Any) -> bytes:
    """An image config whose diff ids are those of the (uncompressed) ``layers``."""
    return canonical({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers]},
    })


def manifest_json(config: bytes, blobs: list[bytes]) -> bytes:
    return canonical({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"
                    if b[:2] == b"\x1f\x8b" else "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha(b), "size": len(b)} for b in blobs],
    })


def write_tar(path: Path, files: list[tuple[str, bytes]], compress: bool = False) -> Path:
    """A tar at ``path`` with the given regular files (``name``, ``content``) in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    path.write_bytes(gz(buf.getvalue()) if compress else buf.getvalue())
    return path


@dataclass
class Image:
    """An image as archives hold it: uncompressed layer tars, how to store them, a config."""

    layers: list[bytes]
    compress: bool = True
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def blobs(self) -> list[bytes]:
        return [gz(t) if self.compress else t for t in self.layers]

    @property
    def config_bytes(self) -> bytes:
        return config_json(self.layers, **self.config)

    @property
    def manifest(self) -> bytes:
        return manifest_json(self.config_bytes, self.blobs)


def oci_archive(path: Path, images: list[tuple[str | None, Image]], *, tar_gz: bool = False) -> Path:
    """An OCI image-layout tar holding ``images`` (name -> ref.name annotation)."""
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}
    manifests = []
    for name, image in images:
        for blob in [image.config_bytes, image.manifest, *image.blobs]:
            files[f"blobs/sha256/{sha(blob)[7:]}"] = blob
        desc: dict[str, Any] = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "digest": sha(image.manifest), "size": len(image.manifest)}
        if name:
            desc["annotations"] = {"org.opencontainers.image.ref.name": name}
        manifests.append(desc)
    files["index.json"] = canonical({"schemaVersion": 2, "manifests": manifests})
    return write_tar(path, sorted(files.items()), compress=tar_gz)


def docker_archive(path: Path, tags: list[str] | None, image: Image, *, new_layout: bool = False) -> Path:
    """A ``docker save`` tar: old layout (``<id>/layer.tar``, ``<hex>.json``) or the newer one
    that keeps files under ``blobs/sha256``. Layers are stored uncompressed, as docker does."""
    config = image.config_bytes
    files: list[tuple[str, bytes]] = []
    layer_names = []
    for i, layer in enumerate(image.layers):
        if new_layout:
            name = f"blobs/sha256/{sha(layer)[7:]}"
        else:
            layer_id = hashlib.sha256(f"v1-id-{i}".encode() + layer).hexdigest()
            name = f"{layer_id}/layer.tar"
            files.append((f"{layer_id}/VERSION", b"1.0"))
        files.append((name, layer))
        layer_names.append(name)
    config_name = f"blobs/sha256/{sha(config)[7:]}" if new_layout else f"{sha(config)[7:]}.json"
    files.append((config_name, config))
    files.append(("manifest.json", json.dumps([{"Config": config_name, "RepoTags": tags,
                                                "Layers": layer_names}]).encode()))
    return write_tar(path, files)
