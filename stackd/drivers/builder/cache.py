"""The build cache: for every step key (``stackd.build.stage_keys``) the stage state it led to,
and the layers that builds made, under ``<image store>/build-cache/``::

    index/<key hex>.json     a StageState (layers, config, history) as JSON
    blobs/<diff id hex>      an uncompressed layer tar a build made
    layers/<diff id hex>/    the same layer unpacked (overlayfs whiteouts), usable as a lowerdir
    work/<name>/             one running build's scratch space (<name>.lock is held while it runs)
    lock                     shared by running builds, exclusive while pruning

An entry is a hit only when every layer it lists can be found, in the image store (preferred)
or here; a layer the store has since dropped makes the entry a miss, never an error. Steps are
recorded as soon as they finish, so a failed build still lets the next one start after its
last good step; the image itself only reaches the store when a build succeeds. Layers that the
store holds too are dropped from here after a build (``prune_duplicates``), unless another build
is running. Writes are atomic (temporary name, rename). This is a driver: it stores what it is
given and decides nothing about what to build.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from stackd.drivers.builder.state import LayerDesc, StageState
from stackd.drivers.fsutil import remove_tree, tmp_name, write_atomic
from stackd.drivers.images.digests import Digest, hex_of, parse_digest
from stackd.drivers.images.errors import ImageError
from stackd.drivers.images.layers import unpack_layer
from stackd.drivers.images.store import ImageStore


class BuildCache:
    """The build cache of one image store."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.dir = store.dir / "build-cache"
        self.index_dir = self.dir / "index"
        self.blobs_dir = self.dir / "blobs"
        self.layers_dir = self.dir / "layers"
        self.work_dir = self.dir / "work"

    def _ensure(self) -> None:
        for d in (self.index_dir, self.blobs_dir, self.layers_dir, self.work_dir):
            d.mkdir(parents=True, exist_ok=True)

    # -- entries -------------------------------------------------------------------------

    def lookup(self, key: str) -> StageState | None:
        """The state recorded for ``key`` when all its layers are still at hand, else ``None``."""
        try:
            raw = json.loads((self.index_dir / f"{hex_of(parse_digest(key))}.json").read_bytes())
            state = StageState.from_json(raw)
        except (OSError, ValueError, KeyError, TypeError, ImageError):
            return None
        return state if all(self.layer_dir(d) is not None and self.blob(d) is not None
                            for d in state.layers) else None

    def record(self, key: str, state: StageState) -> None:
        self._ensure()
        data = json.dumps(state.to_json(), sort_keys=True, separators=(",", ":")).encode()
        write_atomic(self.index_dir / f"{hex_of(parse_digest(key))}.json", data)

    # -- layers --------------------------------------------------------------------------

    def layer_dir(self, desc: LayerDesc) -> Path | None:
        """The unpacked directory of a layer: the image store's, else the cache's."""
        for d in (self.store.layers_dir / hex_of(desc.diff_id), self.layers_dir / hex_of(desc.diff_id)):
            if d.is_dir():
                return d
        return None

    def blob(self, desc: LayerDesc) -> Path | None:
        """The blob file of a layer: the image store's, else the cache's."""
        for p in (self.store.blob_path(desc.digest), self.blobs_dir / hex_of(desc.digest)):
            if p.is_file():
                return p
        return None

    def open_blob(self, desc: LayerDesc) -> BinaryIO | None:
        """The layer's blob opened for ``ImageStore.add_image``: ``None`` when the store has it."""
        if self.store.has_blob(desc.digest):
            return None
        path = self.blob(desc)
        if path is None:
            raise ImageError(f"layer {desc.digest} is neither in the image store nor in the build cache")
        return open(path, "rb")

    def add_layer(self, tar: Path, digest: Digest, unpacked: Path | None = None) -> Path:
        """Keep the uncompressed layer tar ``tar`` (whose digest is ``digest``; the file is moved)
        and its unpacked directory: ``unpacked`` when the caller has it already (the upper
        directory of a RUN step, moved here as Docker's overlay2 keeps it; on the same
        filesystem), else the tar unpacked. Returns the directory."""
        self._ensure()
        hexd = hex_of(digest)
        final_dir = self.layers_dir / hexd
        if unpacked is not None and not final_dir.is_dir():
            try:
                os.rename(unpacked, final_dir)
            except OSError:
                if not final_dir.is_dir():  # not made by a concurrent build meanwhile
                    raise
        if not final_dir.is_dir():
            tmp = self.layers_dir / tmp_name(hexd)
            tmp.mkdir(mode=0o755)
            try:
                with open(tar, "rb") as f:
                    info = unpack_layer(f, tmp, self.store.whiteouts, f"build layer {digest}")
                if info.diff_id != digest:
                    raise ImageError(f"build layer {digest} changed while it was unpacked")
                try:
                    os.rename(tmp, final_dir)
                except OSError:
                    if not final_dir.is_dir():  # not made by a concurrent build meanwhile
                        raise
            finally:
                remove_tree(tmp)
        os.replace(tar, self.blobs_dir / hexd)
        return final_dir

    # -- build scratch space -------------------------------------------------------------

    @contextlib.contextmanager
    def building(self) -> Iterator[Path]:
        """Scratch space for one build, and the shared lock that keeps pruning away meanwhile.
        The directory is removed afterwards; the caller unmounts what it mounted in it. Its
        lock file (``<name>.lock``, held while the build runs) is taken before the directory
        exists, so that ``clean_stale`` never mistakes a starting build for a dead one."""
        self._ensure()
        with open(self.dir / "lock", "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_SH)
            name = tmp_name("build")
            mine_path = self.work_dir / f"{name}.lock"
            with open(mine_path, "a+b") as mine:
                fcntl.flock(mine.fileno(), fcntl.LOCK_EX)
                work = self.work_dir / name
                work.mkdir(mode=0o700)
                try:
                    yield work
                finally:
                    remove_tree(work)
                    mine_path.unlink(missing_ok=True)

    def clean_stale(self, unmount: Callable[[Path], None]) -> list[Path]:
        """Remove the scratch directories of builds that are no longer running (a crash left
        them), after ``unmount`` took down what is mounted in them; returns what was removed."""
        if not self.work_dir.is_dir():
            return []
        removed = []
        for entry in sorted(self.work_dir.iterdir()):
            if not entry.is_dir():
                continue
            lock_path = entry.with_name(entry.name + ".lock")
            with open(lock_path, "a+b") as f:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a running build holds it
                unmount(entry)
                remove_tree(entry)
                lock_path.unlink(missing_ok=True)
            removed.append(entry)
        return removed

    def prune_duplicates(self) -> int:
        """Drop the cache's copies of layers the image store holds too, unless a build is
        running; returns how many were dropped."""
        if not self.layers_dir.is_dir():
            return 0
        dropped = 0
        with open(self.dir / "lock", "a+b") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0
            for entry in sorted(self.layers_dir.iterdir()):
                digest = Digest("sha256:" + entry.name)
                if len(entry.name) == 64 and (self.store.layers_dir / entry.name).is_dir() \
                        and self.store.has_blob(digest):
                    remove_tree(entry)
                    (self.blobs_dir / entry.name).unlink(missing_ok=True)
                    dropped += 1
        return dropped

    def clear(self) -> None:
        """Forget every entry and drop every layer kept here (no build may be running)."""
        for d in (self.index_dir, self.blobs_dir, self.layers_dir):
            remove_tree(d)
