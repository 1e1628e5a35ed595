"""Fixtures of the builder's host tests (root): the OCI runtime with its state under a temporary
directory, and one Debian bootstrap per session in its own temporary image store.

Outside CI a missing root or tool skips the tests; in CI (``CI`` set) it fails them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackd.drivers.builder import BuildEvent, DebianBootstrap, find_image
from stackd.drivers.builder.mounts import unmount_under
from stackd.drivers.images.store import ImageStore
from stackd.drivers.runtime import OciRuntime, detect
from tests.host.images.hostutil import need_root, need_tool

PREFIX = "stkt-bld-"


@pytest.fixture(scope="session")
def runtime() -> Iterator[OciRuntime]:
    need_root()
    root = Path(tempfile.mkdtemp(prefix=PREFIX + "rt-"))
    try:
        yield OciRuntime(detect(prefix=PREFIX + "probe-"), root=root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def scratch_root() -> Iterator[Path]:
    """A temporary data root; whatever is mounted below it is taken down afterwards."""
    root = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        yield root
    finally:
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class DebianStore:
    store: ImageStore
    events: tuple[BuildEvent, ...]
    tmp: Path


@pytest.fixture(scope="session")
def debian_store() -> Iterator[DebianStore]:
    """An image store holding ``debian:bookworm-slim``, bootstrapped once per session through
    the builder's base image lookup (about half a minute; needs Debian's archive)."""
    need_root()
    need_tool("mmdebstrap", "mmdebstrap")
    root = Path(tempfile.mkdtemp(prefix=PREFIX + "debian-"))
    try:
        store = ImageStore(root / "data")
        events: list[BuildEvent] = []
        find_image(store, "debian:bookworm-slim", [DebianBootstrap(tmp_dir=root)], events.append)
        yield DebianStore(store, tuple(events), root)
    finally:
        unmount_under(root)
        shutil.rmtree(root, ignore_errors=True)
