"""The nftables script of one stack: port publishing (DNAT), masquerade and forwarding for its
bridges, as one ``table ip <name>`` rendered from data.

``render(table)`` gives a script for one ``nft -f`` transaction that replaces the whole table:
``table ip X { }`` (create it if missing), ``delete table ip X``, then the table with all its
chains. Deleting rather than flushing also drops chains someone added by hand and lets a newer
stackd change a base chain's hook or priority; the transaction is still atomic, so no packet sees
a half-built table. ``render_table`` is the table alone, written exactly as ``nft list table``
prints it (nftables 1.0), so that drift can be found by comparing the two texts.

Chains (always all five, possibly empty, so the listing shape never changes):

- ``prerouting``/``output`` (nat): traffic to a local address (``fib daddr type local``) jumps to
  ``publish``, so a published port works from outside, from the host's own addresses and from
  127.0.0.1 (the latter also needs ``route_localnet`` on the bridge, see ``links``);
- ``publish``: one DNAT rule per published port or range, those bound to a host address first;
- ``postrouting`` (nat), per bridge: masquerade for 127.0.0.0/8 going into the bridge (localhost
  publishing), for DNAT'ed traffic from the bridge back into it (a container reaching a published
  port of its own network), and for the subnet leaving through any other interface (outbound
  access) — none of these for an ``internal`` network;
- ``forward`` (filter), per bridge: traffic within the bridge passes; into the bridge only replies
  and published (DNAT'ed) connections, so stacks and networks are isolated from each other and
  from the LAN; out of the bridge everything, except for ``internal`` networks, which neither
  send nor receive anything beyond their bridge. These accept rules do not override a drop in
  another table (e.g. a host firewall with a drop policy).

Only IPv4. Ordering is deterministic: bridges by name, ports by protocol, port and address.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address
from typing import Literal

Protocol = Literal["tcp", "udp"]

_TABLE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_CHAINS = ("prerouting", "output", "publish", "postrouting", "forward")
_HEADERS = {
    "prerouting": "type nat hook prerouting priority dstnat; policy accept;",
    "output": "type nat hook output priority -100; policy accept;",
    "postrouting": "type nat hook postrouting priority srcnat; policy accept;",
    "forward": "type filter hook forward priority filter; policy accept;",
}


def _ipv4(text: str, what: str) -> IPv4Address:
    addr = ip_address(text)
    if not isinstance(addr, IPv4Address):
        raise ValueError(f"{what} {text} is not IPv4 (this table is IPv4 only)")
    return addr


def _port(value: int, what: str) -> None:
    if not 1 <= value <= 65535:
        raise ValueError(f"{what} {value} is not a port (1-65535)")


@dataclass(frozen=True)
class Bridge:
    """One network of the stack: its bridge, its subnet and whether it is ``internal``."""

    name: str
    subnet: IPv4Network
    internal: bool = False

    def __post_init__(self) -> None:
        if not _IFNAME.fullmatch(self.name):
            raise ValueError(f"not an interface name: {self.name!r}")


@dataclass(frozen=True)
class Publish:
    """A published port or range: ``[host_ip:]published[-published_end] → container_ip:target[-target_end]``.

    A host range to one target sends the whole range to that port; two ranges must be of equal
    length and map port by port. No ``host_ip`` (or 0.0.0.0) means every local address.
    """

    container_ip: str
    target: int
    published: int
    protocol: Protocol = "tcp"
    host_ip: str | None = None
    published_end: int | None = None
    target_end: int | None = None

    def __post_init__(self) -> None:
        _ipv4(self.container_ip, "container address")
        if self.host_ip is not None:
            _ipv4(self.host_ip, "host address")
        if self.protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol {self.protocol!r} is not tcp or udp")
        for value, what in ((self.target, "target"), (self.published, "published port"),
                            (self.last_published, "published port"), (self.last_target, "target")):
            _port(value, what)
        if self.last_published < self.published or self.last_target < self.target:
            raise ValueError(f"port range {self.published}-{self.last_published}:"
                             f"{self.target}-{self.last_target} runs backwards")
        width = self.last_target - self.target
        if width and width != self.last_published - self.published:
            raise ValueError(f"port ranges {self.published}-{self.last_published} and "
                             f"{self.target}-{self.last_target} differ in length")

    @property
    def last_published(self) -> int:
        return self.published if self.published_end is None else self.published_end

    @property
    def last_target(self) -> int:
        return self.target if self.target_end is None else self.target_end

    @property
    def bound_address(self) -> str | None:
        """The host address the port is bound to, or None for every local address."""
        return None if self.host_ip in (None, "0.0.0.0") else self.host_ip


@dataclass(frozen=True)
class NatTable:
    """Everything one stack needs from nftables."""

    name: str
    bridges: tuple[Bridge, ...] = ()
    ports: tuple[Publish, ...] = ()

    def __post_init__(self) -> None:
        if not _TABLE.fullmatch(self.name):
            raise ValueError(f"not an nftables table name: {self.name!r}")
        names = [b.name for b in self.bridges]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: a bridge is listed twice")


# ---------------------------------------------------------------------------------------- rules


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def publish_rule(p: Publish) -> str:
    """The DNAT rule of one published port (as ``nft list`` prints it)."""
    match = f"ip daddr {p.bound_address} " if p.bound_address else ""
    match += f"{p.protocol} dport {_span(p.published, p.last_published)}"
    if p.target == p.last_target:
        return f"{match} dnat to {p.container_ip}:{p.target}"
    if p.target == p.published:
        return f"{match} dnat to {p.container_ip}"
    pairs = ", ".join(f"{p.published + i} : {p.container_ip} . {p.target + i}"
                      for i in range(p.last_published - p.published + 1))
    return f"{match} dnat ip to {p.protocol} dport map {{ {pairs} }}"


def _publish_key(p: Publish) -> tuple[str, int, bool, int, str, int]:
    bound = p.bound_address
    return (p.protocol, p.published, bound is None, int(IPv4Address(bound)) if bound else 0,
            p.container_ip, p.target)


def postrouting_rules(b: Bridge) -> list[str]:
    if b.internal:
        return []
    q = f'"{b.name}"'
    return [
        f"ip saddr 127.0.0.0/8 oifname {q} masquerade",
        f"ip saddr {b.subnet} oifname {q} ct status dnat masquerade",
        f"ip saddr {b.subnet} oifname != {q} masquerade",
    ]


def forward_rules(b: Bridge) -> list[str]:
    q = f'"{b.name}"'
    if b.internal:
        return [f"iifname {q} oifname {q} accept", f"iifname {q} drop", f"oifname {q} drop"]
    return [
        f"iifname {q} oifname {q} accept",
        f"oifname {q} ct state established,related accept",
        f"oifname {q} ct status dnat accept",
        f"oifname {q} drop",
        f"iifname {q} accept",
    ]


def chains(table: NatTable) -> dict[str, list[str]]:
    """The rules of every chain, in order (the data ``render_table`` formats)."""
    bridges = sorted(table.bridges, key=lambda b: b.name)
    return {
        "prerouting": ["fib daddr type local jump publish"],
        "output": ["fib daddr type local jump publish"],
        "publish": [publish_rule(p) for p in sorted(table.ports, key=_publish_key)],
        "postrouting": [r for b in bridges for r in postrouting_rules(b)],
        "forward": [r for b in bridges for r in forward_rules(b)],
    }


# --------------------------------------------------------------------------------------- render


def _lines(rules: Iterable[str], indent: str) -> list[str]:
    return [f"{indent}{r}" for r in rules]


def render_table(table: NatTable) -> str:
    """The table block alone, in ``nft list table ip <name>`` form."""
    blocks = []
    for name, rules in chains(table).items():
        head = [f"\tchain {name} {{"]
        if name in _HEADERS:
            head.append(f"\t\t{_HEADERS[name]}")
        blocks.append("\n".join([*head, *_lines(rules, "\t\t"), "\t}"]))
    return f"table ip {table.name} {{\n" + "\n\n".join(blocks) + "\n}\n"


def render(table: NatTable) -> str:
    """The script that replaces ``table`` on the host in one ``nft -f`` transaction."""
    return f"table ip {table.name} {{\n}}\ndelete table ip {table.name}\n" + render_table(table)


def delete_script(name: str) -> str:
    """A script that removes table ``name`` whether or not it exists (one transaction)."""
    if not _TABLE.fullmatch(name):
        raise ValueError(f"not an nftables table name: {name!r}")
    return f"table ip {name} {{\n}}\ndelete table ip {name}\n"


def normalize_listing(text: str) -> list[str]:
    """The meaningful lines of an nft listing or table block: stripped, without blank lines,
    comments and ``# handle`` annotations (for comparing a listing with ``render_table``)."""
    out = []
    for raw in text.splitlines():
        line = re.sub(r"\s+#.*$", "", raw).strip()
        if line and not line.startswith("#"):
            out.append(re.sub(r"\s+", " ", line))
    return out
