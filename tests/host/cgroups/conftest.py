"""Fixtures of the cgroup host tests: root check, a random test root, child processes, and a private
cgroup2 mount, each cleaned up in its finalizer also when the test fails.

Skipped only outside CI when not root; in CI (``CI`` set) a missing privilege fails instead.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackd.drivers.cgroups.detect import CgroupLayout, detect, read_v2_controllers
from tests.host.cgroups.support import PREFIX, kill_children, purge


@pytest.fixture(scope="session")
def host_root() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the cgroup host tests need root (CI runs as root)")
        pytest.skip("the cgroup host tests need root")


@pytest.fixture(scope="session")
def host_layout(host_root: None) -> Iterator[CgroupLayout]:
    """This host's layout; at the end of the session no ``stkt-cg-*`` cgroup may be left anywhere."""
    layout = detect()
    yield layout
    left = [str(p) for m in layout.mounts() for p in m.glob(f"{PREFIX}*")]
    assert not left, f"cgroups left behind by the tests: {left}"


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes a test starts; killed and reaped at the end."""
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        kill_children(started)


@pytest.fixture
def test_root(host_layout: CgroupLayout, children: list[subprocess.Popen[str]]) -> Iterator[str]:
    """A random cgroup root (``/stkt-cg-<hex>``) used instead of ``/stackd``; at the end the test's
    children are killed and the root is purged in every hierarchy of the host."""
    root = f"/{PREFIX}{secrets.token_hex(4)}"
    try:
        yield root
    finally:
        kill_children(children)
        left = purge(host_layout.mounts(), root)
        assert not left, f"could not remove test cgroups: {left}"


@pytest.fixture
def cgroup2(host_root: None, children: list[subprocess.Popen[str]]) -> Iterator[tuple[CgroupLayout, str]]:
    """A cgroup2 hierarchy mounted for this test in a temp dir, as a pure-v2 layout, and a random
    root in it. On a hybrid host this is the same hierarchy as the unified mount (whatever
    controllers it holds); at the end the test root is purged, the controllers the test enabled at
    the hierarchy's root are disabled again, and the mount is removed."""
    where = Path(tempfile.mkdtemp(prefix=PREFIX))
    mounted = False
    root = f"/{PREFIX}{secrets.token_hex(4)}"
    before: set[str] = set()
    try:
        subprocess.run(["mount", "-t", "cgroup2", "none", str(where)], check=True, capture_output=True)
        mounted = True
        before = set((where / "cgroup.subtree_control").read_text().split())
        layout = CgroupLayout(mode="v2", v2=where, v2_controllers=read_v2_controllers(where))
        yield layout, root
    finally:
        kill_children(children)
        left: list[str] = []
        if mounted:
            left = purge([where], root)
            now = set((where / "cgroup.subtree_control").read_text().split())
            for controller in sorted(now - before):
                with contextlib.suppress(OSError):
                    (where / "cgroup.subtree_control").write_text(f"-{controller}")
            subprocess.run(["umount", str(where)], check=True, capture_output=True)
        where.rmdir()
        assert not left, f"could not remove test cgroups: {left}"
