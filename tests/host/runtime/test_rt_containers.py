"""Real containers through crun and runc, from a tiny busybox root file system: run to completion,
exit statuses, the create/start/kill/delete lifecycle, cgroup limits, hostname, read-only root,
capabilities, rlimit clamping, seccomp.

Root only. Every container id and cgroup starts with ``stkt-rt-``; the fixture's finalizer kills
and deletes every container, removes the cgroup directories the runtime leaves in every
hierarchy and unmounts anything left under the test's directory, also when a test fails.
Skipped only outside CI when root, busybox-static or the runtime is missing; in CI (``CI`` set)
a missing piece fails instead.
"""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stackd.drivers.runtime.bundle import write_bundle
from stackd.drivers.runtime.host import (
    cgroup_mode,
    cgroup_mount_points,
    probe_host_limits,
    read_mountinfo,
)
from stackd.drivers.runtime.request import (
    HOST,
    ContainerRequest,
    HostLimits,
    Mount,
    Namespaces,
    Resources,
    Rlimit,
)
from stackd.drivers.runtime.runtime import (
    ContainerNotFound,
    ContainerNotRunning,
    OciRuntime,
    detect,
    find_binary,
    probe,
)
from stackd.drivers.runtime.spec import discarded, oci_config
from stackd.errors import DriverError, PermanentDriverError

pytestmark = pytest.mark.host

RUNTIMES = ("crun", "runc")
PREFIX = "stkt-rt-"
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "echo", "sleep", "cat", "id", "chown", "touch", "hostname", "grep", "kill", "awk")
MIB = 1 << 20


def _need(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run every host test)")
        pytest.skip(why)


def _is_static_elf(path: Path) -> bool:
    """A 64-bit little-endian ELF without a PT_INTERP program header (no dynamic loader)."""
    data = path.read_bytes()
    if data[:6] != b"\x7fELF\x02\x01":
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != 3 for i in range(phnum))


def _wait_until(condition: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"still waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need(os.geteuid() == 0, "host tests need root")
    _need(BUSYBOX.is_file() and _is_static_elf(BUSYBOX), "needs a static /bin/busybox (busybox-static)")
    root = tmp_path_factory.mktemp(PREFIX) / "rootfs"
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        (root / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    return root


@pytest.fixture(scope="module")
def limits() -> HostLimits:
    return probe_host_limits()


@dataclass
class Harness:
    """One runtime, a state dir and a cgroup parent of this test's own, and the ids it made."""

    rt: OciRuntime
    rootfs: Path
    workdir: Path
    limits: HostLimits
    cgroup_parent: str = field(default_factory=lambda: f"/{PREFIX}{secrets.token_hex(4)}")
    ids: list[str] = field(default_factory=list)

    def bundle(self, *args: str, **kw: Any) -> tuple[str, Path]:
        cid = f"{PREFIX}{secrets.token_hex(6)}"
        self.ids.append(cid)
        req = ContainerRequest(rootfs=str(self.rootfs), args=args,
                               cgroups_path=f"{self.cgroup_parent}/grp/{cid}", **kw)
        return cid, write_bundle(self.workdir / cid, oci_config(req, self.limits))

    def run(self, *args: str, **kw: Any) -> tuple[int, str, str]:
        cid, bundle = self.bundle(*args, **kw)
        out, err = self.workdir / f"{cid}.out", self.workdir / f"{cid}.err"
        code = self.rt.run_to_completion(cid, bundle, out, err, timeout=60)
        return code, out.read_text(), err.read_text()

    def started(self, *args: str, **kw: Any) -> str:
        cid, bundle = self.bundle(*args, **kw)
        self.rt.create(cid, bundle)
        self.rt.start(cid)
        return cid

    def cgroup_file(self, cid: str, controller: str, v1_name: str, v2_name: str) -> Path:
        entries = read_mountinfo()
        path = f"{self.cgroup_parent}/grp/{cid}".lstrip("/")
        if cgroup_mode(entries) == "v2":
            (root,) = [e.mount_point for e in entries if e.fstype == "cgroup2"]
            return Path(root, path, v2_name)
        (root,) = [e.mount_point for e in entries if e.fstype == "cgroup" and controller in e.super_options]
        return Path(root, path, v1_name)


def _cleanup(h: Harness) -> list[str]:
    """Kill and delete every container, remove our cgroups everywhere, unmount leftovers."""
    problems = []
    for cid in h.ids:
        with contextlib.suppress(DriverError):
            h.rt.kill(cid, signal.SIGKILL, all_processes=True)
        try:
            h.rt.delete(cid, force=True)
        except ContainerNotFound:
            pass
        except DriverError as exc:
            problems.append(f"delete {cid}: {exc}")
    for mount in cgroup_mount_points(read_mountinfo()):
        top = Path(mount, h.cgroup_parent.lstrip("/"))
        for dirpath, _, _ in os.walk(top, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError as exc:
                problems.append(f"rmdir {dirpath}: {exc}")
    for entry in reversed(read_mountinfo()):
        if entry.mount_point.startswith(str(h.workdir)):
            done = subprocess.run(["umount", "-l", entry.mount_point], capture_output=True, check=False)
            if done.returncode:
                problems.append(f"umount {entry.mount_point}: {done.stderr.decode().strip()}")
    return problems


@pytest.fixture(params=RUNTIMES)
def h(request: pytest.FixtureRequest, rootfs: Path, limits: HostLimits, tmp_path: Path) -> Iterator[Harness]:
    name: str = request.param
    _need(find_binary(name) is not None, f"{name} is not installed")
    info = probe(name, prefix=f"{PREFIX}probe-")
    harness = Harness(OciRuntime(info, root=tmp_path / "state"), rootfs, tmp_path, limits)
    try:
        yield harness
    finally:
        problems = _cleanup(harness)
        assert not problems, f"cleanup left things behind: {problems}"


def test_echo_runs_to_completion_with_its_output(h: Harness) -> None:
    assert h.run("echo", "hi") == (0, "hi\n", "")
    assert h.rt.list() == []


def test_exit_status_and_death_by_signal(h: Harness) -> None:
    assert h.run("sh", "-c", "exit 3")[0] == 3
    # the init of a PID namespace cannot be killed from inside: share the host's to die by SIGKILL
    assert h.run("sh", "-c", "kill -9 $$", namespaces=Namespaces(pid=HOST))[0] == 128 + 9


def test_lifecycle_create_start_kill_delete(h: Harness) -> None:
    cid, bundle = h.bundle("sleep", "1000")
    h.rt.create(cid, bundle)
    assert h.rt.state(cid)["status"] == "created"
    h.rt.start(cid)
    state = h.rt.state(cid)
    assert state["status"] == "running"
    assert Path(f"/proc/{state['pid']}").exists()
    assert cid in [c["id"] for c in h.rt.list()]
    h.rt.kill(cid, "SIGKILL")
    _wait_until(lambda: h.rt.state(cid)["status"] == "stopped", "the container to stop")
    with pytest.raises(ContainerNotRunning):
        h.rt.kill(cid, signal.SIGKILL)
    leaf = h.cgroup_file(cid, "pids", "pids.max", "pids.max").parent
    h.rt.delete(cid)
    with pytest.raises(ContainerNotFound):
        h.rt.state(cid)
    assert cid not in [c["id"] for c in h.rt.list()]
    assert not leaf.exists()  # the runtime removes the container's own cgroup


def test_memory_limit_is_applied(h: Harness) -> None:
    cid = h.started("sleep", "1000", resources=Resources(memory=32 * MIB))
    limit = h.cgroup_file(cid, "memory", "memory.limit_in_bytes", "memory.max")
    assert int(limit.read_text()) == 32 * MIB


def test_memory_limit_kills_a_process_that_outgrows_it(h: Harness) -> None:
    # the virtual-memory rlimit is a backstop: without the cgroup limit, awk fails with ENOMEM
    # (a small exit status) instead of eating the host's memory
    grow = 'ulimit -v 262144; awk "BEGIN { s = \\"xxxxxxxxxxxxxxxx\\"; while (1) s = s s }"'
    assert h.run("sh", "-c", grow, resources=Resources(memory=32 * MIB))[0] == 128 + signal.SIGKILL


def test_pids_limit_is_applied(h: Harness) -> None:
    cid = h.started("sleep", "1000", resources=Resources(pids_limit=32))
    assert h.cgroup_file(cid, "pids", "pids.max", "pids.max").read_text().strip() == "32"


def test_hostname(h: Harness) -> None:
    assert h.run("hostname", hostname="stkt-box")[1] == "stkt-box\n"


def test_read_only_root_refuses_writes(h: Harness) -> None:
    code, _, err = h.run("touch", "/written", readonly_rootfs=True)
    assert code != 0 and "Read-only file system" in err
    assert not (h.rootfs / "written").exists()
    try:
        assert h.run("touch", "/written")[0] == 0
        assert (h.rootfs / "written").exists()
    finally:
        (h.rootfs / "written").unlink(missing_ok=True)


def test_a_dropped_capability_is_gone(h: Harness) -> None:
    tmp = (Mount("/tmp", "tmpfs", "tmpfs", ("nosuid", "nodev", "mode=1777")),)
    script = "touch /tmp/f && chown 1:1 /tmp/f"
    assert h.run("sh", "-c", script, mounts=tmp)[0] == 0
    code, _, err = h.run("sh", "-c", script, mounts=tmp, cap_drop=("CHOWN",))
    assert code != 0 and "Operation not permitted" in err


def test_rlimits_are_clamped_to_the_callers_hard_limit(h: Harness) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    _need(hard != resource.RLIM_INFINITY, "needs a finite hard NOFILE limit")
    code, out, _ = h.run("sh", "-c", "ulimit -Hn", rlimits=(Rlimit("nofile", hard * 10, hard * 10),))
    assert (code, out) == (0, f"{hard}\n")


def test_seccomp_filter_is_loaded_and_blocks_new_namespaces(h: Harness) -> None:
    assert "Seccomp:\t2" in h.run("grep", "Seccomp:", "/proc/self/status")[1]
    assert h.run("sh", "-c", "id -u")[1] == "0\n"


def _leaf_cgroups(h: Harness, cid: str) -> list[Path]:
    leaf = f"{h.cgroup_parent}/grp/{cid}".lstrip("/")
    return [Path(m, leaf) for m in cgroup_mount_points(read_mountinfo()) if Path(m, leaf).exists()]


def test_a_missing_program_is_a_permanent_error_that_leaves_nothing(h: Harness) -> None:
    cid, bundle = h.bundle("/bin/no-such-program")
    with pytest.raises(PermanentDriverError, match="no-such-program"):
        h.rt.create(cid, bundle)
    assert h.rt.list() == []
    assert _leaf_cgroups(h, cid) == []
    cid, bundle = h.bundle("/bin/no-such-program")
    with pytest.raises(PermanentDriverError, match="no-such-program"):
        h.rt.run_to_completion(cid, bundle)
    assert h.rt.list() == []
    assert _leaf_cgroups(h, cid) == []


def test_settings_the_host_lacks_are_discarded_and_the_rest_applied(h: Harness) -> None:
    res = Resources(cpus=0.5, cpu_shares=512, cpuset_cpus="0", memory=64 * MIB, memory_swappiness=10,
                    pids_limit=64, blkio_weight=300)
    warnings = discarded(ContainerRequest(rootfs="/", args=("sh",), resources=res), h.limits)
    assert all("discarded" in w for w in warnings)
    cid = h.started("sleep", "1000", resources=res)
    if h.limits.cpu_quota:
        quota = h.cgroup_file(cid, "cpu", "cpu.cfs_quota_us", "cpu.max").read_text().split()[0]
        assert quota == "50000"
    if h.limits.blkio_weight:
        assert h.cgroup_file(cid, "blkio", "blkio.weight", "io.weight").exists()


def test_detect_finds_a_runtime_that_works_here() -> None:
    _need(os.geteuid() == 0, "host tests need root")
    _need(any(find_binary(n) for n in RUNTIMES), "neither crun nor runc is installed")
    info = detect(prefix=f"{PREFIX}probe-")
    assert info.name in RUNTIMES and Path(info.path).is_file()
    assert info.cgroup_mode == cgroup_mode(read_mountinfo())
    if info.needs_private_mount_ns:
        assert info.cgroup_mode == "hybrid" and info.unified_mount
