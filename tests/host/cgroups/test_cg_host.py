"""The cgroups driver on this host's real layout (v1 or hybrid here, pure v2 elsewhere): limit files,
limits the kernel enforces on real processes, drift, statistics and removal.

Root only. Everything lives under a random ``/stkt-cg-<hex>`` root instead of ``/stackd``; the
fixtures kill the test's children and remove that root in every hierarchy, also on failure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stackd.drivers.cgroups.detect import CgroupLayout
from stackd.drivers.cgroups.driver import CgroupDriver
from stackd.drivers.cgroups.limits import GroupLimits, drift
from stackd.errors import TransientDriverError
from tests.host.cgroups.support import python, retry_transient, spawn

pytestmark = pytest.mark.host

MiB = 1 << 20

# tries 10 forks; children sleep until killed; prints "<forked> <refused>"
FORK_TEN = """
import os, time
kids, refused = [], 0
for _ in range(10):
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
for pid in kids:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print(len(kids), refused)
"""

ALLOCATE_AND_WAIT = """
import sys, time
block = b"x" * (8 << 20)
print("ready", flush=True)
time.sleep(300)
"""


def cgroup_dir(layout: CgroupLayout, controller: str, rel: str) -> Path:
    backing = layout.backing(controller)
    assert backing is not None, f"this host has no {controller} controller"
    return backing[1] / rel.lstrip("/")


def version_of(layout: CgroupLayout, controller: str) -> str:
    backing = layout.backing(controller)
    assert backing is not None
    return backing[0]


def content(path: Path) -> str:
    return path.read_text().strip()


def nowhere(layout: CgroupLayout, rel: str) -> bool:
    return not any((m / rel.lstrip("/")).exists() for m in layout.mounts())


def test_group_files_hold_the_limits(host_layout: CgroupLayout, test_root: str) -> None:
    driver = CgroupDriver(host_layout, root=test_root)
    limits = GroupLimits(cpu_weight=200, cpus=1.5, memory=64 * MiB, pids=20)
    driver.ensure_group("proj", "fg", limits)
    rel = driver.group_path("proj", "fg")
    cpu, memory, pids = (cgroup_dir(host_layout, c, rel) for c in ("cpu", "memory", "pids"))
    if version_of(host_layout, "cpu") == "v1":
        assert content(cpu / "cpu.shares") == "2048"
        assert content(cpu / "cpu.cfs_period_us") == "100000"
        assert content(cpu / "cpu.cfs_quota_us") == "150000"
    else:
        assert content(cpu / "cpu.weight") == "200"
        assert content(cpu / "cpu.max") == "150000 100000"
    memory_file = "memory.limit_in_bytes" if version_of(host_layout, "memory") == "v1" else "memory.max"
    assert content(memory / memory_file) == str(64 * MiB)
    assert content(pids / "pids.max") == "20"

    observed = driver.read_group("proj", "fg")
    assert observed is not None and drift(limits, observed) == ()
    assert driver.list_projects() == ("proj",)
    assert driver.list_groups("proj") == ("fg",)

    driver.remove_project("proj")
    assert nowhere(host_layout, test_root)
    assert driver.list_projects() == ()
    assert driver.read_group("proj", "fg") is None


def test_drift_is_seen_and_a_second_pass_repairs_it(host_layout: CgroupLayout, test_root: str) -> None:
    driver = CgroupDriver(host_layout, root=test_root)
    driver.ensure_group("proj", "bg", GroupLimits(pids=20, cpus=0.5, memory=32 * MiB))
    pids_max = cgroup_dir(host_layout, "pids", driver.group_path("proj", "bg")) / "pids.max"
    pids_max.write_text("7")  # someone changed it behind stackd's back
    observed = driver.read_group("proj", "bg")
    assert observed is not None
    assert drift(GroupLimits(pids=20, cpus=0.5, memory=32 * MiB), observed) == ("pids",)

    driver.ensure_group("proj", "bg", GroupLimits(pids=20, cpus=0.5, memory=32 * MiB))
    assert content(pids_max) == "20"

    driver.ensure_group("proj", "bg", GroupLimits())  # limits removed from the stack file
    observed = driver.read_group("proj", "bg")
    assert observed is not None
    assert (observed.pids, observed.cpus, observed.memory) == (None, None, None)
    assert content(pids_max) == "max"
    retry_transient(lambda: driver.remove_project("proj"))
    assert nowhere(host_layout, test_root)


def test_pids_limit_stops_a_fork_bomb(host_layout: CgroupLayout, test_root: str,
                                      children: list[subprocess.Popen[str]]) -> None:
    driver = CgroupDriver(host_layout, root=test_root)
    driver.ensure_group("proj", "fg", GroupLimits(pids=5))
    group = cgroup_dir(host_layout, "pids", driver.group_path("proj", "fg"))
    child = spawn(python(FORK_TEN), [group], children)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert out.split() == ["4", "6"]  # the interpreter itself is the fifth task


def test_memory_limit_kills_an_allocation_above_it(host_layout: CgroupLayout, test_root: str,
                                                   children: list[subprocess.Popen[str]]) -> None:
    driver = CgroupDriver(host_layout, root=test_root)
    driver.ensure_group("proj", "fg", GroupLimits(memory=32 * MiB))
    group = cgroup_dir(host_layout, "memory", driver.group_path("proj", "fg"))

    small = spawn(python("b = b'x' * (4 << 20); print(len(b))"), [group], children)
    out, err = small.communicate(timeout=120)
    assert small.returncode == 0, err  # the limit is not simply killing everything
    assert out.strip() == str(4 << 20)

    big = spawn(python("b = b'x' * (64 << 20); print(len(b))"), [group], children)
    out, _ = big.communicate(timeout=120)
    assert big.returncode == -9
    assert out == ""
    events = "memory.oom_control" if version_of(host_layout, "memory") == "v1" else "memory.events"
    counts = dict(line.split() for line in content(group / events).splitlines())
    assert int(counts["oom_kill"]) >= 1


def test_stats_and_removal_with_a_process_inside(host_layout: CgroupLayout, test_root: str,
                                                 children: list[subprocess.Popen[str]]) -> None:
    driver = CgroupDriver(host_layout, root=test_root)
    driver.ensure_group("proj", "fg", GroupLimits(memory=256 * MiB, pids=50))
    rel = driver.group_path("proj", "fg")
    leaf, spare = f"{rel}/proj-web-1", f"{rel}/proj-web-2"
    # like an OCI runtime: a leaf per container in every hierarchy, the process joined to them
    for mount in host_layout.mounts():
        for path in (leaf, spare):
            (mount / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    joined = sorted({cgroup_dir(host_layout, c, leaf) for c in ("cpu", "cpuacct", "memory", "pids")
                     if host_layout.backing(c) is not None})
    child = spawn(python(ALLOCATE_AND_WAIT), joined, children)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"

    usage = driver.stats(leaf)
    assert usage is not None
    assert usage.pids == 1
    assert usage.memory_bytes is not None and usage.memory_bytes >= 8 * MiB
    assert usage.cpu_ns is not None and usage.cpu_ns > 0
    group_usage = driver.stats(rel)
    assert group_usage is not None
    assert group_usage.pids == 1 and group_usage.memory_limit == 256 * MiB
    assert driver.stats(f"{rel}/absent") is None

    with pytest.raises(TransientDriverError, match=str(child.pid)):
        driver.remove_group("proj", "fg")
    assert (cgroup_dir(host_layout, "memory", leaf)).is_dir()
    assert nowhere(host_layout, spare)  # what was empty went, in every hierarchy

    child.kill()
    child.wait()
    retry_transient(lambda: driver.remove_project("proj"))
    assert nowhere(host_layout, test_root)
    driver.remove_group("proj", "fg")  # removing what is gone is fine
