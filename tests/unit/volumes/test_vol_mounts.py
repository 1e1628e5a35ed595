"""Mount tables: parsing, which mount a path is on, and finding mounts of a directory in every
mount namespace (against a fake ``/proc``)."""

from __future__ import annotations

import os
from pathlib import Path

from stackd.drivers.mountinfo import MountEntry, parse_mountinfo
from stackd.drivers.volumes.mounts import MountUse, containing_mount, find_uses, fs_path, uses_in

HOST = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /proc rw,nosuid shared:12 - proc proc rw
41 22 254:2 /srv /var/lib/stackd rw,relatime shared:20 - xfs /dev/vdb rw
42 22 0:40 / /mnt/with\\040space rw - tmpfs my\\040tmpfs rw
bogus line
"""


def test_parse_reads_fields_and_unescapes() -> None:
    entries = parse_mountinfo(HOST)
    assert len(entries) == 4
    assert entries[2] == MountEntry(41, "254:2", "/srv", "/var/lib/stackd", "xfs", "/dev/vdb", ("rw",))
    assert entries[3].mount_point == "/mnt/with space" and entries[3].source == "my tmpfs"


def test_optional_fields_do_not_shift_the_ones_after_the_dash() -> None:
    line = "50 22 0:50 / /x rw shared:3 master:7 propagate_from:2 - overlay overlay rw,lowerdir=/a\n"
    (entry,) = parse_mountinfo(line)
    assert (entry.fstype, entry.source) == ("overlay", "overlay")


def test_containing_mount_and_path_inside_the_file_system() -> None:
    entries = parse_mountinfo(HOST)
    mount = containing_mount(entries, "/var/lib/stackd/volumes/v/_data")
    assert mount is not None and mount.mount_id == 41
    assert fs_path(mount, "/var/lib/stackd/volumes/v/_data") == "/srv/volumes/v/_data"
    root = containing_mount(entries, "/var/lib/stackdx")
    assert root is not None and root.mount_id == 22
    assert fs_path(root, "/var/lib/stackdx") == "/var/lib/stackdx"
    assert fs_path(mount, "/var/lib/stackd") == "/srv"


def test_uses_match_device_and_root_not_names() -> None:
    container = parse_mountinfo(
        "600 500 254:2 /srv/volumes/v/_data /data rw - xfs /dev/vdb rw\n"
        "601 500 254:2 /srv/volumes/v/_data/sub /data2 rw - xfs /dev/vdb rw\n"
        "602 500 254:2 /srv/volumes/vv/_data /other rw - xfs /dev/vdb rw\n"
        "603 500 254:1 /srv/volumes/v/_data /same-path-other-device rw - ext4 /dev/vda rw\n")
    got = uses_in(container, "254:2", "/srv/volumes/v")
    assert [e.mount_point for e in got] == ["/data", "/data2"]


def _fake_proc(tmp_path: Path, own: str, others: dict[int, tuple[str, str]]) -> Path:
    """A /proc with ``self`` and processes ``pid → (mount namespace, mountinfo)``."""
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(own)
    for pid, (ns, text) in others.items():
        d = proc / str(pid)
        (d / "ns").mkdir(parents=True)
        (d / "ns" / "mnt").symlink_to(ns)
        (d / "mountinfo").write_text(text)
    (proc / "notapid").mkdir()
    return proc


def test_find_uses_reads_each_namespace_once(tmp_path: Path) -> None:
    vol = tmp_path / "volumes" / "v"
    vol.mkdir(parents=True)
    real = os.path.realpath(vol)
    parent = real.rsplit("/volumes", 1)[0]
    own = f"1 0 9:9 / / rw - ext4 /dev/x rw\n2 1 9:9 /srv {parent} rw - ext4 /dev/x rw\n"
    inside = "7 6 9:9 /srv/volumes/v/_data /data rw - ext4 /dev/x rw\n"
    proc = _fake_proc(tmp_path, own, {
        100: ("mnt:[1]", own),                  # the host namespace: nothing of the volume
        200: ("mnt:[2]", inside),               # a container using it
        201: ("mnt:[2]", inside),               # a second process of the same container
        300: ("mnt:[3]", "7 6 9:9 /srv/volumes/w/_data /data rw - ext4 /dev/x rw\n"),
    })
    assert find_uses(vol, proc) == [MountUse(200, "/data")]


def test_find_uses_sees_mount_points_below_the_directory_here(tmp_path: Path) -> None:
    vol = tmp_path / "v"
    vol.mkdir()
    real = os.path.realpath(vol)
    own = f"1 0 9:9 / / rw - ext4 /dev/x rw\n5 1 0:77 / {real}/_data/tmp rw - tmpfs t rw\n"
    proc = _fake_proc(tmp_path, own, {})
    assert find_uses(vol, proc) == [MountUse(os.getpid(), f"{real}/_data/tmp")]


def test_find_uses_without_a_readable_table_finds_nothing(tmp_path: Path) -> None:
    assert find_uses(tmp_path, tmp_path / "no-proc") == []
