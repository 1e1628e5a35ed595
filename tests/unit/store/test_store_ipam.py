"""IPAM records: subnets round-trip with the network driver's records, lease tables, constraints."""

from __future__ import annotations

import pytest

from stackd.drivers.network.ipam import LeaseRequest, SubnetRequest, allocate_subnets, assign_leases
from stackd.drivers.network.ipam import Subnet as IpamSubnet
from stackd.store import Store, StoreConflictError, StoredSubnet

NET = StoredSubnet("demo_default", "10.90.0.0/24", "10.90.0.1", "10.90.0.0/24")


def test_subnet_records_of_the_ipam_round_trip(store: Store) -> None:
    back_req = SubnetRequest("demo_back", subnet="172.30.0.0/16", gateway="172.30.0.254",
                             ip_range="172.30.5.0/24", aux_addresses=("172.30.0.9", "172.30.0.8"))
    got = allocate_subnets([SubnetRequest("demo_default"), back_req], existing={}, host=[])
    for sub in got.values():
        store.put_subnet(StoredSubnet.from_mapping(sub.to_record()))
    back = {name: IpamSubnet.from_record(rec.to_mapping()) for name, rec in store.subnets().items()}
    assert back == got
    # what the store gives back is what the allocator needs to keep addresses stable
    assert allocate_subnets([SubnetRequest("demo_default")], existing=back, host=[]) == back


def test_put_subnet_replaces_and_remove_says_whether_it_existed(store: Store) -> None:
    store.put_subnet(NET)
    moved = StoredSubnet("demo_default", "10.90.1.0/24", "10.90.1.1", "10.90.1.0/24", ("10.90.1.7",))
    store.put_subnet(moved)
    assert store.subnet("demo_default") == moved
    assert list(store.subnets()) == ["demo_default"]
    assert store.remove_subnet("demo_default") is True
    assert store.remove_subnet("demo_default") is False
    assert store.subnet("demo_default") is None


def test_lease_tables_replace_as_a_whole(store: Store) -> None:
    store.put_subnet(NET)
    sub = IpamSubnet.from_record(NET.to_mapping())
    wanted = [LeaseRequest("demo-web-1"), LeaseRequest("demo-db-1")]
    table = assign_leases(sub, store.leases(NET.network), wanted)
    store.set_leases(NET.network, table)
    assert store.leases(NET.network) == table == {"demo-db-1": "10.90.0.2", "demo-web-1": "10.90.0.3"}
    store.set_leases(NET.network, {"demo-web-1": "10.90.0.3"})
    assert store.leases(NET.network) == {"demo-web-1": "10.90.0.3"}


def test_put_and_release_single_leases(store: Store) -> None:
    store.put_subnet(NET)
    other = StoredSubnet("demo_back", "10.90.1.0/24", "10.90.1.1", "10.90.1.0/24")
    store.put_subnet(other)
    store.put_lease(NET.network, "demo-web-1", "10.90.0.5")
    store.put_lease(NET.network, "demo-web-1", "10.90.0.6")  # moves
    store.put_lease(other.network, "demo-web-1", "10.90.1.5")
    store.put_lease(NET.network, "demo-db-1", "10.90.0.5")  # the old address is free again
    assert store.leases_of("demo-web-1") == {"demo_back": "10.90.1.5", "demo_default": "10.90.0.6"}
    assert store.release_lease(NET.network, "demo-db-1") is True
    assert store.release_lease(NET.network, "demo-db-1") is False
    assert store.release_leases_of("demo-web-1") == 2
    assert store.leases_of("demo-web-1") == {} and store.leases(NET.network) == {}


def test_an_address_is_leased_once_per_network(store: Store) -> None:
    store.put_subnet(NET)
    store.put_lease(NET.network, "a", "10.90.0.5")
    with pytest.raises(StoreConflictError):
        store.put_lease(NET.network, "b", "10.90.0.5")
    with pytest.raises(StoreConflictError):
        store.set_leases(NET.network, {"c": "10.90.0.9", "d": "10.90.0.9"})
    assert store.leases(NET.network) == {"a": "10.90.0.5"}  # the failed table changed nothing


def test_a_lease_needs_a_subnet_and_goes_with_it(store: Store) -> None:
    with pytest.raises(StoreConflictError):
        store.put_lease("nowhere", "a", "10.0.0.2")
    store.put_subnet(NET)
    store.set_leases(NET.network, {"a": "10.90.0.2", "b": "10.90.0.3"})
    store.remove_subnet(NET.network)
    assert store.leases(NET.network) == {} and store.leases_of("a") == {}


def test_stored_subnet_mapping_is_checked() -> None:
    with pytest.raises(ValueError, match="reserved"):
        StoredSubnet.from_mapping({"network": "n", "subnet": "s", "gateway": "g", "ip_range": "r",
                                   "reserved": "10.0.0.1"})
    bare = StoredSubnet.from_mapping({"network": "n", "subnet": "s", "gateway": "g", "ip_range": "r"})
    assert bare.reserved == ()
