"""The request types refuse malformed values (programming errors, caught before any I/O)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stackd.drivers.runtime.request import ContainerRequest, Device, Mount, Namespaces, Resources

ROOT = "/var/lib/stackd/rootfs/x"


@pytest.mark.parametrize("make", [
    lambda: ContainerRequest(rootfs="relative/rootfs", args=("sh",)),
    lambda: ContainerRequest(rootfs=ROOT, args=()),
    lambda: ContainerRequest(rootfs=ROOT, args=("sh",), cwd="srv"),
    lambda: ContainerRequest(rootfs=ROOT, args=("sh",), cgroups_path="stackd/p"),
    lambda: ContainerRequest(rootfs=ROOT, args=("sh",), seccomp="lenient"),
    lambda: ContainerRequest(rootfs=ROOT, args=("sh",), shm_size=0),
    lambda: ContainerRequest(rootfs=ROOT, args=("sh",), oom_score_adj=2000),
    lambda: Mount("data", "/srv"),
    lambda: Mount("/data", "srv"),
    lambda: Device("/dev/x", "z", 1, 1),
    lambda: Namespaces(net="netns-1"),
    lambda: Resources(cpus=0),
    lambda: Resources(memory_swap=1 << 20),
    lambda: Resources(memory=2 << 20, memory_swap=1 << 20),
    lambda: Resources(blkio_weight=5),
])
def test_malformed_values_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


def test_well_formed_values_are_accepted() -> None:
    r = ContainerRequest(rootfs=ROOT, args=("sh",), cgroups_path="/stackd/p/g/c",
                         mounts=(Mount("/run", "tmpfs", "tmpfs"),),
                         namespaces=Namespaces(net="/run/netns/stk-1", ipc="host"),
                         resources=Resources(memory=1 << 20, memory_swap=-1, blkio_weight=10))
    assert r.namespaces.net == "/run/netns/stk-1"
