"""The real driver's decisions (where to create, what to write, what to report) on a plain directory
tree laid out like v1 cgroup hierarchies. No root needed: control files are ordinary files the test
creates where the kernel would; the kernel's own behaviour is covered by tests/host/cgroups."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackd.drivers.cgroups import cgfs
from stackd.drivers.cgroups.detect import CgroupLayout
from stackd.drivers.cgroups.driver import CgroupDriver
from stackd.drivers.cgroups.limits import GroupLimits, drift
from stackd.errors import PermanentDriverError

KERNEL_FILES = {
    "cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1"},
    "cpuacct": {"cpuacct.usage": "0"},
    "memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.usage_in_bytes": "0",
               "memory.stat": "total_inactive_file 0\n"},
    "pids": {"pids.max": "max", "pids.current": "0"},
}


@pytest.fixture
def layout(tmp_path: Path) -> CgroupLayout:
    mounts = {c: tmp_path / c for c in (*KERNEL_FILES, "devices")}
    for mount in mounts.values():
        mount.mkdir()
    return CgroupLayout(mode="v1", v1=mounts)


def as_kernel(layout: CgroupLayout, rel: str) -> None:
    """Create the cgroup ``rel`` with its control files in each hierarchy, as mkdir on cgroupfs would."""
    for controller, files in KERNEL_FILES.items():
        cgroup = layout.v1[controller] / rel.lstrip("/")
        cgroup.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (cgroup / name).write_text(content + "\n")


def test_limits_are_written_in_each_controllers_hierarchy(layout: CgroupLayout) -> None:
    driver = CgroupDriver(layout, page_size=4096)
    as_kernel(layout, "/stackd/shop/fg")
    desired = GroupLimits(cpu_weight=200, cpus=0.5, memory=64 << 20, pids=5)
    driver.ensure_group("shop", "fg", desired)
    cpu = layout.v1["cpu"] / "stackd/shop/fg"
    assert (cpu / "cpu.shares").read_text() == "2048"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    assert (layout.v1["memory"] / "stackd/shop/fg/memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (layout.v1["pids"] / "stackd/shop/fg/pids.max").read_text() == "5"
    # unchanged values are left alone (the kernel's own spelling stays)
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000\n"
    observed = driver.read_group("shop", "fg")
    assert observed is not None and drift(desired, observed) == ()
    # only the hierarchies stackd manages get the group; runtimes add their own leaves elsewhere
    assert not (layout.v1["devices"] / "stackd").exists()
    assert (layout.v1["cpuacct"] / "stackd/shop/fg").is_dir()


def test_unset_limits_reset_what_an_earlier_pass_wrote(layout: CgroupLayout) -> None:
    driver = CgroupDriver(layout)
    as_kernel(layout, "/stackd/shop/fg")
    driver.ensure_group("shop", "fg", GroupLimits(pids=5, cpus=2))
    driver.ensure_group("shop", "fg", GroupLimits())
    assert (layout.v1["pids"] / "stackd/shop/fg/pids.max").read_text() == "max"
    assert (layout.v1["cpu"] / "stackd/shop/fg/cpu.cfs_quota_us").read_text() == "-1"


def test_a_required_limit_file_that_is_missing_is_permanent(layout: CgroupLayout) -> None:
    driver = CgroupDriver(layout)
    with pytest.raises(PermanentDriverError, match=r"pids\.max"):
        driver.ensure_group("shop", "fg", GroupLimits(pids=5))  # plain dirs: no control files
    # without limits nothing is required: defaults are only written where the files exist
    driver.ensure_group("shop", "bg", GroupLimits())


def test_a_missing_controller_fails_before_anything_is_created(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    driver = CgroupDriver(CgroupLayout(mode="v1", v1={"cpu": tmp_path / "cpu"}))
    with pytest.raises(PermanentDriverError, match="memory"):
        driver.ensure_group("shop", "fg", GroupLimits(memory=1 << 20))
    assert list((tmp_path / "cpu").iterdir()) == []


def test_listing_joins_every_hierarchy(layout: CgroupLayout) -> None:
    driver = CgroupDriver(layout)
    (layout.v1["pids"] / "stackd/shop/fg").mkdir(parents=True)
    (layout.v1["devices"] / "stackd/blog/default").mkdir(parents=True)
    assert driver.list_projects() == ("blog", "shop")
    assert driver.list_groups("shop") == ("fg",)
    assert driver.read_group("blog", "default") is None  # devices is not a hierarchy groups live in


def test_stats_read_the_v1_statistics(layout: CgroupLayout) -> None:
    driver = CgroupDriver(layout)
    as_kernel(layout, "/stackd/shop/fg/c1")
    (layout.v1["cpuacct"] / "stackd/shop/fg/c1/cpuacct.usage").write_text("777\n")
    (layout.v1["pids"] / "stackd/shop/fg/c1/pids.current").write_text("2\n")
    usage = driver.stats("/stackd/shop/fg/c1")
    assert usage is not None and (usage.cpu_ns, usage.pids, usage.memory_limit) == (777, 2, None)
    assert driver.stats("/stackd/shop/none") is None


def test_removal_goes_bottom_up_everywhere_and_reports_each_stuck_cgroup_once(
        layout: CgroupLayout) -> None:
    driver = CgroupDriver(layout)
    for mount in layout.mounts():
        (mount / "stackd/shop/fg/c1").mkdir(parents=True)
        (mount / "stackd/shop/bg").mkdir(parents=True)
    (layout.v1["memory"] / "stackd/shop/fg/c1/stuck").write_text("")  # rmdir fails here only
    with pytest.raises(PermanentDriverError) as info:
        driver.remove_project("shop")
    assert "stackd/shop/fg/c1" in str(info.value)
    assert "could not be removed" not in str(info.value)  # one failure, its parents not repeated
    assert (layout.v1["memory"] / "stackd/shop/fg/c1").is_dir()
    assert not (layout.v1["memory"] / "stackd/shop/bg").exists()
    assert all(not (m / "stackd").exists() for m in layout.mounts() if m != layout.v1["memory"])
    (layout.v1["memory"] / "stackd/shop/fg/c1/stuck").unlink()
    driver.remove_project("shop")
    assert all(not (m / "stackd").exists() for m in layout.mounts())
    assert driver.list_projects() == ()


V2_FILES = {"cgroup.controllers": "cpu io memory pids", "cgroup.subtree_control": "",
            "cpu.weight": "100", "cpu.max": "max 100000", "memory.max": "max", "pids.max": "max"}


def test_v2_delegates_level_by_level_then_writes_only_what_differs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    levels = [tmp_path, tmp_path / "stackd", tmp_path / "stackd/shop", tmp_path / "stackd/shop/fg"]
    for level in levels:
        level.mkdir(exist_ok=True)
        for name, text in V2_FILES.items():
            (level / name).write_text(text + "\n")
    writes: list[tuple[str, str]] = []
    real_write = cgfs.write

    def recording_write(path: Path, value: str) -> None:
        writes.append((str(path.relative_to(tmp_path)), value))
        real_write(path, value)

    monkeypatch.setattr(cgfs, "write", recording_write)
    layout = CgroupLayout(mode="v2", v2=tmp_path, v2_controllers=frozenset({"cpu", "io", "memory", "pids"}))
    driver = CgroupDriver(layout)
    desired = GroupLimits(cpus=2, memory=128 << 20)
    driver.ensure_group("shop", "fg", desired)
    delegations = [(f"{level}/cgroup.subtree_control", f"+{c}")
                   for level in (".", "stackd", "stackd/shop", "stackd/shop/fg")
                   for c in ("cpu", "memory", "pids")]
    assert writes == [(p.removeprefix("./"), v) for p, v in delegations] + [
        ("stackd/shop/fg/cpu.max", "200000 100000"), ("stackd/shop/fg/memory.max", str(128 << 20))]
    observed = driver.read_group("shop", "fg")
    assert observed is not None and drift(desired, observed) == ()

    # the kernel now lists the enabled controllers: a second pass writes nothing
    for level in levels:
        (level / "cgroup.subtree_control").write_text("cpu memory pids\n")
    writes.clear()
    driver.ensure_group("shop", "fg", desired)
    assert writes == []
