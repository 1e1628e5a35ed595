"""Import and export of image archives: OCI image layouts in a tar, and ``docker save`` archives.

``import_archive`` reads an OCI image-layout tar (``oci-layout``, ``index.json``, ``blobs/``) or a
``docker save`` tar (``manifest.json`` with the config and layer tars; both the old layout with
``<id>/layer.tar`` and the newer one that keeps everything under ``blobs/sha256``). The archive
may be gzip-compressed. Every digest is checked; a mismatch, a missing file or a truncated
archive is an ``ArchiveError`` naming the archive, and the store is left as it was (all images
of an archive are added together or not at all).

``export_archive`` writes one image as an OCI image-layout tar, named with the
``org.opencontainers.image.ref.name`` annotation (and containerd's ``io.containerd.image.name``),
readable by ``skopeo`` and ``umoci``. The file appears whole or not at all.
This module reads archives and calls the store; it never touches layer directories itself.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, cast

from stackd.drivers.fsutil import fsync_dir, tmp_name
from stackd.drivers.images.digests import Digest, HashingReader, digest_bytes, hex_of
from stackd.drivers.images.errors import ArchiveError, ImageError
from stackd.drivers.images.layers import compression_of
from stackd.drivers.images.members import clean_member_name
from stackd.drivers.images.oci import (
    CONTAINERD_NAME,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYOUT_VERSION,
    REF_NAME,
    Descriptor,
    build_index,
    build_manifest,
    dump_json,
    load_json,
    parse_index,
    parse_manifest,
    pick_platform,
)
from stackd.drivers.images.records import ImageRef, NewImage
from stackd.drivers.images.store import ImageStore
from stackd.errors import PermanentDriverError

_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)
_HEX64 = re.compile(r"[0-9a-f]{64}")


def import_archive(store: ImageStore, path: Path, name: str | None = None) -> list[ImageRef]:
    """Add the images of the archive at ``path`` to ``store``; ``name`` names the image of a
    one-image archive (else the names in the archive are used). Returns the images added."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: no such file" if not path.exists() else f"{path} is not a file")
    try:
        with tarfile.open(path, "r:*") as tf:
            archive = _Archive(tf, path)
            if "manifest.json" in archive.members:
                images = _docker_images(archive, name)
            elif "index.json" in archive.members:
                images = _oci_images(archive, name)
            else:
                raise ArchiveError(f"{path} is neither an OCI image layout (no index.json) nor a "
                                   "docker save archive (no manifest.json); is it truncated?")
            return store.add_images(images)
    except ArchiveError:
        raise
    except ImageError as exc:
        raise ArchiveError(f"{path}: {exc}") from exc
    except _READ_ERRORS as exc:
        raise ArchiveError(f"{path} is not a tar archive, or it is damaged or truncated ({exc})") from exc
    except OSError as exc:
        raise PermanentDriverError(f"cannot import {path}: {exc}") from exc


class _Archive:
    """The members of an open archive, looked up by their cleaned names."""

    def __init__(self, tf: tarfile.TarFile, path: Path) -> None:
        self.tf = tf
        self.path = path
        self.members: dict[str, tarfile.TarInfo] = {}
        for m in tf.getmembers():
            try:
                self.members[str(clean_member_name(m.name, str(path)))] = m
            except ImageError:
                continue  # such a name is never one an image refers to

    def open(self, name: str, what: str) -> BinaryIO:
        try:
            member = self.members.get(str(clean_member_name(name, what)))
        except ImageError as exc:
            raise ArchiveError(f"{self.path}: {exc}") from None
        if member is None:
            raise ArchiveError(f"{self.path}: {what} ({name}) is missing from the archive")
        try:
            stream = self.tf.extractfile(member) if not member.isdir() else None
        except KeyError:
            raise ArchiveError(f"{self.path}: {what} ({name}) links to {member.linkname!r}, "
                               "which is missing from the archive") from None
        if stream is None:
            raise ArchiveError(f"{self.path}: {what} ({name}) is not a regular file")
        return cast(BinaryIO, stream)

    def read(self, name: str, what: str) -> bytes:
        with self.open(name, what) as f:
            return f.read()

    def blob(self, desc: Descriptor, what: str) -> bytes:
        """A small blob, checked against its descriptor."""
        data = self.read(f"blobs/sha256/{hex_of(desc.digest)}", what)
        if digest_bytes(data) != desc.digest or len(data) != desc.size:
            raise ArchiveError(f"{self.path}: {what} does not match its digest: expected {desc.digest} "
                               f"({desc.size} bytes), the content ({len(data)} bytes) has "
                               f"{digest_bytes(data)}")
        return data

    def blob_stream(self, digest: Digest) -> BinaryIO | None:
        key = f"blobs/sha256/{hex_of(digest)}"
        return self.open(key, f"blob {digest}") if key in self.members else None


def _names(archive: _Archive, labels: list[list[str]], name: str | None) -> list[list[str]]:
    """The names for each image of the archive: ``name`` for a one-image archive, else its own."""
    if name is not None:
        if len(labels) != 1:
            raise ArchiveError(f"{archive.path} holds {len(labels)} images; a name can only be given "
                               "for an archive of one image")
        return [[name]]
    for i, names in enumerate(labels):
        if not names:
            raise ArchiveError(f"{archive.path}: image {i + 1} of the archive has no name; give it one")
    return labels


def _oci_images(archive: _Archive, name: str | None) -> list[NewImage]:
    layout = load_json(archive.read("oci-layout", "the oci-layout file"), f"{archive.path}: oci-layout")
    if not isinstance(layout.get("imageLayoutVersion"), str):
        raise ArchiveError(f"{archive.path}: oci-layout has no imageLayoutVersion")
    found: list[tuple[list[str], Descriptor]] = []
    for entry in parse_index(archive.read("index.json", "index.json"), "index.json"):
        label = entry.annotations.get(CONTAINERD_NAME) or entry.annotations.get(REF_NAME)
        desc = entry
        if entry.media_type in INDEX_TYPES:
            what = f"image index {entry.digest}"
            desc = pick_platform(parse_index(archive.blob(entry, what), what), what)
        elif entry.media_type not in MANIFEST_TYPES:
            continue  # an artifact, not an image
        found.append(([label] if label else [], desc))
    if not found:
        raise ArchiveError(f"{archive.path}: index.json lists no image")
    images: list[NewImage] = []
    for names, (_, desc) in zip(_names(archive, [n for n, _ in found], name), found, strict=True):
        manifest = archive.blob(desc, f"manifest {desc.digest}")
        m = parse_manifest(manifest, f"manifest {desc.digest}")
        config = archive.blob(m.config, f"image config {m.config.digest}")
        layers = [archive.blob_stream(layer.digest) for layer in m.layers]
        images.extend(NewImage(n, manifest, config, layers) for n in names)
    return images


def _docker_images(archive: _Archive, name: str | None) -> list[NewImage]:
    try:
        entries: Any = json.loads(archive.read("manifest.json", "manifest.json"))
    except ValueError as exc:
        raise ArchiveError(f"{archive.path}: manifest.json is not valid JSON: {exc}") from exc
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise ArchiveError(f"{archive.path}: manifest.json is not a non-empty list of objects")
    labels = []
    for i, e in enumerate(entries):
        tags = e.get("RepoTags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ArchiveError(f"{archive.path}: manifest.json[{i}].RepoTags is not a list of names")
        labels.append(tags)
    images: list[NewImage] = []
    for i, (names, e) in enumerate(zip(_names(archive, labels, name), entries, strict=True)):
        where = f"manifest.json[{i}]"
        config_name, layer_names = e.get("Config"), e.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layer_names, list) \
                or not all(isinstance(n, str) for n in layer_names):
            raise ArchiveError(f"{archive.path}: {where} needs Config (a file name) and Layers (a list)")
        config = archive.read(config_name, f"the image config of {where}")
        _check_named(archive, config_name, digest_bytes(config), f"the image config of {where}")
        descriptors = [_docker_layer(archive, n, f"layer {j} of {where}") for j, n in enumerate(layer_names)]
        manifest = build_manifest(config, descriptors)
        for n in names:
            layers: list[BinaryIO | None] = [archive.open(f, "layer") for f in layer_names]
            images.append(NewImage(n, manifest, config, layers))
    return images


def _docker_layer(archive: _Archive, member: str, what: str) -> tuple[str, Digest, int]:
    """``(media type, digest, size)`` of a layer tar of a docker save archive (read once to hash)."""
    with archive.open(member, what) as f:
        reader = HashingReader(f)
        kind = compression_of(reader.read(4))
        reader.drain()
    if kind == "zstd":
        raise ArchiveError(f"{archive.path}: {what} ({member}) is zstd-compressed, which is not supported")
    _check_named(archive, member, reader.digest, what)
    return (OCI_LAYER_GZIP if kind == "gzip" else OCI_LAYER), reader.digest, reader.count


def _check_named(archive: _Archive, member: str, digest: Digest, what: str) -> None:
    """A file named after its digest (``<hex>.json``, ``blobs/sha256/<hex>``) must match it."""
    stem = PurePosixPath(member).name.removesuffix(".json")
    if _HEX64.fullmatch(stem) and stem != hex_of(digest):
        raise ArchiveError(f"{archive.path}: {what} ({member}) does not match its digest: "
                           f"the content has {digest}")


def export_archive(store: ImageStore, name: str, path: Path) -> Path:
    """Write the image ``name`` as an OCI image-layout tar at ``path``; returns ``path``."""
    ref = store.resolve(name)
    manifest = store.read_blob(ref.manifest_digest, "manifest")
    m = parse_manifest(manifest)
    annotations = {REF_NAME: ref.name, CONTAINERD_NAME: ref.name}
    index = build_index([Descriptor(m.media_type, ref.manifest_digest, len(manifest), annotations)])
    blobs = list(dict.fromkeys([ref.manifest_digest, m.config.digest, *(layer.digest for layer in m.layers)]))
    path = Path(path)
    tmp = path.with_name(tmp_name(path.name))
    try:
        with open(tmp, "xb") as out:
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
                _add_bytes(tf, "oci-layout", dump_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
                _add_bytes(tf, "index.json", index)
                for folder in ("blobs", "blobs/sha256"):
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tf.addfile(info)
                for digest in blobs:
                    with store.get_blob(digest) as f:
                        info = tarfile.TarInfo(f"blobs/sha256/{hex_of(digest)}")
                        info.size, info.mode = os.fstat(f.fileno()).st_size, 0o644
                        tf.addfile(info, f)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise PermanentDriverError(f"cannot write the image archive {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tf.addfile(info, io.BytesIO(data))
