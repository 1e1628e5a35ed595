"""What the host must offer, checked before anything is touched: each missing piece named with
what to do; the not-root line; the facts of this very host."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from stackd.drivers.containers.hostcheck import NAMESPACES, HostFacts, gather, problems
from stackd.drivers.realhost import require_root
from stackd.errors import PermanentDriverError, needs_root

GOOD = HostFacts(euid=0, filesystems="nodev\tsysfs\nnodev\toverlay\n\text4\n", overlay_module=False,
                 namespaces=frozenset(NAMESPACES) | {"user", "cgroup"}, cgroups=None, nft=None, conmon=True,
                 runtimes=("crun", "runc"))


def test_a_host_with_everything_has_no_problems() -> None:
    assert problems(GOOD) == []
    # overlay not loaded yet, but the kernel has the module: it loads on the first mount
    assert problems(replace(GOOD, filesystems="nodev\tsysfs\n", overlay_module=True)) == []


@pytest.mark.parametrize(("change", "words"), [
    ({"euid": 1000}, ["must run as root", "sudo"]),
    ({"filesystems": "nodev\tsysfs\n"}, ["no overlayfs", "modprobe overlay", "CONFIG_OVERLAY_FS"]),
    ({"namespaces": frozenset({"mnt", "uts", "ipc", "pid"})}, ["no net namespaces", "CONFIG_NET_NS"]),
    ({"cgroups": "no cgroup hierarchy is mounted on this host"},
     ["cgroups are not usable: no cgroup hierarchy is mounted", "mount cgroup2"]),
    ({"nft": "`nft list tables` failed: Operation not supported"},
     ["nftables is not usable: `nft list tables` failed: Operation not supported", "CONFIG_NF_TABLES"]),
    ({"conmon": False}, ["conmon is not installed", "apt-get install conmon"]),
    ({"runtimes": ()}, ["no OCI runtime", "crun"]),
])
def test_each_missing_piece_is_named_with_what_to_do(change: dict[str, object], words: list[str]) -> None:
    [line] = problems(replace(GOOD, **change))  # type: ignore[arg-type]
    for word in words:
        assert word in line


def test_everything_missing_is_reported_at_once() -> None:
    bare = HostFacts(euid=1, filesystems="", overlay_module=False, namespaces=frozenset(), cgroups="none",
                     nft="the nft command is not installed", conmon=False, runtimes=())
    found = problems(bare)
    assert len(found) == 7
    assert "no mnt, uts, ipc, pid, net namespaces" in found[2]


def test_not_root_is_one_line_naming_the_verb() -> None:
    assert needs_root("up").startswith("stack up needs root (")
    assert "\n" not in needs_root("up")
    with pytest.raises(PermanentDriverError, match=r"^stack ps needs root \(.*run it as root"):
        require_root("ps", euid=1000)
    require_root("ps", euid=0)


def test_gather_reads_this_host() -> None:
    facts = gather()
    assert facts.euid == os.geteuid()
    assert "mnt" in facts.namespaces and "proc" in facts.filesystems
    if facts.euid != 0:
        assert facts.nft in (None, "the nft command is not installed")  # only root asks the kernel
