"""The nftables script of a stack, as golden text (``golden/<scenario>.nft``), plus its validation
and the pure helpers of ``nftables`` (listing comparison, table list parsing).

After an intended change, rewrite the files with ``STACKD_UPDATE_GOLDEN=1 pytest tests/unit/network``
and review the diff.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from stackd.drivers.network.names import Naming
from stackd.drivers.network.nft import Bridge, NatTable, Publish, delete_script, render, render_table
from stackd.drivers.network.nftables import compare, parse_tables

GOLDEN = Path(__file__).parent / "golden"
FRONT = Bridge("stk-1a2b3c", IPv4Network("10.90.0.0/24"))
BACK = Bridge("stk-4d5e6f", IPv4Network("10.90.1.0/24"), internal=True)


def web_stack() -> NatTable:
    """One network; a port on every address, one on 127.0.0.1 only, a UDP port."""
    return NatTable("stackd-shop", (FRONT,), (
        Publish("10.90.0.2", 80, 8080),
        Publish("10.90.0.3", 5432, 5432, host_ip="127.0.0.1"),
        Publish("10.90.0.4", 53, 5353, "udp"),
    ))


def internal_network() -> NatTable:
    """An outward network and an internal one: no masquerade and no way out for the latter."""
    return NatTable("stackd-shop", (BACK, FRONT), (Publish("10.90.0.2", 80, 8080),))


def port_ranges() -> NatTable:
    """A host range to one port, an identical range, and a shifted range (port by port)."""
    return NatTable("stackd-shop", (FRONT,), (
        Publish("10.90.0.2", 80, 8000, published_end=8009),
        Publish("10.90.0.3", 9000, 9000, published_end=9002, target_end=9002),
        Publish("10.90.0.4", 60, 6000, published_end=6002, target_end=62),
        Publish("10.90.0.5", 7000, 7000, protocol="udp", host_ip="192.0.2.2", published_end=7001,
                target_end=7001),
    ))


def same_port_on_two_addresses() -> NatTable:
    """A port bound to one address comes before the same port on every address (first match wins)."""
    return NatTable("stackd-shop", (FRONT,), (
        Publish("10.90.0.2", 80, 8080),
        Publish("10.90.0.3", 80, 8080, host_ip="127.0.0.1"),
        Publish("10.90.0.4", 80, 8080, host_ip="0.0.0.0", protocol="udp"),
    ))


def empty_stack() -> NatTable:
    return NatTable("stackd-empty")


SCENARIOS: dict[str, Callable[[], NatTable]] = {
    f.__name__: f for f in (web_stack, internal_network, port_ranges, same_port_on_two_addresses, empty_stack)
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden(name: str) -> None:
    text = render(SCENARIOS[name]())
    path = GOLDEN / f"{name}.nft"
    if os.environ.get("STACKD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_order_of_the_input_does_not_matter(name: str) -> None:
    table = SCENARIOS[name]()
    rng = random.Random(7)
    for _ in range(5):
        bridges, ports = list(table.bridges), list(table.ports)
        rng.shuffle(bridges)
        rng.shuffle(ports)
        assert render(NatTable(table.name, tuple(bridges), tuple(ports))) == render(table)


def test_the_script_replaces_the_whole_table_in_one_transaction() -> None:
    table = web_stack()
    script = render(table)
    # create-if-missing, delete, then the table: valid whether or not the table exists
    head = "table ip stackd-shop {\n}\ndelete table ip stackd-shop\n"
    assert script.startswith(head + "table ip stackd-shop {\n")
    assert script.endswith(render_table(table))
    assert delete_script("stackd-shop") == "table ip stackd-shop {\n}\ndelete table ip stackd-shop\n"


def test_internal_networks_have_no_masquerade() -> None:
    text = render_table(internal_network())
    assert "10.90.1.0/24" not in text
    assert 'oifname "stk-4d5e6f" masquerade' not in text
    assert 'ip saddr 10.90.0.0/24 oifname != "stk-1a2b3c" masquerade' in text
    assert 'iifname "stk-4d5e6f" drop' in text and 'oifname "stk-4d5e6f" drop' in text


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Publish("fd00::2", 80, 8080), "not IPv4"),
    (lambda: Publish("10.90.0.2", 80, 8080, host_ip="::"), "not IPv4"),
    (lambda: Publish("10.90.0.2", 0, 8080), "not a port"),
    (lambda: Publish("10.90.0.2", 80, 70000), "not a port"),
    (lambda: Publish("10.90.0.2", 80, 8080, published_end=8070), "runs backwards"),
    (lambda: Publish("10.90.0.2", 80, 8080, published_end=8081, target_end=83), "differ in length"),
    (lambda: Publish("10.90.0.2", 80, 8080, target_end=81), "differ in length"),
    (lambda: Publish("10.90.0.2", 80, 8080, protocol="sctp"), "not tcp or udp"),  # type: ignore[arg-type]
    (lambda: Bridge('x" accept', IPv4Network("10.0.0.0/24")), "not an interface name"),
    (lambda: NatTable("bad name"), "not an nftables table name"),
    (lambda: NatTable("t", (FRONT, FRONT)), "listed twice"),
])
def test_invalid_data_is_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_compare_tells_missing_drifted_and_in_sync() -> None:
    table = web_stack()
    listing = render_table(table)
    assert compare(table, None) == "missing"
    assert compare(table, listing) == "in-sync"
    # nft's own layout: other indentation, blank lines, handle comments
    relaid = "\n\n".join(line.strip() + "  # handle 4" for line in listing.splitlines())
    assert compare(table, relaid) == "in-sync"
    flushed = "\n".join(line for line in listing.splitlines()
                        if "dnat" not in line and "masquerade" not in line)
    assert compare(table, flushed) == "drifted"
    assert compare(table, listing.replace("8080", "8081")) == "drifted"


def test_parse_tables_keeps_only_ip_tables() -> None:
    listing = ("table inet filter\ntable ip stackd-shop\ntable ip6 stackd-shop\n"
               "table ip nat\ntable ip stkt-x\n")
    assert parse_tables(listing) == ("nat", "stackd-shop", "stkt-x")
    naming = Naming()
    assert [t for t in parse_tables(listing) if naming.is_table(t)] == ["stackd-shop"]
