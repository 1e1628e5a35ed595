"""Host object names: short enough for the kernel, stable, and recognisable only by their owner."""

from __future__ import annotations

import re

import pytest

from stackd.drivers.network.names import DEFAULT, IFNAMSIZ, Naming, netns_path

TEST = Naming("stkt", "stkt")


@pytest.mark.parametrize("naming", [DEFAULT, TEST, Naming("abcdef", "x")])
def test_link_names_fit_the_kernel_limit(naming: Naming) -> None:
    long = "p" * 200
    for name in (naming.bridge(long, long), naming.veth(long, long), naming.bridge("a", "b")):
        assert len(name.encode()) <= IFNAMSIZ, name
        assert naming.is_link(name)


def test_default_shapes_are_the_documented_ones() -> None:
    assert re.fullmatch(r"stk-[0-9a-f]{6}", DEFAULT.bridge("shop", "shop_default"))
    assert re.fullmatch(r"stkv[0-9a-f]{8}", DEFAULT.veth("shop-web-1", "shop_default"))
    assert DEFAULT.table("shop") == "stackd-shop"
    assert DEFAULT.netns("shop-web-1") == "stk-shop-web-1"
    assert re.fullmatch(r"stkt-[0-9a-f]{6}", TEST.bridge("shop", "shop_default"))
    assert TEST.table("shop") == "stkt-shop"


def test_names_are_stable_across_versions() -> None:
    # A changed hash would orphan every bridge and veth on hosts running an older stackd.
    assert DEFAULT.bridge("shop", "shop_default") == "stk-114adb"
    assert DEFAULT.veth("shop-web-1", "shop_default") == "stkv5ffe538f"


def test_names_depend_on_every_part() -> None:
    assert DEFAULT.bridge("a", "net") != DEFAULT.bridge("b", "net")
    assert DEFAULT.bridge("a", "net1") != DEFAULT.bridge("a", "net2")
    # the parts are joined unambiguously: ("ab", "c") is not ("a", "bc")
    assert DEFAULT.bridge("ab", "c") != DEFAULT.bridge("a", "bc")
    # one container on two networks needs two veth pairs
    assert DEFAULT.veth("shop-web-1", "front") != DEFAULT.veth("shop-web-1", "back")


def test_long_or_odd_container_names_are_hashed_into_safe_netns_names() -> None:
    a, b = "x" * 80 + "-1", "x" * 80 + "-2"
    for container in (a, b, "we/ird name"):
        name = DEFAULT.netns(container)
        assert len(name) <= 64 and "/" not in name and " " not in name
        assert re.fullmatch(r"stk-[A-Za-z0-9_.-]+", name)
        assert DEFAULT.is_netns(name)
    assert DEFAULT.netns(a) != DEFAULT.netns(b)
    assert DEFAULT.netns(a).startswith("stk-xxxx")


def test_an_owner_never_claims_another_owners_objects() -> None:
    ours = [TEST.bridge("p", "n"), TEST.veth("c", "n"), TEST.netns("p-c-1"), TEST.table("p")]
    assert not any(DEFAULT.is_link(n) or DEFAULT.is_netns(n) or DEFAULT.is_table(n) for n in ours)
    theirs = [DEFAULT.bridge("p", "n"), DEFAULT.veth("c", "n"), DEFAULT.netns("p-c-1"), DEFAULT.table("p")]
    assert not any(TEST.is_link(n) or TEST.is_netns(n) or TEST.is_table(n) for n in theirs)
    for foreign in ("eth0", "lo", "stk-", "stk-zzzzzz", "stkv1234567", "docker0", "stackd"):
        assert not DEFAULT.is_link(foreign) and not DEFAULT.is_table(foreign)


@pytest.mark.parametrize("prefix", ["", "Stk", "stk-x", "abcdefg", "1stk"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        Naming(prefix)


def test_netns_path() -> None:
    assert str(netns_path("stk-shop-web-1")) == "/run/netns/stk-shop-web-1"
    with pytest.raises(ValueError):
        netns_path("../etc")
