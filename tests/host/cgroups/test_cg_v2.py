"""The cgroups driver on a cgroup2 hierarchy the test mounts for itself (``mount -t cgroup2``), as a
pure-v2 host would have it: directory tree, controller delegation through ``cgroup.subtree_control``,
processes in container leaves, statistics and removal. Limit files are checked for each controller
the hierarchy offers; on a hybrid host most controllers are bound to v1, and those checks are skipped
with the reason.

Root only. The fixture purges the test's cgroups, disables the controllers it enabled at the
hierarchy's root and unmounts, also on failure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stackd.drivers.cgroups.detect import CgroupLayout
from stackd.drivers.cgroups.driver import CgroupDriver
from stackd.drivers.cgroups.limits import GroupLimits, drift
from stackd.errors import PermanentDriverError, TransientDriverError
from tests.host.cgroups.support import python, retry_transient, spawn

pytestmark = pytest.mark.host

MiB = 1 << 20
MANAGED = ("cpu", "memory", "pids")
LIMIT_OF = {
    "cpu": (GroupLimits(cpu_weight=300, cpus=0.5), {"cpu.weight": "300", "cpu.max": "50000 100000"}),
    "memory": (GroupLimits(memory=64 * MiB), {"memory.max": str(64 * MiB)}),
    "pids": (GroupLimits(pids=9), {"pids.max": "9"}),
}


def driver_for(layout: CgroupLayout, root: str) -> CgroupDriver:
    """The managed controllers plus whatever else the hierarchy offers, so delegation is exercised
    with the controllers this hierarchy really has."""
    return CgroupDriver(layout, root=root, controllers=sorted(set(MANAGED) | layout.v2_controllers))


def mount_of(layout: CgroupLayout) -> Path:
    assert layout.v2 is not None
    return layout.v2


def not_offered(layout: CgroupLayout, controller: str) -> str:
    offered = ", ".join(sorted(layout.v2_controllers)) or "no controllers"
    return (f"this cgroup2 hierarchy offers {offered}; {controller} is bound to a v1 hierarchy on this "
            f"host, so its v2 limit files cannot exist here")


def test_tree_is_created_and_controllers_delegated(cgroup2: tuple[CgroupLayout, str]) -> None:
    layout, root = cgroup2
    driver = driver_for(layout, root)
    driver.ensure_group("proj", "fg", GroupLimits())
    driver.ensure_group("proj", "fg", GroupLimits())  # idempotent
    mount = mount_of(layout)
    levels = [mount, mount / root.lstrip("/"), mount / root.lstrip("/") / "proj",
              mount / root.lstrip("/") / "proj" / "fg"]
    assert all(level.is_dir() for level in levels)
    assert driver.list_projects() == ("proj",)
    assert driver.list_groups("proj") == ("fg",)
    offered = layout.v2_controllers
    for level in levels:
        assert offered <= set((level / "cgroup.subtree_control").read_text().split()), level
    assert set((levels[-1] / "cgroup.controllers").read_text().split()) == offered

    driver.remove_project("proj")
    assert not (mount / root.lstrip("/")).exists()
    assert driver.list_projects() == ()


@pytest.mark.parametrize("controller", MANAGED)
def test_limit_files(cgroup2: tuple[CgroupLayout, str], controller: str) -> None:
    layout, root = cgroup2
    if controller not in layout.v2_controllers:
        pytest.skip(not_offered(layout, controller))
    driver = driver_for(layout, root)
    limits, expected = LIMIT_OF[controller]
    driver.ensure_group("proj", "fg", limits)
    group = mount_of(layout) / driver.group_path("proj", "fg").lstrip("/")
    assert {name: (group / name).read_text().strip() for name in expected} == expected
    observed = driver.read_group("proj", "fg")
    assert observed is not None and drift(limits, observed) == ()
    driver.ensure_group("proj", "fg", GroupLimits())
    observed = driver.read_group("proj", "fg")
    assert observed is not None and drift(GroupLimits(), observed) == ()
    driver.remove_project("proj")


def test_a_limit_needing_an_absent_controller_is_permanent(cgroup2: tuple[CgroupLayout, str]) -> None:
    layout, root = cgroup2
    absent = [c for c in MANAGED if c not in layout.v2_controllers]
    if not absent:
        pytest.skip("this cgroup2 hierarchy offers cpu, memory and pids: no controller is absent")
    driver = driver_for(layout, root)
    with pytest.raises(PermanentDriverError, match=absent[0]):
        driver.ensure_group("proj", "fg", LIMIT_OF[absent[0]][0])
    assert not (mount_of(layout) / root.lstrip("/")).exists()  # refused before creating anything


def test_processes_live_in_leaves_and_block_removal(cgroup2: tuple[CgroupLayout, str],
                                                    children: list[subprocess.Popen[str]]) -> None:
    layout, root = cgroup2
    driver = driver_for(layout, root)
    driver.ensure_group("proj", "fg", GroupLimits())
    rel = driver.group_path("proj", "fg")
    leaf = mount_of(layout) / rel.lstrip("/") / "proj-web-1"
    leaf.mkdir()  # as the OCI runtime does for a container
    child = spawn(python("import time; print('ready', flush=True); time.sleep(300)"), [leaf], children)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    assert (leaf / "cgroup.procs").read_text().split() == [str(child.pid)]

    usage = driver.stats(f"{rel}/proj-web-1")
    assert usage is not None
    assert usage.cpu_ns is not None and usage.cpu_ns > 0  # cpu.stat needs no controller in v2
    assert usage.pids == (1 if "pids" in layout.v2_controllers else None)

    with pytest.raises(TransientDriverError, match=str(child.pid)):
        driver.remove_project("proj")
    assert leaf.is_dir()

    child.kill()
    child.wait()
    retry_transient(lambda: driver.remove_project("proj"))
    assert not (mount_of(layout) / root.lstrip("/")).exists()
