"""Where the images a build starts from come from: the image store, else a ``BaseImageSource``.

``find_image`` looks in the store first, then asks each source in turn to put the image there.
The one source today is ``DebianBootstrap`` (``debian:<suite>[-slim]`` made with mmdebstrap);
a registry client will be another ``BaseImageSource`` later. Sources run one at a time per
store (a file lock), so parallel builds needing the same base bootstrap it once. Anything no
source can make is a ``BuildError`` saying what to do. This module decides nothing about which
images a build needs; the builder asks.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from stackd.drivers.builder.events import BuildError, BuildEvent, Progress
from stackd.drivers.images.bootstrap import (
    DEFAULT_MIRROR,
    DEFAULT_SECURITY_MIRROR,
    bootstrap_debian,
    parse_debian_ref,
)
from stackd.drivers.images.errors import ImageNotFoundError
from stackd.drivers.images.names import normalize_name
from stackd.drivers.images.records import ImageRef
from stackd.drivers.images.store import ImageStore


class BaseImageSource(Protocol):
    """Something that can add an image missing from the store (a bootstrapper, a registry)."""

    def provide(self, store: ImageStore, ref: str, progress: Progress) -> ImageRef | None:
        """Add the image ``ref`` to ``store`` and return it; ``None`` when this source cannot
        make that image. Failures of a source that can are ``DriverError`` s."""


class DebianBootstrap:
    """``debian:<suite>`` and ``debian:<suite>-slim`` from Debian's archive (mmdebstrap)."""

    def __init__(self, mirror: str = DEFAULT_MIRROR, security_mirror: str = DEFAULT_SECURITY_MIRROR,
                 tmp_dir: Path | None = None) -> None:
        self.mirror = mirror
        self.security_mirror = security_mirror
        self.tmp_dir = tmp_dir

    def provide(self, store: ImageStore, ref: str, progress: Progress) -> ImageRef | None:
        parsed = parse_debian_ref(ref)
        if parsed is None:
            return None
        suite, slim = parsed
        progress(BuildEvent("message", f"{ref} is not in the image store: bootstrapping Debian {suite}"
                                       f"{' (slim)' if slim else ''} from {self.mirror} with mmdebstrap "
                                       "(once; it takes about half a minute)"))
        return bootstrap_debian(store, normalize_name(ref), suite=suite, slim=slim, mirror=self.mirror,
                                security_mirror=self.security_mirror, tmp_dir=self.tmp_dir)


DEFAULT_SOURCES: tuple[BaseImageSource, ...] = (DebianBootstrap(),)


@contextlib.contextmanager
def _sources_lock(store: ImageStore) -> Iterator[None]:
    folder = store.dir / "build-cache"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "bases.lock", "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def find_image(store: ImageStore, ref: str, sources: Sequence[BaseImageSource], progress: Progress,
               what: str = "base image") -> ImageRef:
    """The image ``ref`` from the store, made by a source first when it is missing."""
    try:
        return store.resolve(ref)
    except ImageNotFoundError:
        pass
    with _sources_lock(store):
        try:
            return store.resolve(ref)  # another build made it while this one waited
        except ImageNotFoundError:
            pass
        for source in sources:
            made = source.provide(store, ref, progress)
            if made is not None:
                return made
    raise BuildError(f"{what} {ref!r} is not in the image store, and stackd cannot make it here",
                     hint="import it with `stack image import`, build it first, or start FROM a "
                          "debian:<suite>[-slim] image, which stackd bootstraps; pulling from "
                          "registries is not supported yet")
