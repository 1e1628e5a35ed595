"""The image store: OCI content on disk plus each layer unpacked once, ready to be an overlay lowerdir.

Layout under ``<root>/images`` (the directory is itself an OCI image layout)::

    oci-layout, index.json      names -> manifest descriptors (annotation org.opencontainers.image.ref.name)
    blobs/sha256/<hex>          manifests, configs and layer blobs, shared by every image
    layers/<diff-id hex>/       a layer unpacked with overlayfs whiteouts; read-only by convention
    lock                        flock(2) held by every writer

Writes are atomic and ordered so that a crash never leaves a half image: a blob is written to a
temporary file in the same directory and renamed once its digest checks out; a layer is unpacked
into ``<hex>.tmp-<random>`` and renamed; the name is written last (temporary file + rename). A
failed ``add_image`` removes what it created; what a crash leaves behind (temporary files,
blobs and layers no name refers to) goes with ``gc()``. ``remove`` only drops the name.

Readers need no lock (``index.json`` is replaced atomically). Every method blocks (file I/O,
flock): async callers run them in a worker thread (``anyio.to_thread``). This is a driver: it
does I/O but makes no decisions about which images a stack needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from stackd.drivers.fsutil import (
    fsync_dir,
    is_tmp_name,
    remove_tree,
    sync_filesystem,
    tmp_name,
    write_atomic,
)
from stackd.drivers.images.config import ImageConfig, inspect_json, parse_config
from stackd.drivers.images.digests import CHUNK, Digest, HashingWriter, digest_bytes, hex_of, parse_digest
from stackd.drivers.images.errors import ImageError, ImageNotFoundError
from stackd.drivers.images.layers import unpack_layer
from stackd.drivers.images.names import normalize_name
from stackd.drivers.images.oci import (
    OCI_LAYOUT_VERSION,
    REF_NAME,
    Descriptor,
    Manifest,
    build_index,
    dump_json,
    parse_index,
    parse_manifest,
)
from stackd.drivers.images.records import GcReport, ImageRef, ImageSummary, NewImage
from stackd.drivers.images.whiteouts import OverlayWhiteouts, Whiteouts

DEFAULT_ROOT = Path("/var/lib/stackd")


class ImageStore:
    """Images under ``<root>/images``; ``whiteouts`` decides how layer deletions are written."""

    def __init__(self, root: Path = DEFAULT_ROOT, *, whiteouts: Whiteouts | None = None) -> None:
        self.dir = Path(root) / "images"
        self.blobs_dir = self.dir / "blobs" / "sha256"
        self.layers_dir = self.dir / "layers"
        self.index_path = self.dir / "index.json"
        self.whiteouts: Whiteouts = whiteouts if whiteouts is not None else OverlayWhiteouts()

    # ------------------------------------------------------------------------------------ blobs

    def blob_path(self, digest: str) -> Path:
        """Where the blob ``digest`` is (or would be) stored."""
        return self.blobs_dir / hex_of(parse_digest(digest))

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def get_blob(self, digest: str) -> BinaryIO:
        """The blob ``digest`` opened for reading (the caller closes it)."""
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is not in the image store ({self.blobs_dir})") from None

    def read_blob(self, digest: str, what: str = "blob") -> bytes:
        """A small blob's content, checked against its digest."""
        with self.get_blob(digest) as f:
            data = f.read()
        if digest_bytes(data) != digest:
            raise ImageError(f"{what} {digest} in the image store is corrupt "
                             "(its content has another digest)")
        return data

    def put_blob(self, stream: BinaryIO, expected: str | None = None, size: int | None = None) -> Digest:
        """Store the content of ``stream``; checked against ``expected`` digest and ``size`` when
        given. A blob no image refers to is removed by the next ``gc``."""
        with self._locked():
            return self._put_blob(stream, expected, size, "blob")[0]

    def _put_blob(self, stream: BinaryIO, expected: str | None, size: int | None,
                  what: str) -> tuple[Digest, bool]:
        want = parse_digest(expected, f"{what} digest") if expected is not None else None
        tmp = self.blobs_dir / tmp_name("incoming")
        try:
            with open(tmp, "xb") as f:
                sink = HashingWriter(f)
                while chunk := stream.read(CHUNK):
                    sink.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if want is not None and sink.digest != want:
                raise ImageError(f"{what} does not match its digest: expected {want}, "
                                 f"the content ({sink.count} bytes) has {sink.digest}")
            if size is not None and sink.count != size:
                raise ImageError(f"{what} {sink.digest} has {sink.count} bytes, expected {size}")
            final = self.blobs_dir / hex_of(sink.digest)
            if final.exists():
                return sink.digest, False
            os.rename(tmp, final)
            fsync_dir(self.blobs_dir)
            return sink.digest, True
        finally:
            tmp.unlink(missing_ok=True)

    # ----------------------------------------------------------------------------------- images

    def add_image(self, name: str, manifest: bytes, config: bytes | None = None,
                  layers: Sequence[BinaryIO | None] | None = None) -> ImageRef:
        """Add (or re-point) ``name`` to the image described by the ``manifest`` bytes.

        ``config`` is the config blob and ``layers[i]`` a stream of the blob of manifest layer
        ``i``; either may be left out (``None``) when that blob is already in the store. Every
        blob is checked against the manifest's digest and size, and every unpacked layer against
        the config's diff id. On any failure the store is left as it was."""
        return self.add_images([NewImage(name, manifest, config, layers)])[0]

    def add_images(self, images: Sequence[NewImage]) -> list[ImageRef]:
        """``add_image`` for several images at once: all of them or (on failure) none."""
        keys = [normalize_name(image.name) for image in images]
        created: list[Path] = []
        with self._locked():
            try:
                index = self._read_index()
                for key, image in zip(keys, images, strict=True):
                    desc = self._add(image.manifest, image.config, image.layers, created)
                    index[key] = Descriptor(desc.media_type, desc.digest, desc.size, {REF_NAME: key})
                self._write_index(index)
            except BaseException:
                for path in reversed(created):
                    remove_tree(path)
                raise
        return [self.resolve(key) for key in keys]

    def _add(self, manifest: bytes, config: bytes | None, layers: Sequence[BinaryIO | None] | None,
             created: list[Path]) -> Descriptor:
        m = parse_manifest(manifest)
        if layers is not None and len(layers) != len(m.layers):
            raise ImageError(f"the manifest lists {len(m.layers)} layers, {len(layers)} were given")
        if config is None:
            config = self.read_blob(m.config.digest, "image config")
        elif digest_bytes(config) != m.config.digest or len(config) != m.config.size:
            raise ImageError(f"image config does not match the manifest: expected {m.config.digest} "
                             f"({m.config.size} bytes), got {digest_bytes(config)} ({len(config)} bytes)")
        cfg = parse_config(config)
        if len(cfg.diff_ids) != len(m.layers):
            raise ImageError(f"the image config lists {len(cfg.diff_ids)} layer diff ids but the "
                             f"manifest has {len(m.layers)} layers")
        self._keep(created, self._put_bytes(config, "image config"))
        for i, layer in enumerate(m.layers):
            if self.has_blob(layer.digest):
                continue
            stream = layers[i] if layers is not None else None
            if stream is None:
                raise ImageError(f"layer {i} ({layer.digest}) is neither given nor in the image store")
            digest, new = self._put_blob(stream, layer.digest, layer.size, f"layer {i} ({layer.digest})")
            self._keep(created, self.blob_path(digest) if new else None)
        for i, (layer, diff_id) in enumerate(zip(m.layers, cfg.diff_ids, strict=True)):
            self._unpack(i, layer.digest, diff_id, created)
        self._keep(created, self._put_bytes(manifest, "manifest"))
        return Descriptor(m.media_type, digest_bytes(manifest), len(manifest))

    def _put_bytes(self, data: bytes, what: str) -> Path | None:
        """Store a small blob; its path when it is new."""
        digest, new = self._put_blob(io.BytesIO(data), None, None, what)
        return self.blob_path(digest) if new else None

    @staticmethod
    def _keep(created: list[Path], path: Path | None) -> None:
        if path is not None:
            created.append(path)

    def _unpack(self, i: int, blob: Digest, diff_id: Digest, created: list[Path]) -> None:
        final = self.layers_dir / hex_of(diff_id)
        if final.is_dir():
            return
        tmp = self.layers_dir / tmp_name(hex_of(diff_id))
        tmp.mkdir(mode=0o755)
        created.append(tmp)
        what = f"layer {i} ({blob})"
        with self.get_blob(blob) as f:
            info = unpack_layer(f, tmp, self.whiteouts, what)
        if info.diff_id != diff_id:
            raise ImageError(f"{what}: its uncompressed content has digest {info.diff_id}, "
                             f"but the image config says {diff_id}")
        sync_filesystem(tmp)
        os.rename(tmp, final)
        created[created.index(tmp)] = final
        fsync_dir(self.layers_dir)

    def names(self) -> dict[str, Digest]:
        """Every name in the store and the digest of the manifest it points to."""
        return {name: d.digest for name, d in sorted(self._read_index().items())}

    def resolve(self, name: str) -> ImageRef:
        """The image called ``name`` (``:latest`` when no tag is given), or its id (config digest).
        ``ImageNotFoundError`` when there is none; ``ImageError`` when its content is damaged."""
        key, desc = self._lookup(name)
        m, cfg = self._load(desc.digest)
        dirs = tuple(self.layers_dir / hex_of(d) for d in cfg.diff_ids)
        for d, diff_id in zip(dirs, cfg.diff_ids, strict=True):
            if not d.is_dir():
                raise ImageError(f"image {key} is damaged: layer {diff_id} is missing from {self.layers_dir} "
                                 "(import the image again)")
        return ImageRef(key, desc.digest, m.config.digest, cfg, dirs)

    def inspect(self, name: str) -> dict[str, Any]:
        """The ``docker image inspect`` view of an image (``Id`` is the config digest)."""
        ref = self.resolve(name)
        m, _ = self._load(ref.manifest_digest)
        tags = [s.name for s in self.list() if s.id == ref.id]
        return inspect_json(ref.id, tags, ref.manifest_digest, ref.config, _size(m))

    def remove(self, name: str) -> None:
        """Drop the name; its content stays until ``gc`` finds nothing else refers to it."""
        with self._locked():
            key, _ = self._lookup(name, by_id=False)
            index = self._read_index()
            del index[key]
            self._write_index(index)

    def gc(self, keep: Iterable[str] = ()) -> GcReport:
        """Remove temporary leftovers and every blob and layer no name (nor a manifest digest
        in ``keep``, e.g. of images whose containers still run) refers to."""
        if not self.dir.is_dir():
            return GcReport()
        with self._locked():
            temporary = []
            for folder in (self.dir, self.blobs_dir, self.layers_dir):
                for entry in sorted(folder.iterdir()) if folder.is_dir() else ():
                    if is_tmp_name(entry.name):
                        remove_tree(entry)
                        temporary.append(str(entry.relative_to(self.dir)))
            live_blobs, live_layers = self._live({d.digest for d in self._read_index().values()}
                                                 | {parse_digest(k, "kept manifest digest") for k in keep})
            blobs = self._sweep(self.blobs_dir, live_blobs)
            layers = self._sweep(self.layers_dir, live_layers)
            return GcReport(blobs, layers, tuple(temporary))

    def _live(self, manifests: set[Digest]) -> tuple[set[str], set[str]]:
        blobs: set[str] = set()
        layers: set[str] = set()
        for digest in manifests:
            blobs.add(hex_of(digest))
            with contextlib.suppress(ImageError):  # a damaged image keeps what can be read of it
                m = parse_manifest(self.read_blob(digest, "manifest"))
                blobs.add(hex_of(m.config.digest))
                blobs.update(hex_of(layer.digest) for layer in m.layers)
                cfg = parse_config(self.read_blob(m.config.digest, "image config"))
                layers.update(hex_of(d) for d in cfg.diff_ids)
        return blobs, layers

    @staticmethod
    def _sweep(folder: Path, live: set[str]) -> tuple[Digest, ...]:
        removed = []
        for entry in sorted(folder.iterdir()) if folder.is_dir() else ():
            if len(entry.name) == 64 and entry.name not in live:
                remove_tree(entry)
                removed.append(Digest("sha256:" + entry.name))
        return tuple(removed)

    # -------------------------------------------------------------------------------- internals

    def _lookup(self, name: str, by_id: bool = True) -> tuple[str, Descriptor]:
        index = self._read_index()
        if by_id and name.startswith("sha256:"):
            for key, desc in sorted(index.items()):
                if desc.digest == name or self._load(desc.digest)[0].config.digest == name:
                    return key, desc
            raise ImageNotFoundError(f"no image with id {name} in the image store ({self.dir})")
        key = normalize_name(name)
        if key not in index:
            raise ImageNotFoundError(f"no image {key!r} in the image store ({self.dir}); "
                                     "import or build it first")
        return key, index[key]

    def _load(self, digest: Digest) -> tuple[Manifest, ImageConfig]:
        m = parse_manifest(self.read_blob(digest, "manifest"), f"manifest {digest}")
        config = self.read_blob(m.config.digest, "image config")
        return m, parse_config(config, f"image config {m.config.digest}")

    def _read_index(self) -> dict[str, Descriptor]:
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return {}
        out: dict[str, Descriptor] = {}
        for d in parse_index(data, str(self.index_path)):
            if REF_NAME in d.annotations:
                out[d.annotations[REF_NAME]] = d
        return out

    def _write_index(self, index: dict[str, Descriptor]) -> None:
        write_atomic(self.index_path, build_index([index[k] for k in sorted(index)]))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        for folder in (self.blobs_dir, self.layers_dir):
            folder.mkdir(parents=True, exist_ok=True)
        layout = self.dir / "oci-layout"
        if not layout.exists():
            write_atomic(layout, dump_json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
        with open(self.dir / "lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def list(self) -> list[ImageSummary]:  # last, so that ``list`` above means the builtin
        """Every named image, sorted by name."""
        out = []
        for key, desc in sorted(self._read_index().items()):
            m, cfg = self._load(desc.digest)
            out.append(ImageSummary(key, m.config.digest, desc.digest, cfg.created, _size(m)))
        return out


def _size(m: Manifest) -> int:
    """An image's size: its layer blobs as stored."""
    return sum(layer.size for layer in m.layers)

