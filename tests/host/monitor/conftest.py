"""Fixtures of the container monitor's host tests: a busybox root file system and, per test and
runtime (crun and runc), a lab with its own runtime state, work directory and cgroup parent.

Every id, cgroup and directory starts with ``stkt-mon-``. The lab's finalizer (run also when a
test fails) kills and deletes every container, waits for their conmons to end (killing any that
does not), removes the cgroups the runtime leaves in every hierarchy and the work directory;
at the end of the session no live conmon of these tests may be left. Skipped only outside CI
when root, busybox-static, conmon or a runtime is missing; in CI (``CI`` set) that fails instead.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stackd.drivers.monitor.conmon import proc_state
from stackd.drivers.monitor.monitor import MonitoredContainer, find_conmon, start_container
from stackd.drivers.runtime import (
    ContainerNotFound,
    ContainerRequest,
    HostLimits,
    OciRuntime,
    oci_config,
    probe,
    probe_host_limits,
    write_bundle,
)
from stackd.drivers.runtime.host import cgroup_mount_points, read_mountinfo
from stackd.drivers.runtime.runtime import find_binary
from stackd.errors import DriverError

PREFIX = "stkt-mon-"
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "sleep", "cat", "id", "pwd", "touch")


def need(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run every host test)")
        pytest.skip(why)


def wait_until(condition: Callable[[], bool], what: str, deadline: float = 30.0) -> None:
    """Poll ``condition`` (a guard against hanging, not a timing assertion)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"still waiting for {what}")
        time.sleep(0.02)


def _is_static_elf(path: Path) -> bool:
    data = path.read_bytes()
    if data[:6] != b"\x7fELF\x02\x01":
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def live_conmons(marker: str) -> list[int]:
    """Pids of live (not zombie) conmon processes whose command line mentions ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = proc_state((entry / "stat").read_text())
        except OSError:
            continue
        args = cmdline.split(b"\0")
        if Path(args[0].decode(errors="replace")).name == "conmon" and state not in ("Z", "X", "") \
                and marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="session")
def conmon_binary() -> Iterator[str]:
    need(os.geteuid() == 0, "host tests need root")
    try:
        path = find_conmon()
    except DriverError:
        need(False, "conmon is not installed (apt-get install conmon)")
        raise
    yield path
    left = live_conmons(PREFIX)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"conmon processes left behind by the tests: {left}"


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory, conmon_binary: str) -> Path:
    need(BUSYBOX.is_file() and _is_static_elf(BUSYBOX), "needs a static /bin/busybox (busybox-static)")
    root = tmp_path_factory.mktemp(PREFIX) / "rootfs"
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "sig"):
        (root / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\nwww:x:33:33:www:/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nwww:x:33:\nextra:x:50:www\n")
    return root


@pytest.fixture(scope="session")
def limits() -> HostLimits:
    return probe_host_limits()


@dataclass(frozen=True)
class Files:
    """Where conmon and the runtime write for one container."""

    log_path: Path
    exit_dir: Path
    pid_file: Path
    conmon_pid_file: Path


@dataclass
class Lab:
    """One runtime with a state dir, a short work directory and a cgroup parent of its own."""

    rt: OciRuntime
    rootfs: Path
    work: Path
    limits: HostLimits
    conmon: str
    cgroup_parent: str = field(default_factory=lambda: f"/{PREFIX}{secrets.token_hex(4)}")
    ids: list[str] = field(default_factory=list)

    def bundle(self, *args: str, **kw: Any) -> tuple[str, Path]:
        cid = f"{PREFIX}{secrets.token_hex(6)}"
        self.ids.append(cid)
        req = ContainerRequest(rootfs=str(self.rootfs), args=args, cgroups_path=f"{self.cgroup_parent}/{cid}",
                               **kw)
        return cid, write_bundle(self.work / "bundles" / cid, oci_config(req, self.limits))

    @property
    def state_dir(self) -> Path:
        return self.work / "mon"

    def files(self, cid: str) -> Files:
        return Files(self.work / "logs" / f"{cid}.log", self.work / "exits", self.work / "run" / f"{cid}.pid",
                     self.work / "run" / f"{cid}.conmon.pid")

    def start_bundle(self, cid: str, bundle: Path, *, tty: bool = False,
                     log_size_max: int | None = None) -> MonitoredContainer:
        f = self.files(cid)
        return start_container(self.rt, cid, bundle, log_path=f.log_path, exit_dir=f.exit_dir,
                               pid_file=f.pid_file, conmon_pid_file=f.conmon_pid_file, tty=tty,
                               state_dir=self.state_dir, log_size_max=log_size_max, conmon=self.conmon)

    def start(self, *args: str, log_size_max: int | None = None, **kw: Any) -> MonitoredContainer:
        cid, bundle = self.bundle(*args, **kw)
        return self.start_bundle(cid, bundle, tty=bool(kw.get("terminal")), log_size_max=log_size_max)


def _cleanup(lab: Lab) -> list[str]:
    problems = []
    for cid in lab.ids:
        with contextlib.suppress(DriverError):
            lab.rt.kill(cid, signal.SIGKILL, all_processes=True)
        try:
            lab.rt.delete(cid, force=True)
        except ContainerNotFound:
            pass
        except DriverError as exc:
            problems.append(f"delete {cid}: {exc}")
    try:
        wait_until(lambda: not live_conmons(str(lab.work)), "conmon to end", deadline=15)
    except AssertionError:
        for pid in live_conmons(str(lab.work)):
            problems.append(f"conmon {pid} still running")
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    for mount in cgroup_mount_points(read_mountinfo()):
        top = Path(mount, lab.cgroup_parent.lstrip("/"))
        for dirpath, _, _ in os.walk(top, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError as exc:
                problems.append(f"rmdir {dirpath}: {exc}")
    shutil.rmtree(lab.work, ignore_errors=True)
    return problems


@pytest.fixture(params=("crun", "runc"))
def lab(request: pytest.FixtureRequest, rootfs: Path, limits: HostLimits,
        conmon_binary: str) -> Iterator[Lab]:
    name: str = request.param
    need(find_binary(name) is not None, f"{name} is not installed")
    info = probe(name, prefix=f"{PREFIX}probe-")
    # short: conmon's attach socket path lives below it and must fit a unix socket address
    work = Path(tempfile.mkdtemp(prefix=PREFIX))
    harness = Lab(OciRuntime(info, root=work / "state"), rootfs, work, limits, conmon_binary)
    try:
        yield harness
    finally:
        problems = _cleanup(harness)
        assert not problems, f"cleanup left things behind: {problems}"
