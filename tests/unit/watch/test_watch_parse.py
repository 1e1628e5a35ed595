"""Link messages, which of them matter, nft monitor lines, and ``Changes``: all pure."""

from __future__ import annotations

import struct

import pytest

from stackd.drivers.network.names import Naming
from stackd.drivers.watch import (
    CHANGE_ALL,
    IFF_UP,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_NEWLINK,
    Changes,
    LinkEvent,
    LinkTracker,
    nft_table,
    parse_link_messages,
)

OWNER = Naming("stkw", "stkw")
BRIDGE = OWNER.bridge("p", "n")
VETH = OWNER.veth("p-web-1", "n")
AF_BRIDGE = 7


def attr(kind: int, value: bytes) -> bytes:
    size = 4 + len(value)
    return struct.pack("=HH", size, kind) + value + b"\0" * (-size % 4)


def link_msg(kind: int, index: int, name: str | None, *, flags: int = 0, change: int = 0,
             master: int | None = None, family: int = 0) -> bytes:
    attrs = b""
    if name is not None:
        attrs += attr(3, name.encode() + b"\0")
    attrs += attr(4, struct.pack("=I", 1500))  # IFLA_MTU, ignored
    if master is not None:
        attrs += attr(10, struct.pack("=I", master))
    body = struct.pack("=BxHiII", family, 1, index, flags, change) + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def event(deleted: bool = False, *, index: int = 5, name: str = VETH, flags: int = IFF_UP,
          change: int = 0, master: int | None = None, family: int = 0) -> LinkEvent:
    return LinkEvent(deleted, family, index, name, flags, change, master)


# ---------------------------------------------------------------------------------- netlink


def test_several_link_messages_in_one_datagram() -> None:
    data = (link_msg(RTM_NEWLINK, 7, VETH, flags=0x1003, change=0x1, master=3)
            + link_msg(RTM_DELLINK, 3, BRIDGE, change=CHANGE_ALL)
            + link_msg(RTM_DELLINK, 7, VETH, family=AF_BRIDGE, master=3))
    assert parse_link_messages(data) == [
        LinkEvent(False, 0, 7, VETH, 0x1003, 0x1, 3),
        LinkEvent(True, 0, 3, BRIDGE, 0, CHANGE_ALL, None),
        LinkEvent(True, AF_BRIDGE, 7, VETH, 0, 0, 3),
    ]


def addr_msg(kind: int, index: int, label: str | None) -> bytes:
    attrs = attr(1, bytes([10, 89, 0, 1]))  # IFA_ADDRESS
    if label is not None:
        attrs += attr(3, label.encode() + b"\0")  # IFA_LABEL
    body = struct.pack("=BBBBI", 2, 24, 0, 0, index) + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_an_address_removed_is_a_link_event_of_its_label() -> None:
    data = addr_msg(RTM_DELADDR, 3, BRIDGE) + addr_msg(20, 3, BRIDGE) + addr_msg(RTM_DELADDR, 4, None)
    assert parse_link_messages(data) == [LinkEvent(False, 2, 3, BRIDGE, 0, 0, None, address_removed=True)]
    tracker = LinkTracker(OWNER)
    assert tracker.feed(parse_link_messages(data)[0]) == BRIDGE  # (RTM_NEWADDR and no label: nothing)
    assert tracker.feed(LinkEvent(False, 2, 2, "eth0", 0, 0, None, address_removed=True)) is None


def test_other_netlink_messages_are_skipped() -> None:
    done = struct.pack("=IHHIIi", 20, 3, 0, 0, 0, 0)  # NLMSG_DONE
    data = done + link_msg(RTM_DELLINK, 9, "eth0")
    assert [e.name for e in parse_link_messages(data)] == ["eth0"]


def test_a_message_longer_than_the_datagram_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_link_messages(link_msg(RTM_DELLINK, 9, "eth0")[:-8])


# ---------------------------------------------------------------------------------- tracker


def test_only_the_owners_links_count() -> None:
    tracker = LinkTracker(OWNER)
    for name in ("eth0", "stk-abcdef", "stkwv123", "stkw-toolong00", Naming().veth("c", "n")):
        assert tracker.feed(event(True, name=name)) is None
    assert tracker.feed(event(True, name=BRIDGE)) == BRIDGE
    assert tracker.feed(event(True, name=VETH)) == VETH


def test_creation_and_coming_up_are_not_reported() -> None:
    tracker = LinkTracker(OWNER)
    assert tracker.feed(event(flags=0, change=CHANGE_ALL)) is None  # created, down
    assert tracker.feed(event(flags=IFF_UP, change=IFF_UP)) is None  # set up
    assert tracker.feed(event(flags=IFF_UP, change=0, master=3)) is None  # attached to its bridge
    assert tracker.feed(event(flags=IFF_UP, change=0, master=3)) is None  # anything else


def test_going_down_is_reported() -> None:
    tracker = LinkTracker(OWNER)
    assert tracker.feed(event(flags=0, change=IFF_UP)) == VETH
    assert tracker.feed(event(flags=0, change=0)) is None  # still down: not a new change


def test_losing_the_master_is_reported_once() -> None:
    tracker = LinkTracker(OWNER)
    assert tracker.feed(event(master=3)) is None
    assert tracker.feed(event(master=None)) == VETH
    assert tracker.feed(event(master=None)) is None
    # a master the tracker never saw cannot be seen going; the bridge's port message covers it
    assert tracker.feed(event(True, family=AF_BRIDGE, master=3)) == VETH


def test_bridge_port_updates_are_not_link_changes() -> None:
    tracker = LinkTracker(OWNER)
    assert tracker.feed(event(master=3)) is None
    assert tracker.feed(event(family=AF_BRIDGE, master=None, flags=0, change=IFF_UP)) is None


def test_a_deleted_link_is_forgotten() -> None:
    tracker = LinkTracker(OWNER)
    tracker.feed(event(master=3))
    assert tracker.feed(event(True)) == VETH
    assert tracker.feed(event(master=None, change=CHANGE_ALL)) is None  # a new link, same index


# -------------------------------------------------------------------------------------- nft


@pytest.mark.parametrize(("line", "table"), [
    ('{"add": {"table": {"family": "ip", "name": "stkw-shop", "handle": 4}}}', "stkw-shop"),
    ('{"delete": {"table": {"family": "ip", "name": "stkw-shop", "handle": 4}}}', "stkw-shop"),
    ('{"add": {"chain": {"family": "ip", "table": "stkw-shop", "name": "c", "handle": 1}}}', "stkw-shop"),
    ('{"delete": {"rule": {"family": "ip", "table": "t2", "chain": "c", "handle": 2, "expr": []}}}', "t2"),
    ('{"add": {"element": {"family": "ip", "table": "t3", "name": "s", "elem": {"set": [1]}}}}', "t3"),
    ('{"metainfo": {"version": "1.0.6"}}', None),
    ("[1, 2]", None),
    ('{"add": 3}', None),
    ("netlink: Error: something", None),
    ("", None),
])
def test_nft_monitor_lines_name_their_table(line: str, table: str | None) -> None:
    assert nft_table(line) == table
    assert nft_table(line.encode()) == table


# ---------------------------------------------------------------------------------- changes


def test_changes_are_false_only_when_empty() -> None:
    assert not Changes()
    assert Changes(exited=frozenset({"a"}))
    assert Changes(links=frozenset({"b"}))
    assert Changes(tables=frozenset({"c"}))
    assert Changes(lost=True)


def test_changes_combine() -> None:
    one = Changes(exited=frozenset({"a"}), tables=frozenset({"t"}))
    two = Changes(exited=frozenset({"b"}), links=frozenset({"l"}), lost=True)
    assert one | two == Changes(frozenset({"a", "b"}), frozenset({"l"}), frozenset({"t"}), True)

