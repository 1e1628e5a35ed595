"""Cgroup layout detection from mountinfo texts: pure v1, pure v2, hybrid, and the odd cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackd.drivers.cgroups.detect import detect, parse_layout
from stackd.errors import PermanentDriverError

ROOTFS = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"

# CentOS 7 / Debian 9 style: cpu and cpuacct co-mounted, no cgroup2 anywhere
V1 = ROOTFS + """\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup \
rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup \
rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
31 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
32 25 0:29 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup \
rw,cpuset,clone_children
"""

# Debian 12 / Fedora: one unified hierarchy
V2 = ROOTFS + """\
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 \
rw,nsdelegate,memory_recursiveprot
"""

# this machine kind: separate v1 hierarchies plus cgroup2 at /sys/fs/cgroup/unified
HYBRID = ROOTFS + """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_v1_layout_maps_each_controller_to_its_hierarchy() -> None:
    layout = parse_layout(V1)
    assert layout.mode == "v1"
    assert layout.v2 is None
    assert layout.v1["cpu"] == layout.v1["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert layout.v1["memory"] == Path("/sys/fs/cgroup/memory")
    assert layout.v1["name=systemd"] == Path("/sys/fs/cgroup/systemd")
    assert "clone_children" not in layout.v1 and "xattr" not in layout.v1
    assert layout.backing("pids") == ("v1", Path("/sys/fs/cgroup/pids"))
    assert layout.backing("io") is None
    # co-mounted controllers are one hierarchy, listed once
    assert layout.mounts().count(Path("/sys/fs/cgroup/cpu,cpuacct")) == 1


def test_v2_layout_uses_the_unified_mount_for_offered_controllers() -> None:
    layout = parse_layout(V2, frozenset({"cpu", "memory", "pids", "io"}))
    assert layout.mode == "v2"
    assert layout.v1 == {}
    assert layout.v2 == Path("/sys/fs/cgroup")
    assert layout.backing("memory") == ("v2", Path("/sys/fs/cgroup"))
    assert layout.backing("hugetlb") is None
    assert layout.mounts() == (Path("/sys/fs/cgroup"),)


def test_hybrid_layout_prefers_v1_hierarchies_and_keeps_the_unified_mount() -> None:
    layout = parse_layout(HYBRID, frozenset({"hugetlb"}))
    assert layout.mode == "hybrid"
    assert layout.v2 == Path("/sys/fs/cgroup/unified")
    assert layout.backing("cpu") == ("v1", Path("/sys/fs/cgroup/cpu"))
    assert layout.backing("hugetlb") == ("v2", Path("/sys/fs/cgroup/unified"))
    assert layout.mounts()[-1] == Path("/sys/fs/cgroup/unified")
    assert Path("/sys/fs/cgroup/systemd") in layout.mounts()


def test_a_named_v1_hierarchy_beside_cgroup2_is_still_v2() -> None:
    text = V2 + "50 30 0:40 / /run/cg-systemd rw - cgroup cgroup rw,name=systemd\n"
    assert parse_layout(text).mode == "v2"


def test_the_mount_under_sys_fs_cgroup_wins_over_a_second_mount() -> None:
    text = ROOTFS + (
        "60 27 0:38 / /tmp/mine rw,relatime - cgroup2 none rw\n"
        "61 27 0:29 / /tmp/cpu-again rw,relatime - cgroup cgroup rw,cpu\n") + HYBRID.removeprefix(ROOTFS)
    layout = parse_layout(text)
    assert layout.v2 == Path("/sys/fs/cgroup/unified")
    assert layout.v1["cpu"] == Path("/sys/fs/cgroup/cpu")


def test_escaped_mount_points_are_decoded() -> None:
    text = ROOTFS + "70 27 0:50 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n"
    assert parse_layout(text).v2 == Path("/mnt/my cgroups")


def test_malformed_lines_are_skipped() -> None:
    text = "garbage\n1 2 3\n" + V2 + "99 1 0:1 / /x - \n"
    assert parse_layout(text).mode == "v2"


def test_no_cgroup_mount_is_a_permanent_error() -> None:
    with pytest.raises(PermanentDriverError, match="no cgroup hierarchy"):
        parse_layout(ROOTFS)


def test_detect_reads_the_given_mountinfo_and_the_v2_controllers(tmp_path: Path) -> None:
    mount = tmp_path / "cg"
    mount.mkdir()
    (mount / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    info = tmp_path / "mountinfo"
    info.write_text(ROOTFS + f"30 23 0:26 / {mount} rw - cgroup2 cgroup2 rw\n")
    layout = detect(info)
    assert layout.mode == "v2"
    assert layout.v2 == mount
    assert layout.v2_controllers == frozenset({"cpuset", "cpu", "io", "memory", "pids"})


def test_detect_without_a_readable_mountinfo_is_a_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentDriverError, match="cannot read"):
        detect(tmp_path / "absent")
