"""IPAM: subnets from the pool or as Compose names them, collision avoidance, stable leases,
requested addresses, exhaustion."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from stackd.drivers.network.errors import IpamError
from stackd.drivers.network.ipam import (
    LeaseRequest,
    Subnet,
    SubnetRequest,
    allocate_subnets,
    assign_leases,
    release,
    release_subnet,
)
from stackd.errors import PermanentDriverError

HOST = [IPv4Network("192.0.2.0/24"), IPv4Network("127.0.0.0/8")]


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


def alloc(*requests: SubnetRequest, existing: dict[str, Subnet] | None = None,
          host: list[IPv4Network] | None = None, pool: str = "10.90.0.0/16") -> dict[str, Subnet]:
    return allocate_subnets(list(requests), existing=existing or {}, host=HOST if host is None else host,
                            pool=net(pool))


# ------------------------------------------------------------------------------------- subnets


def test_first_network_gets_the_first_24_of_the_pool_with_the_first_address_as_gateway() -> None:
    sub = alloc(SubnetRequest("shop_default"))["shop_default"]
    assert sub.subnet == net("10.90.0.0/24")
    assert sub.gateway == IPv4Address("10.90.0.1")
    assert sub.ip_range == sub.subnet
    assert str(sub.interface) == "10.90.0.1/24"


def test_subnets_used_on_the_host_are_avoided() -> None:
    got = alloc(SubnetRequest("a"), host=[*HOST, net("10.90.0.0/23"), net("10.90.2.128/25")])
    assert got["a"].subnet == net("10.90.3.0/24")


def test_a_host_route_covering_the_pool_start_is_avoided_too() -> None:
    got = alloc(SubnetRequest("a"), host=[net("10.0.0.0/8")], pool="10.0.0.0/7")
    assert got["a"].subnet == net("11.0.0.0/24")


def test_networks_of_other_stacks_are_avoided_and_kept() -> None:
    first = alloc(SubnetRequest("one_default"))
    second = alloc(SubnetRequest("two_default"), existing=first)
    assert second["one_default"] == first["one_default"]
    assert second["two_default"].subnet == net("10.90.1.0/24")


def test_allocation_is_stable_given_the_same_existing_allocations() -> None:
    first = alloc(SubnetRequest("b"), SubnetRequest("c"))
    # "a" would come first in the pool order, but b and c keep what they had
    again = alloc(SubnetRequest("a"), SubnetRequest("b"), SubnetRequest("c"), existing=first)
    assert again["b"] == first["b"] and again["c"] == first["c"]
    assert again["a"].subnet == net("10.90.2.0/24")


def test_an_existing_subnet_now_taken_by_the_host_moves() -> None:
    first = alloc(SubnetRequest("a"))
    moved = alloc(SubnetRequest("a"), existing=first, host=[net("10.90.0.0/24")])
    assert moved["a"].subnet == net("10.90.1.0/24")


def test_explicit_subnet_gateway_range_and_aux_addresses_are_honoured() -> None:
    req = SubnetRequest("a", subnet="172.28.0.0/16", gateway="172.28.5.254", ip_range="172.28.5.0/24",
                        aux_addresses=("172.28.1.5",))
    sub = alloc(req)["a"]
    assert (sub.subnet, sub.gateway, sub.ip_range) == (net("172.28.0.0/16"), IPv4Address("172.28.5.254"),
                                                     net("172.28.5.0/24"))
    assert IPv4Address("172.28.1.5") in sub.unusable()


def test_explicit_subnet_defaults_gateway_to_the_first_address() -> None:
    assert alloc(SubnetRequest("a", subnet="10.5.0.0/16"))["a"].gateway == IPv4Address("10.5.0.1")


def test_implicit_networks_never_take_a_subnet_an_explicit_one_asks_for() -> None:
    got = alloc(SubnetRequest("a"), SubnetRequest("z", subnet="10.90.0.0/24"))
    assert got["z"].subnet == net("10.90.0.0/24")
    assert got["a"].subnet == net("10.90.1.0/24")


def test_an_existing_allocation_follows_a_changed_explicit_subnet() -> None:
    first = alloc(SubnetRequest("a"))
    changed = alloc(SubnetRequest("a", subnet="10.91.0.0/24"), existing=first)
    assert changed["a"].subnet == net("10.91.0.0/24")


@pytest.mark.parametrize(("req", "message"), [
    (SubnetRequest("a", subnet="192.0.2.128/25"), "overlaps 192.0.2.0/24, in use on this host"),
    (SubnetRequest("a", subnet="10.5.0.0/24", gateway="10.6.0.1"), "gateway 10.6.0.1 is not a host address"),
    (SubnetRequest("a", subnet="10.5.0.0/24", gateway="10.5.0.255"), "not a host address of 10.5.0.0/24"),
    (SubnetRequest("a", subnet="10.5.0.0/24", ip_range="10.6.0.0/25"), "ip_range 10.6.0.0/25 is not inside"),
    (SubnetRequest("a", subnet="10.5.0.0/24", aux_addresses=("10.7.0.1",)), "aux addresses 10.7.0.1"),
    (SubnetRequest("a", subnet="fd00::/64"), "is not IPv4"),
    (SubnetRequest("a", subnet="nonsense"), "is not a subnet"),
])
def test_bad_explicit_requests_are_clear_errors(req: SubnetRequest, message: str) -> None:
    with pytest.raises(IpamError, match=message):
        alloc(req)


def test_explicit_subnet_overlapping_another_network_is_an_error() -> None:
    first = alloc(SubnetRequest("one", subnet="10.5.0.0/16"))
    with pytest.raises(IpamError, match=r"overlaps 10\.5\.0\.0/16 of network one"):
        alloc(SubnetRequest("two", subnet="10.5.3.0/24"), existing=first)


def test_pool_exhaustion_is_a_clear_permanent_error() -> None:
    got = alloc(SubnetRequest("a"), SubnetRequest("b"), pool="10.90.0.0/23")
    message = r"network c: no free /24 subnet left in the pool 10\.90\.0\.0/23"
    with pytest.raises(PermanentDriverError, match=message):
        alloc(SubnetRequest("c"), existing=got, pool="10.90.0.0/23")


def test_release_subnet_frees_it() -> None:
    got = alloc(SubnetRequest("a"), SubnetRequest("b"))
    again = alloc(SubnetRequest("c"), existing=release_subnet(got, "a"))
    assert again["c"].subnet == net("10.90.0.0/24")


def test_request_from_compose_pools() -> None:
    pools: list[dict[str, Any]] = [
        {"subnet": "fd00:1::/64"},
        {"subnet": "10.5.0.0/24", "gateway": "10.5.0.254", "aux_addresses": {"router": "10.5.0.9"}},
    ]
    assert SubnetRequest.from_pools("a", pools) == SubnetRequest(
        "a", subnet="10.5.0.0/24", gateway="10.5.0.254", aux_addresses=("10.5.0.9",))
    assert SubnetRequest.from_pools("a", []) == SubnetRequest("a")
    with pytest.raises(IpamError, match="only one IPv4 subnet"):
        SubnetRequest.from_pools("a", [{"subnet": "10.5.0.0/24"}, {"subnet": "10.6.0.0/24"}])


def test_subnet_record_round_trip() -> None:
    sub = alloc(SubnetRequest("a", subnet="10.5.0.0/24", aux_addresses=("10.5.0.7",)))["a"]
    assert Subnet.from_record(sub.to_record()) == sub


# -------------------------------------------------------------------------------------- leases

SUB = Subnet("n", net("10.90.0.0/24"), IPv4Address("10.90.0.1"), net("10.90.0.0/24"))


def want(*names: str, **addresses: str) -> list[LeaseRequest]:
    return [LeaseRequest(n) for n in names] + [LeaseRequest(n, a) for n, a in addresses.items()]


def test_new_containers_get_the_lowest_free_addresses_in_name_order() -> None:
    assert assign_leases(SUB, {}, want("web-2", "web-1", "db-1")) == {
        "db-1": "10.90.0.2", "web-1": "10.90.0.3", "web-2": "10.90.0.4"}


def test_leases_are_stable_when_the_same_table_is_given() -> None:
    table = assign_leases(SUB, {}, want("web-1", "db-1"))
    assert assign_leases(SUB, table, want("db-1", "web-1")) == table
    # a newcomer that sorts first does not take an address someone holds
    grown = assign_leases(SUB, table, want("a-1", "db-1", "web-1"))
    assert grown["db-1"] == table["db-1"] and grown["web-1"] == table["web-1"]
    assert grown["a-1"] == "10.90.0.4"


def test_leases_of_containers_not_asked_about_are_kept() -> None:
    table = assign_leases(SUB, {}, want("web-1", "db-1"))
    after = assign_leases(SUB, table, want("web-1", "cache-1"))
    assert after["db-1"] == table["db-1"]
    assert after["cache-1"] not in {table["db-1"], table["web-1"]}


def test_release_frees_the_address_for_the_next_container() -> None:
    table = assign_leases(SUB, {}, want("a", "b"))
    table = assign_leases(SUB, release(table, "a"), want("c"))
    assert table == {"b": "10.90.0.3", "c": "10.90.0.2"}


def test_requested_addresses_are_honoured_and_move_a_dynamic_lease_out_of_the_way() -> None:
    table = assign_leases(SUB, {}, want("a", "b"))
    assert table["a"] == "10.90.0.2"
    after = assign_leases(SUB, table, want("a", b="10.90.0.2"))
    assert after["b"] == "10.90.0.2"
    assert after["a"] not in {"10.90.0.1", "10.90.0.2"}


@pytest.mark.parametrize(("address", "message"), [
    ("10.91.0.5", "is not in subnet 10.90.0.0/24"),
    ("10.90.0.1", "is reserved"),
    ("10.90.0.0", "is reserved"),
    ("10.90.0.255", "is reserved"),
    ("fd00::5", "is not IPv4"),
])
def test_bad_requested_addresses_are_clear_errors(address: str, message: str) -> None:
    with pytest.raises(IpamError, match=message):
        assign_leases(SUB, {}, want(x=address))


def test_a_requested_address_leased_to_a_container_not_asked_about_is_an_error() -> None:
    table = assign_leases(SUB, {}, want("db-1"))
    with pytest.raises(IpamError, match=r"10\.90\.0\.2 of web-1 is already used by db-1"):
        assign_leases(SUB, table, want(**{"web-1": "10.90.0.2"}))


def test_the_same_container_twice_is_an_error() -> None:
    with pytest.raises(IpamError, match="twice"):
        assign_leases(SUB, {}, [LeaseRequest("a"), LeaseRequest("a", "10.90.0.9")])


def test_ip_range_aux_addresses_and_gateway_are_respected() -> None:
    sub = Subnet("n", net("10.5.0.0/24"), IPv4Address("10.5.0.130"), net("10.5.0.128/29"),
                 frozenset({IPv4Address("10.5.0.129")}))
    table = assign_leases(sub, {}, want("a", "b", "c", "d", "e", "f"))
    assert sorted(table.values()) == ["10.5.0.128", "10.5.0.131", "10.5.0.132", "10.5.0.133",
                                      "10.5.0.134", "10.5.0.135"]
    # a requested address may be outside the range, as long as it is in the subnet
    assert assign_leases(sub, {}, want(x="10.5.0.7")) == {"x": "10.5.0.7"}


def test_exhaustion_is_a_clear_error() -> None:
    small = Subnet("tiny", net("10.5.0.0/29"), IPv4Address("10.5.0.1"), net("10.5.0.0/29"))
    full = assign_leases(small, {}, want("a", "b", "c", "d", "e"))
    assert len(full) == 5
    with pytest.raises(IpamError, match=r"network tiny: no free address left in 10.5.0.0/29 for f"):
        assign_leases(small, full, want("f"))


def test_leases_outside_the_subnet_or_garbled_are_dropped_and_replaced() -> None:
    table = assign_leases(SUB, {"a": "10.1.1.1", "b": "garbage", "c": "10.90.0.7"}, want("a", "b"))
    assert table == {"a": "10.90.0.2", "b": "10.90.0.3", "c": "10.90.0.7"}
