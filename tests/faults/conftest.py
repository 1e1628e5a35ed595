"""Fixtures of the fault tests: one stackd for the session (its own data root and run directory
under /tmp, the busybox image imported, the daemon started here and stopped at the end) and a
``Project`` per test under a name of its own.

A project is taken down when its test ends (also when the test failed); then whatever of it is
still on the host (``leftovers.find``) is swept by hand and fails the test. The session's end
stops the daemon and fails when a mount is left under its directory. These tests need root; in
CI (``CI`` set) a missing requirement fails instead of skipping.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackd.drivers.runtime.host import read_mountinfo
from tests.e2e.runner import StackdDirs
from tests.faults import leftovers
from tests.faults.harness import Project, Stackd
from tests.faults.image import busybox_archive
from tests.host.containers.support import require_host, unmount_under

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")

@pytest.fixture(scope="session")
def stackd() -> Iterator[Stackd]:
    """The session's daemon (running when each test starts: see ``running_stackd``)."""
    require_host()
    base = Path(tempfile.mkdtemp(prefix="stkf-"))  # short: conmon's socket paths live below it
    daemon = Stackd(StackdDirs(base / "data", base / "run"), base)
    forwarding = IP_FORWARD.read_text()
    try:
        daemon.cli("image", "import", str(busybox_archive(base / "busybox.tar")))
        daemon.start()
        daemon.cli("ls")  # the CLI reaches it
        yield daemon
    finally:
        daemon.stop()
        left = [e.mount_point for e in read_mountinfo() if e.mount_point.startswith(f"{base}/")]
        if left:
            unmount_under(base)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"mounts left under {base}: {left}"
        now = IP_FORWARD.read_text()
        IP_FORWARD.write_text(forwarding)
        assert now == forwarding, f"ip_forward was {forwarding.strip()} before the session, {now.strip()} " \
            "after"


@pytest.fixture
def running_stackd(stackd: Stackd) -> Stackd:
    """The session's daemon, started again when an earlier test left it dead."""
    if stackd.pid() is None:
        stackd.start()
        stackd.cli("ls")
    return stackd


@pytest.fixture
def project(running_stackd: Stackd, tmp_path: Path) -> Iterator[Project]:
    """A fresh project; taken down when the test ends, and checked for leftovers."""
    p = Project(running_stackd, tmp_path / "project")
    yield p
    if (p.folder / "stack.yaml").is_file():
        p.down("-v", "--remove-orphans", check=False)
    found = leftovers.settle(p)
    if found:
        leftovers.sweep(p)
        pytest.fail(f"project {p.name} left on the host (swept now):\n  " + "\n  ".join(found))
