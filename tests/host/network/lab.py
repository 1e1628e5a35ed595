"""A small network lab for the host tests: stack networks and containers built with the network
driver under the test prefix ``stkt``, TCP servers and clients inside namespaces, and a snapshot
of the host's links, namespaces and nft tables to prove that cleanup restored the baseline.

Outside CI a missing root, tool or pyroute2 skips a test; in CI (``CI`` set) it fails it, because
CI runs as root with everything installed and a skipped host test there would hide a broken setup.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from stackd.drivers.network import links, nftables
from stackd.drivers.network.ipam import LeaseRequest, Subnet, SubnetRequest, allocate_subnets, assign_leases
from stackd.drivers.network.names import NETNS_DIR, Naming
from stackd.drivers.network.nft import Bridge, NatTable, Publish

TEST = Naming("stkt", "stkt")
POOL = IPv4Network("10.213.0.0/16")
PROJECT = "nettest"

SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    with c:
        c.sendall(f"{sys.argv[2]} {peer[0]}".encode())
"""

CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as c:
        print(c.recv(200).decode())
except OSError as exc:
    print(f"ERROR {exc}")
    sys.exit(1)
"""


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_host() -> None:
    """Root, ``ip`` (iproute2), ``nft`` (nftables) and pyroute2, or skip (fail in CI)."""
    if os.geteuid() != 0:
        _unavailable("the network host tests need root")
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            _unavailable(f"{tool} is not installed (Debian package {package})")
    try:
        import pyroute2  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        _unavailable("pyroute2 is not installed (pip install pyroute2)")


def run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"
    return result.stdout


# ------------------------------------------------------------------------------------ baseline


@dataclass(frozen=True)
class Snapshot:
    links: frozenset[str]
    netns: frozenset[str]
    tables: frozenset[str]

    @classmethod
    def take(cls) -> Snapshot:
        links = frozenset(link["ifname"] for link in json.loads(run("ip", "-j", "link", "show")))
        try:
            netns = frozenset(os.listdir(NETNS_DIR))
        except FileNotFoundError:
            netns = frozenset()
        tables = frozenset(line.strip() for line in run("nft", "list", "tables").splitlines() if line.strip())
        return cls(links, netns, tables)

    def ours(self) -> list[str]:
        """Everything under the test prefix."""
        names = [*self.links, *self.netns, *(t.split()[-1] for t in self.tables)]
        return sorted(n for n in names if n.startswith(TEST.prefix))


def host_address() -> IPv4Address:
    """A global IPv4 address of this host that is not the test's own (eth0's, on a fresh machine)."""
    for link in json.loads(run("ip", "-j", "-4", "addr", "show", "scope", "global")):
        if link["ifname"].startswith(TEST.prefix):
            continue
        for info in link.get("addr_info", []):
            if info.get("family") == "inet":
                return IPv4Address(info["local"])
    pytest.fail("this host has no global IPv4 address to publish on")


# --------------------------------------------------------------------------------- processes


@dataclass
class Processes:
    """Servers started inside namespaces; all are killed at the end of a test."""

    running: list[subprocess.Popen[str]] = field(default_factory=list)

    def serve(self, netns: str, port: int, token: str) -> None:
        """A TCP server in ``netns`` on ``port`` that answers ``<token> <peer address>``."""
        argv = ["ip", "netns", "exec", netns, sys.executable, "-c", SERVER, str(port), token]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.running.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        error = "" if line == "ready" or proc.stderr is None else proc.stderr.read()
        assert line == "ready", f"server in {netns} did not start: {error}"

    def stop(self) -> None:
        for proc in self.running:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.communicate(timeout=10)
        self.running.clear()


def fetch_in(netns: str, address: IPv4Address | str, port: int) -> str:
    """What the server at ``address:port`` answers a client inside ``netns`` (``ERROR ...`` if none)."""
    argv = ["ip", "netns", "exec", netns, sys.executable, "-c", CLIENT, str(address), str(port)]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    return result.stdout.strip() or f"ERROR {result.stderr.strip()}"


def fetch(address: IPv4Address | str, port: int) -> str:
    """What the server at ``address:port`` answers a client on the host (``ERROR ...`` if none)."""
    try:
        with socket.create_connection((str(address), port), timeout=3) as conn:
            return conn.recv(200).decode()
    except OSError as exc:
        return f"ERROR {exc}"


# ---------------------------------------------------------------------------------- topology


@dataclass(frozen=True)
class Net:
    name: str
    bridge: str
    subnet: IPv4Network
    gateway: IPv4Interface
    internal: bool


@dataclass(frozen=True)
class Box:
    """A "container": a network namespace attached to one network."""

    name: str
    netns: str
    address: IPv4Address


@dataclass(frozen=True)
class Outside:
    """A namespace standing for the world beyond the host, on a plain veth (no bridge, no NAT)."""

    netns: str
    host_side: str
    host_address: IPv4Address
    address: IPv4Address


def make_outside(subnet: IPv4Network) -> Outside:
    hosts = list(subnet.hosts())
    outside = Outside(TEST.netns("outside"), TEST.veth("outside", "uplink"), hosts[0], hosts[1])
    plen = subnet.prefixlen
    run("ip", "netns", "add", outside.netns)
    run("ip", "link", "add", outside.host_side, "type", "veth", "peer", "name", "eth0",
        "netns", outside.netns)
    run("ip", "addr", "add", f"{outside.host_address}/{plen}", "dev", outside.host_side)
    run("ip", "link", "set", outside.host_side, "up")
    run("ip", "-n", outside.netns, "addr", "add", f"{outside.address}/{plen}", "dev", "eth0")
    run("ip", "-n", outside.netns, "link", "set", "eth0", "up")
    run("ip", "-n", outside.netns, "link", "set", "lo", "up")
    return outside


class Lab:
    """Stack networks and containers made through the driver, as an executor would make them."""

    def __init__(self) -> None:
        self.subnets: dict[str, Subnet] = {}
        self.leases: dict[str, dict[str, str]] = {}
        self.processes = Processes()

    def network(self, name: str, *, internal: bool = False) -> Net:
        self.subnets = allocate_subnets([SubnetRequest(name)], existing=self.subnets,
                                        host=links.host_subnets(TEST), pool=POOL)
        sub = self.subnets[name]
        bridge = TEST.bridge(PROJECT, name)
        links.ensure_bridge(bridge, sub.interface)
        return Net(name, bridge, sub.subnet, sub.interface, internal)

    def container(self, name: str, net: Net, *, gateway: bool = True) -> Box:
        return self.attach(name, net, self.lease(name, net), gateway=gateway)

    def lease(self, name: str, net: Net) -> IPv4Address:
        """An address for ``name`` on ``net`` (not thread-safe: the lease table is shared)."""
        sub = self.subnets[net.name]
        self.leases[net.name] = assign_leases(sub, self.leases.get(net.name, {}), [LeaseRequest(name)])
        return IPv4Address(self.leases[net.name][name])

    def attach(self, name: str, net: Net, address: IPv4Address, *, gateway: bool = True) -> Box:
        """The namespace of ``name`` joined to ``net`` with ``address`` (thread-safe)."""
        sub = self.subnets[net.name]
        netns = TEST.netns(name)
        links.ensure_netns(netns)
        links.ensure_endpoint(links.Endpoint(netns, TEST.veth(name, net.name), net.bridge,
                                             sub.interface_of(address), sub.gateway if gateway else None))
        return Box(name, netns, address)

    def free_subnet(self) -> IPv4Network:
        """A subnet nobody uses, for scaffolding that is not a stack network."""
        self.subnets = allocate_subnets([SubnetRequest("scaffold")], existing=self.subnets,
                                        host=links.host_subnets(TEST), pool=POOL)
        return self.subnets["scaffold"].subnet

    @staticmethod
    def table(nets: Sequence[Net], ports: Sequence[Publish] = ()) -> NatTable:
        return NatTable(TEST.table(PROJECT), tuple(Bridge(n.bridge, n.subnet, n.internal) for n in nets),
                        tuple(ports))

    def cleanup(self, before: Snapshot) -> list[str]:
        """Remove everything under the test prefix, continuing past failures; what failed."""
        problems: list[str] = []

        def attempt(what: str, action: Callable[..., object], *args: str) -> None:
            try:
                action(*args)
            except Exception as exc:
                problems.append(f"{what}: {exc}")

        attempt("stop servers", self.processes.stop)
        for ns in links.list_netns(TEST):
            attempt(f"remove netns {ns}", links.remove_netns, ns)
        for link in links.list_links(TEST):
            attempt(f"remove link {link.name}", links.remove_link, link.name)
        for table in nftables.list_tables(TEST):
            attempt(f"delete table {table}", nftables.delete_table, table)
        # whatever the driver did not see (a bug there must not leave the host dirty)
        left = Snapshot.take()
        for name in sorted(left.netns - before.netns):
            if name.startswith(TEST.prefix):
                attempt(f"ip netns del {name}", run, "ip", "netns", "del", name)
        for name in sorted(left.links - before.links):
            if name.startswith(TEST.prefix):
                attempt(f"ip link del {name}", run, "ip", "link", "del", name)
        for table in sorted(left.tables - before.tables):
            if table.split()[-1].startswith(TEST.prefix):
                attempt(f"nft delete {table}", run, "nft", "delete", *table.split())
        return problems
