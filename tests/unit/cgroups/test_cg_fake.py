"""The in-memory cgroups driver behaves like the real one where callers can tell."""

from __future__ import annotations

import pytest

from stackd.drivers.cgroups import CgroupDriver, Cgroups, CgroupUsage, FakeCgroups, GroupLimits, drift
from stackd.drivers.cgroups.detect import parse_layout
from stackd.errors import PermanentDriverError, TransientDriverError

MiB = 1 << 20


def test_both_drivers_satisfy_the_protocol() -> None:
    fake: Cgroups = FakeCgroups()
    real: Cgroups = CgroupDriver(parse_layout("1 1 0:1 / /cg rw - cgroup2 cgroup2 rw\n"))
    assert fake.root == real.root == "/stackd"
    assert fake.group_path("shop", "fg") == real.group_path("shop", "fg") == "/stackd/shop/fg"


def test_ensure_then_read_reports_what_the_kernel_would() -> None:
    cg = FakeCgroups()
    desired = GroupLimits(cpu_weight=300, cpus=1.5, memory=1_000_000, pids=50)
    cg.ensure_group("shop", "fg", desired)
    observed = cg.read_group("shop", "fg")
    assert observed is not None
    assert observed.memory == 999424  # whole pages, as the kernel keeps it
    assert drift(desired, observed) == ()
    assert cg.read_group("shop", "bg") is None
    assert cg.list_projects() == ("shop",)
    assert cg.list_groups("shop") == ("fg",)


def test_ensure_is_level_triggered_and_repairs_drift() -> None:
    cg = FakeCgroups()
    cg.ensure_group("shop", "fg", GroupLimits(pids=10))
    cg.set_limits("shop", "fg", GroupLimits(pids=99))
    observed = cg.read_group("shop", "fg")
    assert observed is not None and drift(GroupLimits(pids=10), observed) == ("pids",)
    cg.ensure_group("shop", "fg", GroupLimits())
    observed = cg.read_group("shop", "fg")
    assert observed is not None and observed.pids is None


def test_a_limit_needing_a_missing_controller_is_permanent() -> None:
    cg = FakeCgroups(controllers=("cpu", "pids"))
    with pytest.raises(PermanentDriverError, match="memory"):
        cg.ensure_group("shop", "fg", GroupLimits(memory=64 * MiB))
    assert cg.list_projects() == ()
    cg.ensure_group("shop", "fg", GroupLimits(cpus=1))


def test_bad_names_are_refused_like_the_real_driver() -> None:
    cg = FakeCgroups()
    with pytest.raises(PermanentDriverError):
        cg.ensure_group("shop", "cgroup.procs", GroupLimits())
    with pytest.raises(PermanentDriverError):
        cg.read_group("../x", "fg")


def test_processes_inside_block_removal_until_they_leave() -> None:
    cg = FakeCgroups()
    cg.ensure_group("shop", "fg", GroupLimits())
    cg.ensure_group("shop", "bg", GroupLimits())
    cg.add_process("/stackd/shop/fg/shop-web-1", 4242)
    with pytest.raises(TransientDriverError, match="4242"):
        cg.remove_group("shop", "fg")
    assert cg.list_groups("shop") == ("bg", "fg")
    with pytest.raises(TransientDriverError, match="stop its containers"):
        cg.remove_project("shop")
    assert cg.list_groups("shop") == ("fg",)  # what could go, went
    cg.remove_process(4242)
    cg.remove_project("shop")
    assert cg.list_projects() == ()


def test_stats_of_groups_and_leaves() -> None:
    cg = FakeCgroups()
    cg.ensure_group("shop", "fg", GroupLimits())
    cg.add_process("/stackd/shop/fg/shop-web-1", 7)
    cg.add_process("/stackd/shop/fg/shop-web-1", 8)
    group_usage = cg.stats("/stackd/shop/fg")
    assert group_usage is not None and group_usage.pids == 2
    assert cg.stats("/stackd/shop/nothing") is None
    cg.set_usage("/stackd/shop/fg/shop-web-1", CgroupUsage(memory_bytes=5, cpu_ns=9, pids=2))
    assert cg.stats("/stackd/shop/fg/shop-web-1") == CgroupUsage(memory_bytes=5, cpu_ns=9, pids=2)


def test_injected_failures_and_the_call_log() -> None:
    cg = FakeCgroups()
    cg.fail_next("ensure_group", TransientDriverError("busy"))
    with pytest.raises(TransientDriverError, match="busy"):
        cg.ensure_group("shop", "fg", GroupLimits())
    cg.ensure_group("shop", "fg", GroupLimits())  # one failure per queued error
    cg.remove_group("shop", "fg")
    assert cg.calls == [("ensure_group", "shop", "fg"), ("ensure_group", "shop", "fg"),
                        ("remove_group", "shop", "fg")]
