"""Reading the host: mountinfo parsing, the cgroup layout (v1, v2, hybrid) and the cgroup settings
it offers, on sample texts and sample cgroup roots."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackd.drivers.mountinfo import parse_mountinfo
from stackd.drivers.runtime.host import (
    cgroup_mode,
    cgroup_mount_points,
    read_cgroup_features,
    unified_mount_point,
)
from stackd.errors import PermanentDriverError

HYBRID = """\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 22 0:23 / /sys/fs/cgroup rw,relatime shared:8 - tmpfs tmpfs rw,mode=755
26 25 0:24 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
27 25 0:25 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory
28 25 0:26 / /sys/fs/cgroup/systemd rw,relatime shared:11 - cgroup cgroup rw,name=systemd
29 25 0:27 / /sys/fs/cgroup/unified rw,relatime shared:12 - cgroup2 cgroup2 rw
"""
V2 = """\
22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 22 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
"""
V1 = "\n".join(HYBRID.splitlines()[:5]) + "\n"


def test_parse_mountinfo_fields_and_escapes() -> None:
    line = r"36 35 98:0 /mnt1 /mnt\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
    (entry,) = parse_mountinfo(line)
    assert entry.mount_point == "/mnt 2"
    assert entry.fstype == "ext3"
    assert entry.source == "/dev/root"
    assert entry.super_options == ("rw", "errors=continue")


def test_parse_mountinfo_skips_malformed_lines() -> None:
    assert parse_mountinfo("garbage\n1 2 3\n") == []


@pytest.mark.parametrize(("text", "mode", "unified"), [
    (HYBRID, "hybrid", "/sys/fs/cgroup/unified"),
    (V2, "v2", None),
    (V1, "v1", None),
])
def test_cgroup_mode(text: str, mode: str, unified: str | None) -> None:
    entries = parse_mountinfo(text)
    assert cgroup_mode(entries) == mode
    assert unified_mount_point(entries) == unified


def test_no_cgroups_at_all_is_a_permanent_error() -> None:
    with pytest.raises(PermanentDriverError):
        cgroup_mode(parse_mountinfo(V2.splitlines()[0]))


def test_cgroup_mount_points_list_every_hierarchy() -> None:
    assert cgroup_mount_points(parse_mountinfo(HYBRID)) == [
        "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]
    assert cgroup_mount_points(parse_mountinfo(V2)) == ["/sys/fs/cgroup"]


def test_cgroup_features_v1_come_from_each_controllers_interface_files(tmp_path: Path) -> None:
    files = {"memory": ["memory.swappiness"], "cpu": ["cpu.shares", "cpu.cfs_quota_us"],
             "blkio": ["blkio.bfq.io_service_bytes"], "pids": []}
    lines = []
    for i, (controller, names) in enumerate(files.items()):
        root = tmp_path / controller
        root.mkdir()
        for name in names:
            (root / name).touch()
        lines.append(f"{30 + i} 25 0:{30 + i} / {root} rw,relatime - cgroup cgroup rw,{controller}")
    assert read_cgroup_features(parse_mountinfo("\n".join(lines))) == {
        "swap_accounting": False, "memory_swappiness": True, "cpu_shares": True, "cpu_quota": True,
        "cpuset": False, "pids_limit": True, "blkio_weight": False}


def test_cgroup_features_v2_come_from_the_root_controllers(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    features = read_cgroup_features(parse_mountinfo(f"30 22 0:28 / {tmp_path} rw - cgroup2 cgroup2 rw"))
    assert features == {
        "swap_accounting": True, "memory_swappiness": False, "cpu_shares": True, "cpu_quota": True,
        "cpuset": True, "pids_limit": True, "blkio_weight": True}
