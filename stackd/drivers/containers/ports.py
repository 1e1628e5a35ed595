"""Whether the host ports a container would publish are free.

nftables DNAT does not bind a port, so nothing on the host would stop two stacks (or a stack and
a local server) from claiming the same one; the loser would silently never see its traffic.
Before a port is published it is checked against three holders:

- sockets of the host's network namespace: TCP sockets in LISTEN and bound UDP sockets, read
  from ``/proc/net/{tcp,tcp6,udp,udp6}`` (``parse_sockets`` is pure); the process holding one is
  looked up (``socket_owners``) only to say who it is;
- ports other containers already publish (their ``PortInfo``s, whatever their state: a stopped
  container keeps its port in the project's nft table until it is removed);
- DNAT rules of other nftables tables (``nft -j list ruleset``, ``nat_claims`` is pure): another
  stackd with another data root, or another container engine, publishing the same port.

Two claims overlap when their protocols match, their port ranges meet and their addresses do
(an unset host IP, ``0.0.0.0`` or ``::`` meets every address). Only IPv4 is published (the nft
tables are IPv4), so a claim on an IPv6 host address is never checked. New containers of one
``up`` are checked against each other too (a service scaled to two with a fixed host port).
``conflicts`` and ``stack_conflicts`` are pure; only ``read_sockets`` and ``socket_owners`` read
``/proc``. Nothing here changes the host.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

from stackd.drivers.containers import attach
from stackd.drivers.containers.info import ContainerInfo, PortInfo
from stackd.spec.models import Stack

TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"
_TABLES = (("tcp", "tcp", TCP_LISTEN), ("tcp6", "tcp", TCP_LISTEN), ("udp", "udp", UDP_UNCONNECTED),
           ("udp6", "udp", UDP_UNCONNECTED))
_ANY = ("0.0.0.0", "::")


@dataclass(frozen=True)
class Socket:
    """A listening (TCP) or bound (UDP) socket of the host: protocol, local address and port,
    and its inode (to find the process holding it)."""

    protocol: str
    address: str
    port: int
    inode: int = 0

    def render(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Claim:
    """A port (range) some container publishes: who (``owner``, a phrase for messages) and what."""

    owner: str
    port: PortInfo


def _address(hex_text: str) -> str:
    """An address as ``/proc/net/tcp`` writes it: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_text)
    fixed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    addr = ip_address(fixed)
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def parse_sockets(text: str, protocol: str, state: str) -> list[Socket]:
    """The sockets in ``state`` of one ``/proc/net`` table (``tcp``, ``udp6``, ...). Pure."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != state:
            continue
        address, _, port = fields[1].partition(":")
        try:
            found.append(Socket(protocol, _address(address), int(port, 16),
                                int(fields[9]) if fields[9].isdigit() else 0))
        except ValueError:
            continue
    return found


def read_sockets(proc: Path = Path("/proc")) -> list[Socket]:
    """Every listening TCP and bound UDP socket of this network namespace."""
    found: list[Socket] = []
    for table, protocol, state in _TABLES:
        try:
            text = (proc / "net" / table).read_text()
        except OSError:
            continue  # no IPv6 on this host, for instance
        found.extend(parse_sockets(text, protocol, state))
    return found


def socket_owners(inodes: Iterable[int], proc: Path = Path("/proc")) -> dict[int, str]:
    """``inode → "name, pid N"`` for the processes holding those sockets (those that can be found)."""
    wanted = {f"socket:[{i}]": i for i in inodes if i}
    owners: dict[int, str] = {}
    if not wanted:
        return owners
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(entry / "fd" / fd)
            except OSError:
                continue
            inode = wanted.get(target)
            if inode is not None and inode not in owners:
                try:
                    comm = (entry / "comm").read_text().strip()
                except OSError:
                    comm = "a process"
                owners[inode] = f"{comm}, pid {entry.name}"
        if len(owners) == len(wanted):
            break
    return owners


def _dports(right: Any) -> list[tuple[int, int]]:
    """The port spans of a ``dport`` match's right side: a number, a range or a set of them."""
    if isinstance(right, int):
        return [(right, right)]
    if isinstance(right, dict) and isinstance(right.get("range"), list) and len(right["range"]) == 2:
        low, high = right["range"]
        return [(low, high)] if isinstance(low, int) and isinstance(high, int) else []
    if isinstance(right, dict) and isinstance(right.get("set"), list):
        return [span for item in right["set"] for span in _dports(item)]
    return []


def nat_claims(ruleset: str, skip_tables: Collection[str] = ()) -> list[Claim]:
    """The ports that DNAT rules of ``ruleset`` (``nft -j list ruleset``) forward, outside the
    ``skip_tables`` (names): a rule with a ``dnat`` (or ``redirect``) statement and a match on
    ``tcp``/``udp dport``, with its ``ip daddr`` match as the host address. Pure."""
    try:
        items = json.loads(ruleset).get("nftables", []) if ruleset.strip() else []
    except (ValueError, AttributeError):
        return []
    claims = []
    for item in items if isinstance(items, list) else []:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule, dict) or rule.get("table") in skip_tables:
            continue
        exprs = [e for e in rule.get("expr") or [] if isinstance(e, dict)]
        if not any("dnat" in e or "redirect" in e for e in exprs):
            continue
        spans: list[tuple[str, int, int]] = []
        daddr = None
        for e in exprs:
            match = e.get("match")
            left = match.get("left") if isinstance(match, dict) else None
            payload = left.get("payload") if isinstance(left, dict) else None
            if not isinstance(payload, dict) or not isinstance(match, dict) or match.get("op", "==") != "==":
                continue
            if payload.get("field") == "dport" and payload.get("protocol") in ("tcp", "udp"):
                spans += [(payload["protocol"], a, b) for a, b in _dports(match.get("right"))]
            elif payload.get("protocol") == "ip" and payload.get("field") == "daddr" and \
                    isinstance(match.get("right"), str):
                daddr = match["right"]
        owner = f"an nftables rule of table {rule.get('family', 'ip')} {rule.get('table')}"
        claims += [Claim(owner, PortInfo(0, a, proto, daddr, b if b != a else None)) for proto, a, b in spans]
    return claims


def read_ruleset(nft: str = "nft", timeout: float = 10.0) -> str:
    """``nft -j list ruleset`` (read-only), or "" when it cannot be had (no nft, not root)."""
    try:
        done = subprocess.run([nft, "-j", "list", "ruleset"], capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


# ---------------------------------------------------------------------------------- the rules


def _v4(host_ip: str | None) -> bool:
    """Whether a published port on ``host_ip`` is published at all (IPv4 only)."""
    return not host_ip or isinstance(ip_address(host_ip), IPv4Address)


def _addresses_meet(a: str | None, b: str | None) -> bool:
    return not a or not b or a in _ANY or b in _ANY or ip_address(a) == ip_address(b)


def _span(p: PortInfo) -> range:
    return range(p.published, (p.published_end or p.published) + 1)


def _ports_meet(a: PortInfo, b: PortInfo) -> bool:
    if a.protocol != b.protocol or not (_v4(a.host_ip) and _v4(b.host_ip)):
        return False
    sa, sb = _span(a), _span(b)
    return sa.start < sb.stop and sb.start < sa.stop and _addresses_meet(a.host_ip, b.host_ip)


def _socket_meets(p: PortInfo, s: Socket) -> bool:
    if s.protocol != p.protocol or s.port not in _span(p) or not _v4(p.host_ip):
        return False
    if s.address in _ANY:
        return True
    if not isinstance(ip_address(s.address), IPv4Address):
        return False  # a specific IPv6 address: the IPv4-only table does not touch it
    return _addresses_meet(p.host_ip, s.address)


def port_text(p: PortInfo, at: int | None = None) -> str:
    """``8080``, ``8080/udp``, ``127.0.0.1:8080``: how a message names a published port."""
    number = str(at if at is not None else p.published)
    if at is None and p.published_end:
        number += f"-{p.published_end}"
    if p.host_ip and p.host_ip not in _ANY:
        number = f"{p.host_ip}:{number}"
    return number if p.protocol == "tcp" else f"{number}/{p.protocol}"


HINT = "stop what holds it, or publish the service on another host port"


def conflicts(service: str, wanted: Sequence[PortInfo], sockets: Sequence[Socket],
              claims: Sequence[Claim], owners: Mapping[int, str] | None = None) -> list[str]:
    """One line per port of ``wanted`` that a socket or a claim holds (the first holder found),
    naming ``service``, the port and the holder. Pure."""
    problems = []
    for p in wanted:
        holder = None
        for s in sockets:
            if _socket_meets(p, s):
                who = (owners or {}).get(s.inode)
                holder = f"{who + ' ' if who else 'a process '}listens on {s.render()}"
                at = s.port
                break
        else:
            for c in claims:
                if _ports_meet(p, c.port):
                    holder = f"{c.owner} publishes {port_text(c.port)}"
                    at = max(p.published, c.port.published)
                    break
        if holder is not None:
            problems.append(f"service {service}: host port {port_text(p, at)} is already in use "
                            f"({holder}); {HINT}")
    return problems


def published_by(stack: Stack, service: str) -> tuple[PortInfo, ...]:
    """The host ports a container of ``service`` publishes (none outside the stack's networks)."""
    svc = stack.services[service]
    return attach.port_infos(svc) if attach.network_mode(stack, svc).kind == "networks" else ()


def claims_of(infos: Iterable[ContainerInfo], project: str) -> list[Claim]:
    """What the containers of ``infos`` publish, each owner named as seen from ``project``."""
    def owner(info: ContainerInfo) -> str:
        return f"container {info.name}" + ("" if info.project == project else f" of stack {info.project}")

    return [Claim(owner(info), p) for info in infos if info.network_mode == "networks" for p in info.ports]


def stack_conflicts(stack: Stack, containers: Sequence[tuple[str, str]], *, claims: Sequence[Claim],
                    sockets: Sequence[Socket], owners: Mapping[int, str] | None = None) -> list[str]:
    """The conflicts of the new ``containers`` (``(service, name)``) of ``stack`` with the
    host's sockets, the ``claims`` of containers that stay, and each other. Pure."""
    held = list(claims)
    problems: list[str] = []
    for service, name in containers:
        wanted = published_by(stack, service)
        problems.extend(conflicts(service, wanted, sockets, held, owners))
        held.extend(Claim(f"another new container, {name},", p) for p in wanted)
    return problems


def relevant_sockets(stack: Stack, containers: Sequence[tuple[str, str]],
                     sockets: Sequence[Socket]) -> list[Socket]:
    """The sockets on a port one of the new containers wants (whose owners are worth naming)."""
    spans = [_span(p) for service, _ in containers for p in published_by(stack, service)]
    return [s for s in sockets if any(s.port in span for span in spans)]
