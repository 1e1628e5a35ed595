"""Fixtures of the end-to-end tests: stackd directories for the session with the example stack's
images built once, and a fresh copy of the example stack (own project name) per test.

The session's data root and run directory live in one temporary directory (set
``STACKD_E2E_DATA_ROOT`` to keep and reuse a data root between sessions, which saves the image
build). The daemon the first ``stack up`` starts serves the whole session and is stopped at its
end. Images survive between tests; containers do not: every ``demo`` is taken down with its
volumes when its test ends, also when the test failed. These tests need root; under CI (``CI`` set)
a missing requirement fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.hoststate import SBIN_PATH
from tests.e2e.runner import Demo, StackdDirs, stop_daemon

BUILD_TIMEOUT = 1200.0
KEEP_ENV = "STACKD_E2E_DATA_ROOT"


def need(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run the end-to-end tests)")
        pytest.skip(why)


def _mounted_under(path: Path) -> list[str]:
    prefix = f"{path}/"
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(prefix)]


@pytest.fixture(scope="session")
def stackd_dirs() -> Iterator[StackdDirs]:
    """Data root and run directory for the session, with the example stack's images built."""
    need(os.geteuid() == 0, "the end-to-end tests need root")
    search = os.environ.get("PATH", "") + ":" + SBIN_PATH
    for tool in ("ip", "nft", "conmon"):
        need(shutil.which(tool, path=search) is not None, f"{tool} is not installed")
    kept = os.environ.get(KEEP_ENV)
    base = Path(tempfile.mkdtemp(prefix="stackd-e2e-"))
    dirs = StackdDirs(Path(kept) if kept else base / "data", base / "run")
    builder = Demo(dirs, base / "build")
    builder.stack("build", timeout=BUILD_TIMEOUT)
    try:
        yield dirs
    finally:
        stop_daemon(dirs.run_dir)  # the first `stack up` started it; it must not outlive the session
    left = _mounted_under(base) + (_mounted_under(dirs.data_root) if kept else [])
    if not left:  # never delete through a mount a broken test left behind
        shutil.rmtree(base, ignore_errors=True)


def _take_down(demo: Demo) -> None:
    """Whatever the test did, remove the project's containers, networks and volumes."""
    demo.stack("down", "-v", "--remove-orphans", check=False)


@pytest.fixture
def demo(stackd_dirs: StackdDirs, tmp_path: Path) -> Iterator[Demo]:
    """A fresh copy of the example stack under its own project name; taken down afterwards."""
    d = Demo(stackd_dirs, tmp_path / "demo")
    yield d
    _take_down(d)


@pytest.fixture(scope="module")
def running(stackd_dirs: StackdDirs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The example stack brought up with ``stack up -d`` once for the module's read-only tests."""
    d = Demo(stackd_dirs, tmp_path_factory.mktemp("running") / "demo")
    try:
        d.up()
        yield d
    finally:
        _take_down(d)
