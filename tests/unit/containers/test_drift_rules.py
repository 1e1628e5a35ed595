"""The pure half of drift repair (``stackd.drivers.containers.driftrules``): which problems a
bridge, a veth and a container's namespace show against what was recorded, the control files a
container's OCI resources become on cgroup v1 and v2, how found contents compare, and the order
in which memory limits are written back."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import pytest

from stackd.drivers.containers.driftrules import (
    WantedFile,
    bridge_problems,
    container_files,
    cpu_list,
    curved_weight,
    file_drifted,
    inside_problems,
    linear_weight,
    veth_problems,
    write_order,
)
from stackd.drivers.network.links import LinkState

GATEWAY = IPv4Interface("10.1.0.1/24")


def state(name: str, kind: str | None = "bridge", *, up: bool = True, master: str | None = None,
          addresses: tuple[str, ...] = ()) -> LinkState:
    return LinkState(name=name, index=7, kind=kind, up=up, master=master,
                     addresses=tuple(IPv4Interface(a) for a in addresses))


# ------------------------------------------------------------------------------------ bridges


def test_an_intact_bridge_has_no_problem() -> None:
    assert bridge_problems("stk-1", GATEWAY, state("stk-1", addresses=("10.1.0.1/24",)), "1") == []


def test_bridge_problems_name_what_was_found() -> None:
    assert bridge_problems("stk-1", GATEWAY, None, None) == ["bridge missing"]
    assert bridge_problems("stk-1", GATEWAY, state("stk-1", "dummy"), "1") == [
        "stk-1 is a dummy, not a bridge"]
    found = state("stk-1", up=False, addresses=("10.9.0.1/24",))
    assert bridge_problems("stk-1", GATEWAY, found, "0") == [
        "bridge down", "gateway address 10.1.0.1/24 missing", "unexpected address(es) 10.9.0.1/24",
        "route_localnet off"]


def test_an_unreadable_route_localnet_is_not_a_problem() -> None:
    assert bridge_problems("stk-1", GATEWAY, state("stk-1", addresses=("10.1.0.1/24",)), None) == []


# ------------------------------------------------------------------------------------ veths


def test_veth_problems() -> None:
    assert veth_problems("stkv1", "stk-1", state("stkv1", "veth", master="stk-1")) == []
    assert veth_problems("stkv1", "stk-1", None) == ["veth stkv1 missing"]
    assert veth_problems("stkv1", "stk-1", state("stkv1", "veth", up=False)) == [
        "veth stkv1 detached from bridge stk-1", "veth stkv1 down"]
    assert veth_problems("stkv1", "stk-1", state("stkv1", "veth", master="stk-2")) == [
        "veth stkv1 enslaved to stk-2, not stk-1"]
    assert veth_problems("stkv1", "stk-1", state("stkv1", None)) == ["stkv1 is a device, not a veth"]


def test_inside_problems() -> None:
    wanted = [("eth0", IPv4Interface("10.1.0.5/24")), ("eth1", IPv4Interface("10.2.0.5/24"))]
    good = [state("lo", None, addresses=("127.0.0.1/8",)), state("eth0", "veth", addresses=("10.1.0.5/24",)),
            state("eth1", "veth", addresses=("10.2.0.5/24",))]
    gw = IPv4Address("10.1.0.1")
    assert inside_problems(wanted, gw, good, gw) == []
    bad = [state("eth0", "veth", up=False)]
    assert inside_problems(wanted, gw, bad, None) == [
        "eth0 down in the container", "eth0 lost its address 10.1.0.5/24", "eth1 missing in the container",
        "default route via 10.1.0.1 missing"]
    assert inside_problems(wanted, gw, good, IPv4Address("10.2.0.1")) == [
        "default route via 10.2.0.1 instead of 10.1.0.1"]
    assert inside_problems(wanted, None, good, IPv4Address("10.2.0.1")) == []


# --------------------------------------------------------------------------- container cgroups


RESOURCES = {"memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20},
             "cpu": {"shares": 512, "quota": 50_000, "period": 100_000, "cpus": "0-1"},
             "pids": {"limit": 50}, "devices": []}


def by_name(files: tuple[WantedFile, ...]) -> dict[str, str]:
    return {f.name: f.value for f in files}


def test_v1_files_of_a_limited_container() -> None:
    assert by_name(container_files(RESOURCES, "v1", "memory")) == {
        "memory.limit_in_bytes": str(64 << 20), "memory.memsw.limit_in_bytes": str(128 << 20),
        "memory.soft_limit_in_bytes": str(32 << 20)}
    assert by_name(container_files(RESOURCES, "v1", "cpu")) == {
        "cpu.shares": "512", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000"}
    assert by_name(container_files(RESOURCES, "v1", "cpuset")) == {"cpuset.cpus": "0-1"}
    assert by_name(container_files(RESOURCES, "v1", "pids")) == {"pids.max": "50"}


def test_unset_limits_are_the_kernel_defaults_and_inherited_ones_are_not_checked() -> None:
    assert by_name(container_files({}, "v1", "memory")) == {"memory.limit_in_bytes": "-1"}
    assert by_name(container_files({}, "v1", "cpu")) == {
        "cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1"}
    assert container_files({}, "v1", "cpuset") == ()
    assert by_name(container_files({}, "v1", "pids")) == {"pids.max": "max"}
    assert by_name(container_files({}, "v2", "memory")) == {"memory.max": "max"}
    assert by_name(container_files({}, "v2", "cpu")) == {"cpu.weight": "100", "cpu.max": "max 100000"}
    assert container_files({}, "v2", "freezer") == ()


def test_v2_files_of_a_limited_container() -> None:
    assert by_name(container_files(RESOURCES, "v2", "memory")) == {
        "memory.max": str(64 << 20), "memory.swap.max": str(64 << 20), "memory.low": str(32 << 20)}
    cpu = {f.name: f for f in container_files(RESOURCES, "v2", "cpu")}
    assert cpu["cpu.max"].value == "50000 100000"
    # the weight runtimes derived from 512 shares: either formula counts as no drift
    assert cpu["cpu.weight"].value == str(linear_weight(512))
    assert not file_drifted(cpu["cpu.weight"], str(curved_weight(512)[0]))
    assert file_drifted(cpu["cpu.weight"], "7")


def test_weights_from_shares() -> None:
    assert linear_weight(1024) == 39 and linear_weight(2) == 1 and linear_weight(262_144) == 10_000
    assert 100 in curved_weight(1024)
    assert curved_weight(2) == (1,) and curved_weight(300_000) == (10_000,)


@pytest.mark.parametrize(("name", "wanted", "found", "drifted"), [
    ("memory.limit_in_bytes", "-1", "9223372036854771712", False),  # v1's "unlimited"
    ("memory.limit_in_bytes", str(64 << 20), str(64 << 20), False),
    ("memory.limit_in_bytes", str((64 << 20) + 100), str(64 << 20), False),  # kept in whole pages
    ("memory.limit_in_bytes", str(64 << 20), str(100 << 20), True),
    ("memory.max", "max", "max", False),
    ("pids.max", "max", "77", True),
    ("pids.max", "50", "50", False),
    ("cpu.max", "max 100000", "max 100000", False),
    ("cpu.max", "50000 100000", "max 100000", True),
    ("cpuset.cpus", "0,1", "0-1", False),
    ("cpuset.cpus", "0-1", "0", True),
    ("cpu.shares", "1024", "garbage", True),
])
def test_file_drifted(name: str, wanted: str, found: str, drifted: bool) -> None:
    assert file_drifted(WantedFile("x", name, wanted), found) is drifted


def test_a_missing_file_is_no_drift() -> None:
    assert file_drifted(WantedFile("memory", "memory.memsw.limit_in_bytes", "1"), None) is False


def test_cpu_list() -> None:
    assert cpu_list("0-2,4, 7-8\n") == frozenset({0, 1, 2, 4, 7, 8})
    assert cpu_list("") == frozenset()


def test_memory_plus_swap_goes_first_when_the_limit_rises_above_it() -> None:
    limit = WantedFile("memory", "memory.limit_in_bytes", str(300 << 20))
    swap = WantedFile("memory", "memory.memsw.limit_in_bytes", str(600 << 20))
    current = {"memory.limit_in_bytes": str(100 << 20), "memory.memsw.limit_in_bytes": str(200 << 20)}
    assert write_order([limit, swap], current) == [swap, limit]
    lower = WantedFile("memory", "memory.limit_in_bytes", str(50 << 20))
    assert write_order([lower, swap], current) == [lower, swap]
    assert write_order([limit], current) == [limit]
