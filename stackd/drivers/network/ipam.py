"""Address management for stack networks (IPv4): which subnet a network gets, which address a
container gets on it. Data in, data out, so that a store can persist every decision.

Subnets (``allocate_subnets``): a network that names a subnet in Compose (``ipam.config[].subnet``,
with optional ``gateway``, ``ip_range`` and ``aux_addresses``) gets exactly that, or an ``IpamError``
when the subnet overlaps a subnet in use on the host or by another network. Any other network gets
the first free ``/24`` of the pool (10.90.0.0/16 unless told otherwise) that overlaps nothing in use.
A network that already has a subnet (``existing``, e.g. from the store) keeps it while it still
fits its request and the host, so addresses do not move across restarts. The gateway is the first
address of the subnet unless Compose names another.

Leases (``assign_leases``): a table ``container name → address`` per network. Requested addresses
(``ipv4_address``) are honoured; a container that holds a valid lease keeps it; new containers get
the lowest free address of the range, in name order, so the same table and requests always give
the same answer. The network and broadcast addresses, the gateway and ``aux_addresses`` are never
leased. Leases are only dropped by ``release`` (a stopped container keeps its address), except
entries that are no address of the subnet at all (left over from an earlier subnet).

Pure: no I/O. Addresses in tables are strings (what a store writes); everything else is typed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address, ip_network
from typing import Any

from stackd.drivers.network.errors import IpamError

DEFAULT_POOL = IPv4Network("10.90.0.0/16")
DEFAULT_PREFIXLEN = 24

Leases = Mapping[str, str]
"""A lease table of one network: container name → IPv4 address (as text)."""


@dataclass(frozen=True)
class SubnetRequest:
    """What one network asks of the IPAM; the fields are Compose's ``ipam.config[]`` (first IPv4 pool)."""

    network: str
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None
    aux_addresses: tuple[str, ...] = ()

    @classmethod
    def from_pools(cls, network: str, pools: Sequence[Mapping[str, Any]]) -> SubnetRequest:
        """The request for ``network`` from its Compose ``ipam.config`` list (IPv6 pools are skipped)."""
        v4 = [p for p in pools if p.get("subnet") and ip_network(str(p["subnet"]), strict=False).version == 4]
        if len(v4) > 1:
            raise IpamError(f"network {network}: only one IPv4 subnet per network is supported, "
                            f"got {', '.join(str(p['subnet']) for p in v4)}")
        if not v4:
            return cls(network)
        pool = v4[0]
        aux = pool.get("aux_addresses") or {}
        return cls(network, subnet=str(pool["subnet"]),
                   gateway=str(pool["gateway"]) if pool.get("gateway") else None,
                   ip_range=str(pool["ip_range"]) if pool.get("ip_range") else None,
                   aux_addresses=tuple(sorted(str(a) for a in aux.values())))


@dataclass(frozen=True)
class Subnet:
    """The subnet a network got: its gateway (the bridge's address) and where leases come from."""

    network: str
    subnet: IPv4Network
    gateway: IPv4Address
    ip_range: IPv4Network
    reserved: frozenset[IPv4Address] = field(default_factory=frozenset)

    @property
    def interface(self) -> IPv4Interface:
        """The gateway with the subnet's prefix length, e.g. ``10.90.0.1/24`` (the bridge's address)."""
        return IPv4Interface(f"{self.gateway}/{self.subnet.prefixlen}")

    def interface_of(self, address: str | IPv4Address) -> IPv4Interface:
        """``address`` with the subnet's prefix length (a container's address on this network)."""
        return IPv4Interface(f"{address}/{self.subnet.prefixlen}")

    def to_record(self) -> dict[str, Any]:
        """Plain data for a store (``from_record`` reads it back)."""
        return {"network": self.network, "subnet": str(self.subnet), "gateway": str(self.gateway),
                "ip_range": str(self.ip_range), "reserved": sorted(str(a) for a in self.reserved)}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Subnet:
        return cls(str(data["network"]), IPv4Network(data["subnet"]), IPv4Address(data["gateway"]),
                   IPv4Network(data["ip_range"]), frozenset(IPv4Address(a) for a in data.get("reserved", ())))

    def unusable(self) -> frozenset[IPv4Address]:
        """Addresses no container may have: network, broadcast, gateway and reserved ones."""
        net = self.subnet
        edges = {net.network_address, net.broadcast_address} if net.prefixlen < 31 else set()
        return frozenset({*edges, self.gateway, *self.reserved})


# ------------------------------------------------------------------------------------- subnets


def _v4net(text: str, what: str, network: str) -> IPv4Network:
    try:
        net = ip_network(text, strict=False)
    except ValueError as exc:
        raise IpamError(f"network {network}: {what} {text!r} is not a subnet") from exc
    if not isinstance(net, IPv4Network):
        raise IpamError(f"network {network}: {what} {text} is not IPv4")
    return net


def _v4addr(text: str, what: str, network: str) -> IPv4Address:
    try:
        addr = ip_address(text)
    except ValueError as exc:
        raise IpamError(f"network {network}: {what} {text!r} is not an address") from exc
    if not isinstance(addr, IPv4Address):
        raise IpamError(f"network {network}: {what} {text} is not IPv4")
    return addr


def _explicit(req: SubnetRequest) -> Subnet:
    assert req.subnet is not None
    subnet = _v4net(req.subnet, "subnet", req.network)
    gateway = _v4addr(req.gateway, "gateway", req.network) if req.gateway else next(subnet.hosts())
    if gateway not in subnet or (subnet.prefixlen < 31 and gateway in
                                 (subnet.network_address, subnet.broadcast_address)):
        raise IpamError(f"network {req.network}: gateway {gateway} is not a host address of {subnet}")
    ip_range = _v4net(req.ip_range, "ip_range", req.network) if req.ip_range else subnet
    if not ip_range.subnet_of(subnet):
        raise IpamError(f"network {req.network}: ip_range {ip_range} is not inside subnet {subnet}")
    reserved = frozenset(_v4addr(a, "aux address", req.network) for a in req.aux_addresses)
    outside = sorted(str(a) for a in reserved if a not in subnet)
    if outside:
        raise IpamError(f"network {req.network}: aux addresses {', '.join(outside)} are not in {subnet}")
    return Subnet(req.network, subnet, gateway, ip_range, reserved)


def _fits(prev: Subnet, req: SubnetRequest) -> bool:
    """Whether an earlier allocation still answers ``req`` (always, for a request without a subnet)."""
    if req.subnet is None:
        return True
    try:
        return prev == _explicit(req)
    except IpamError:
        return False


def _overlapping(net: IPv4Network, used: Iterable[IPv4Network]) -> list[IPv4Network]:
    return sorted({u for u in used if net.overlaps(u)})


def allocate_subnets(requests: Sequence[SubnetRequest], *, existing: Mapping[str, Subnet],
                     host: Iterable[IPv4Network], pool: IPv4Network = DEFAULT_POOL,
                     prefixlen: int = DEFAULT_PREFIXLEN) -> dict[str, Subnet]:
    """Every known allocation (``existing``) plus one for each request, keyed by network.

    ``existing`` holds what stackd already gave out (all stacks, from the store); ``host`` the
    subnets in use on the host by anything else (addresses and routes of foreign links).
    """
    host_nets = frozenset(host)
    result = dict(existing)
    for req in sorted(requests, key=lambda r: r.network):
        prev = existing.get(req.network)
        if prev is not None and _fits(prev, req) and not _overlapping(prev.subnet, host_nets):
            continue
        result.pop(req.network, None)
        if req.subnet is not None:
            sub = _explicit(req)
            clash = _overlapping(sub.subnet, host_nets)
            if clash:
                raise IpamError(f"network {req.network}: subnet {sub.subnet} overlaps {clash[0]}, "
                                "in use on this host")
            for other in sorted(result.values(), key=lambda s: s.network):
                if sub.subnet.overlaps(other.subnet):
                    raise IpamError(f"network {req.network}: subnet {sub.subnet} overlaps {other.subnet} "
                                    f"of network {other.network}")
            result[req.network] = sub
    # Implicit requests come second, so that they never take a subnet an explicit one asked for.
    for req in sorted(requests, key=lambda r: r.network):
        if req.network in result:
            continue
        used = host_nets | {s.subnet for s in result.values()}
        for candidate in pool.subnets(new_prefix=prefixlen):
            if not _overlapping(candidate, used):
                gateway = next(candidate.hosts())
                result[req.network] = Subnet(req.network, candidate, gateway, candidate)
                break
        else:
            raise IpamError(f"network {req.network}: no free /{prefixlen} subnet left in the pool {pool} "
                            f"({len(result)} networks and {len(host_nets)} host subnets in use); "
                            "remove unused networks or give this "
                            "one an explicit ipam subnet")
    return result


def release_subnet(existing: Mapping[str, Subnet], network: str) -> dict[str, Subnet]:
    """``existing`` without ``network`` (its subnet becomes free)."""
    return {k: v for k, v in existing.items() if k != network}


# -------------------------------------------------------------------------------------- leases


@dataclass(frozen=True)
class LeaseRequest:
    """A container that needs an address on a network, maybe a given one (``ipv4_address``)."""

    container: str
    address: str | None = None


def _parse_lease(text: str) -> IPv4Address | None:
    try:
        addr = ip_address(text)
    except ValueError:
        return None
    return addr if isinstance(addr, IPv4Address) else None


def assign_leases(subnet: Subnet, leases: Leases, wanted: Sequence[LeaseRequest]) -> dict[str, str]:
    """The lease table after giving every container in ``wanted`` an address on ``subnet``.

    Leases of containers not in ``wanted`` stay (and keep their addresses from being reused).
    Raises ``IpamError`` when a requested address is outside the subnet, not a host address, asked
    for twice or leased to a container not in ``wanted``; or when the range is exhausted.
    """
    bad = subnet.unusable()
    names = [w.container for w in wanted]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise IpamError(f"network {subnet.network}: container {dupes[0]} asked for an address twice")
    wanted_names = set(names)
    parsed = {c: _parse_lease(text) for c, text in leases.items()}
    current = {c: a for c, a in parsed.items() if a is not None and a in subnet.subnet}
    result: dict[str, IPv4Address] = {c: a for c, a in current.items() if c not in wanted_names}
    holder = {a: c for c, a in result.items()}

    for req in sorted((w for w in wanted if w.address), key=lambda w: w.container):
        assert req.address is not None
        addr = _v4addr(req.address, f"ipv4_address of {req.container}", subnet.network)
        if addr not in subnet.subnet:
            raise IpamError(f"network {subnet.network}: ipv4_address {addr} of {req.container} is not in "
                            f"subnet {subnet.subnet}")
        if addr in bad:
            raise IpamError(f"network {subnet.network}: ipv4_address {addr} of {req.container} is reserved "
                            "(network, broadcast, gateway or aux address)")
        if addr in holder:
            raise IpamError(f"network {subnet.network}: ipv4_address {addr} of {req.container} is already "
                            f"used by {holder[addr]}")
        result[req.container] = addr
        holder[addr] = req.container

    dynamic = sorted(w.container for w in wanted if not w.address)
    fresh: list[str] = []
    for name in dynamic:  # keep valid leases first, so that a newcomer never takes them
        kept = current.get(name)
        if kept is not None and kept in subnet.ip_range and kept not in bad and kept not in holder:
            result[name] = kept
            holder[kept] = name
        else:
            fresh.append(name)
    if fresh:
        free = (a for a in subnet.ip_range if a not in bad and a not in holder)
        for name in fresh:
            new = next(free, None)
            if new is None:
                raise IpamError(f"network {subnet.network}: no free address left in {subnet.ip_range} for "
                                f"{name} ({len(holder)} leased)")
            result[name] = new
            holder[new] = name
    return {c: str(result[c]) for c in sorted(result)}


def release(leases: Leases, container: str) -> dict[str, str]:
    """``leases`` without ``container``'s lease."""
    return {c: a for c, a in sorted(leases.items()) if c != container}
