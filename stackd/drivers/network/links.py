"""Kernel network objects through netlink (pyroute2): bridges, network namespaces, veth pairs,
addresses, default routes, and the sysctls publishing needs; plus read-only observation of them.

Every ``ensure_*`` is idempotent and converges: it creates what is missing, fixes what differs
(addresses, master, state, a veth whose peer is gone) and leaves the rest alone, so the reconciler
may call it on every pass. Every ``remove_*`` succeeds when the object is already gone. Teardown of
a container is ``remove_netns``: deleting the namespace deletes the veth peer inside it and so the
pair, far faster than deleting the veth. The kernel does that asynchronously, so ``remove_netns``
waits (briefly) until the host sides are gone and reports any that stay, which happens when a
process still holds the namespace: the pair then lives until that process exits.

Sysctls: ``ensure_bridge`` sets ``net.ipv4.conf.<bridge>.route_localnet=1`` (needed, with the
masquerade rule of ``nft``, for publishing on 127.0.0.1). ``enable_ip_forward`` sets
``net.ipv4.ip_forward=1`` and returns the value it found; whether and when to put that value back
is the caller's decision (other software on the host may rely on forwarding too).

Namespaces are made, removed and entered through ``namespaces``, without forking: work inside a
container's namespace goes through an rtnetlink socket opened there by a short-lived thread and
used from the calling thread (pyroute2's ``IPRoute(netns=...)`` would fork a process per socket).

Netlink and OS failures become ``TransientDriverError``/``PermanentDriverError`` here, raised from
the original exception. The functions block (pyroute2 is synchronous here): call them through
``anyio.to_thread`` (called on an event loop's thread they raise ``RuntimeError``); they are safe
to run in parallel threads. No decisions about desired state are made in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from stackd.drivers.network import namespaces
from stackd.drivers.network.errors import classify
from stackd.drivers.network.names import NETNS_DIR, Naming
from stackd.errors import PermanentDriverError

PROC_SYS = Path("/proc/sys")
_IFF_UP = 0x1


@dataclass(frozen=True)
class LinkState:
    """What one link looks like now."""

    name: str
    index: int
    kind: str | None
    up: bool
    master: str | None
    addresses: tuple[IPv4Interface, ...]
    peer_index: int | None = None


@dataclass(frozen=True)
class Endpoint:
    """A container's attachment to a bridge: a veth pair with ``ifname`` inside ``netns``."""

    netns: str
    host_ifname: str
    bridge: str
    address: IPv4Interface
    gateway: IPv4Address | None = None
    ifname: str = "eth0"
    mtu: int | None = None


@contextlib.contextmanager
def _netlink(action: str, netns: str | None = None, *, sock: socket.socket | None = None
             ) -> Iterator[Any]:
    """An rtnetlink socket (in ``netns`` if given, or ``sock``, already open there, which is then
    closed here); foreign errors become driver errors."""
    try:
        if _in_event_loop():
            raise RuntimeError("stackd.drivers.network.links blocks: call it through anyio.to_thread")
        if netns is not None and sock is None:
            if not netns_exists(netns):
                raise PermanentDriverError(f"{action}: network namespace {netns} does not exist")
            sock = namespaces.netlink_socket(NETNS_DIR / netns)
        if sock is None:
            with IPRoute() as ipr:
                yield ipr
        else:
            with _over(sock) as ipr:
                yield ipr
    except NetlinkError as exc:
        raise classify(exc.code, f"{action}: {exc}") from exc
    except OSError as exc:
        raise classify(exc.errno, f"{action}: {exc}") from exc
    finally:
        if sock is not None:
            sock.close()


@contextlib.contextmanager
def _over(sock: socket.socket) -> Iterator[Any]:
    """pyroute2's RTNL API over ``sock`` (an rtnetlink socket, possibly of another namespace)."""
    ipr = IPRoute(use_socket=sock)
    try:
        yield ipr
    finally:
        ipr.close()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _lookup(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def _kind(msg: Any) -> str | None:
    kind = msg.get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
    return str(kind) if kind else None


def _v4_addresses(ipr: Any, index: int) -> list[IPv4Interface]:
    return sorted(IPv4Interface(f"{a.get('address')}/{a.get('prefixlen')}")
                  for a in ipr.get_addr(family=socket.AF_INET, index=index))


def _set_addresses(ipr: Any, index: int, wanted: IPv4Interface) -> None:
    """Make ``wanted`` the only IPv4 address of link ``index``."""
    current = _v4_addresses(ipr, index)
    for addr in current:
        if addr != wanted:
            ipr.addr("del", index=index, address=str(addr.ip), prefixlen=addr.network.prefixlen)
    if wanted not in current:
        ipr.addr("add", index=index, address=str(wanted.ip), prefixlen=wanted.network.prefixlen)


def _states(ipr: Any) -> list[LinkState]:
    links = list(ipr.get_links())
    names = {int(m["index"]): str(m.get("ifname")) for m in links}
    addrs: dict[int, list[IPv4Interface]] = {}
    for a in ipr.get_addr(family=socket.AF_INET):
        addr = IPv4Interface(f"{a.get('address')}/{a.get('prefixlen')}")
        addrs.setdefault(int(a["index"]), []).append(addr)
    out = []
    for m in links:
        index = int(m["index"])
        master = m.get("master")
        peer = m.get("link")
        out.append(LinkState(name=str(m.get("ifname")), index=index, kind=_kind(m),
                             up=bool(int(m.get("flags") or 0) & _IFF_UP),
                             master=names.get(int(master)) if master else None,
                             addresses=tuple(sorted(addrs.get(index, []))),
                             peer_index=int(peer) if peer and _kind(m) == "veth" else None))
    return sorted(out, key=lambda s: s.name)


# ------------------------------------------------------------------------------------ sysctls


@functools.lru_cache(maxsize=256)
def _sysctl_path(key: str) -> Path:
    parts = key.split(".")
    if any(p in {"", ".", ".."} or "/" in p for p in parts):
        raise ValueError(f"not a sysctl key: {key!r}")
    return PROC_SYS.joinpath(*parts)


def read_sysctl(key: str) -> str:
    """The value of sysctl ``key`` (dotted, e.g. ``net.ipv4.ip_forward``), stripped."""
    try:  # plain os calls: the reconciler reads some on every pass
        fd = os.open(_sysctl_path(key), os.O_RDONLY | os.O_CLOEXEC)
        try:
            return os.read(fd, 4096).decode().strip()
        finally:
            os.close(fd)
    except OSError as exc:
        raise classify(exc.errno, f"read sysctl {key}: {exc}") from exc


def write_sysctl(key: str, value: str) -> None:
    try:
        _sysctl_path(key).write_text(f"{value}\n")
    except OSError as exc:
        raise classify(exc.errno, f"set sysctl {key}={value}: {exc}") from exc


def enable_ip_forward() -> str:
    """Turn on IPv4 forwarding; return the value found before (the caller decides about restoring)."""
    before = read_sysctl("net.ipv4.ip_forward")
    if before != "1":
        write_sysctl("net.ipv4.ip_forward", "1")
    return before


# ------------------------------------------------------------------------------------ bridges


def ensure_bridge(name: str, address: IPv4Interface, *, mtu: int | None = None) -> None:
    """A bridge ``name`` that is up, has ``address`` as its only IPv4 address and route_localnet on."""
    with _netlink(f"ensure bridge {name}") as ipr:
        index = _lookup(ipr, name)
        if index is None:
            try:
                ipr.link("add", ifname=name, kind="bridge")
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:  # else created meanwhile: checked just below
                    raise
            index = _lookup(ipr, name)
            if index is None:
                raise PermanentDriverError(f"ensure bridge {name}: the bridge did not appear")
        kind = _kind(ipr.get_links(index)[0])
        if kind != "bridge":
            raise PermanentDriverError(f"ensure bridge {name}: a link of that name exists but is a "
                                       f"{kind or 'device'}, not a bridge")
        _set_addresses(ipr, index, address)
        ipr.link("set", index=index, state="up", **({"mtu": mtu} if mtu else {}))
    write_sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")


def remove_link(name: str) -> None:
    """Delete link ``name`` (a bridge, or a veth with its peer) if it exists."""
    with _netlink(f"remove link {name}") as ipr:
        index = _lookup(ipr, name)
        if index is not None:
            try:
                ipr.link("del", index=index)
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:  # gone meanwhile
                    raise


remove_bridge = remove_link
remove_endpoint = remove_link


# ---------------------------------------------------------------------------------- namespaces


def netns_exists(name: str) -> bool:
    """Whether ``/run/netns/<name>`` is a network namespace (not merely a leftover file)."""
    try:
        return os.stat(NETNS_DIR / name).st_dev == os.stat("/proc/self/ns/net").st_dev
    except FileNotFoundError:
        return False


def ensure_netns(name: str) -> None:
    """A network namespace ``name`` (with ``lo`` up), made if missing."""
    path = Path(NETNS_DIR / name)
    sock = None
    try:
        if _in_event_loop():
            raise RuntimeError("stackd.drivers.network.links blocks: call it through anyio.to_thread")
        if not netns_exists(name):
            if os.path.lexists(path):  # a leftover file, e.g. from an interrupted create
                path.unlink()
            try:
                sock = namespaces.create(path)
            except FileExistsError:
                if not netns_exists(name):  # else made meanwhile by a parallel call: fine
                    raise
    except OSError as exc:
        raise classify(exc.errno, f"create network namespace {name}: {exc}") from exc
    with _netlink(f"bring up lo in {name}", name, sock=sock) as ns:
        ns.link("set", index=_lookup(ns, "lo"), state="up")


def remove_netns(name: str, *, wait: float = 5.0) -> tuple[str, ...]:
    """Delete network namespace ``name``, if present, and so the veth pairs with a peer in it.

    The kernel tears a namespace down asynchronously; this waits up to ``wait`` seconds for the
    host sides of those pairs to disappear and returns the names of any still there (because a
    process still holds the namespace), so that callers observe a finished teardown.
    """
    path = Path(NETNS_DIR / name)
    exists = netns_exists(name)
    peers = _host_peers(name) if exists and wait > 0 else {}
    try:
        if exists or os.path.lexists(path):
            namespaces.remove(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise classify(exc.errno, f"remove network namespace {name}: {exc}") from exc
    return _wait_gone(peers, wait) if peers else ()


def _host_peers(name: str) -> dict[int, str]:
    """Host-side index → name of the veths whose peers are in namespace ``name``."""
    indices = sorted({s.peer_index for s in netns_links(name) if s.peer_index})
    found: dict[int, str] = {}
    with _netlink(f"list links peering into {name}") as ipr:
        for index in indices:  # asked one by one: a dump of every link on the host costs far more
            try:
                msg = ipr.get_links(index)[0]
            except NetlinkError as exc:
                if exc.code == errno.ENODEV:  # gone meanwhile
                    continue
                raise
            if _kind(msg) == "veth":
                found[index] = str(msg.get("ifname"))
    return found


def _wait_gone(links: dict[int, str], wait: float) -> tuple[str, ...]:
    deadline = time.monotonic() + wait
    with _netlink("wait for veth removal") as ipr:
        while True:
            left = {i: n for i, n in links.items() if _lookup(ipr, n) == i}
            if not left or time.monotonic() >= deadline:
                return tuple(sorted(left.values()))
            time.sleep(0.005)


def list_netns(naming: Naming) -> tuple[str, ...]:
    """The network namespaces of ``naming``'s owner, sorted."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return ()
    return tuple(sorted(n for n in names if naming.is_netns(n)))


# ----------------------------------------------------------------------------------- endpoints


def ensure_endpoint(ep: Endpoint) -> None:
    """The veth pair of ``ep``: host side in the bridge and up, the peer ``ep.ifname`` in the
    namespace with ``ep.address``, up, and a default route via ``ep.gateway`` when one is given."""
    action = f"connect {ep.netns} to {ep.bridge}"
    with _netlink(action) as ipr, _netlink(action, ep.netns) as ns:
        bridge = _lookup(ipr, ep.bridge)
        if bridge is None:
            raise PermanentDriverError(f"{action}: bridge {ep.bridge} does not exist")
        host = _lookup(ipr, ep.host_ifname)
        peer = _lookup(ns, ep.ifname)
        if host is not None:
            link = ipr.get_links(host)[0]
            if _kind(link) != "veth" or peer is None or link.get("link") != peer:
                ipr.link("del", index=host)  # not a pair with our peer: start over
                host = None
        if host is None:
            if peer is not None:
                ns.link("del", index=peer)
            ipr.link("add", ifname=ep.host_ifname, kind="veth",
                     peer={"ifname": ep.ifname, "net_ns_fd": str(NETNS_DIR / ep.netns)})
            host, peer = _lookup(ipr, ep.host_ifname), _lookup(ns, ep.ifname)
        if host is None or peer is None:
            raise PermanentDriverError(f"{action}: the veth pair {ep.host_ifname} did not appear")
        mtu = {"mtu": ep.mtu} if ep.mtu else {}
        ipr.link("set", index=host, master=bridge, state="up", **mtu)
        _set_addresses(ns, peer, ep.address)
        ns.link("set", index=peer, state="up", **mtu)
        ns.link("set", index=_lookup(ns, "lo"), state="up")
        if ep.gateway is not None:
            ns.route("replace", dst="0.0.0.0/0", gateway=str(ep.gateway), oif=peer)


# ------------------------------------------------------------------------------------- observe


def list_links(naming: Naming) -> tuple[LinkState, ...]:
    """The bridges and veths of ``naming``'s owner on the host, with their IPv4 addresses."""
    with _netlink("list links") as ipr:
        return tuple(s for s in _states(ipr) if naming.is_link(s.name))


def netns_links(name: str) -> tuple[LinkState, ...]:
    """Every link inside network namespace ``name`` (empty when the namespace does not exist)."""
    if not netns_exists(name):
        return ()
    with _netlink(f"list links in {name}", name) as ns:
        return tuple(_states(ns))


def default_gateway(name: str) -> IPv4Address | None:
    """The IPv4 default gateway inside network namespace ``name``, if it has one."""
    if not netns_exists(name):
        return None
    with _netlink(f"read routes in {name}", name) as ns:
        for r in ns.get_routes(family=socket.AF_INET):
            if not r.get("dst_len") and r.get("gateway"):
                return IPv4Address(r.get("gateway"))
    return None


def host_subnets(naming: Naming) -> frozenset[IPv4Network]:
    """Subnets in use on the host by anything but ``naming``'s owner: the networks of addresses
    and the destinations of routes (main table) of every other link; what the IPAM must avoid."""
    with _netlink("list host subnets") as ipr:
        states = _states(ipr)
        ours = {s.index for s in states if naming.is_link(s.name)}
        nets = {a.network for s in states if s.index not in ours for a in s.addresses}
        for r in ipr.get_routes(family=socket.AF_INET, table=254):
            oif, dst, length = r.get("oif"), r.get("dst"), int(r.get("dst_len") or 0)
            if dst and length and oif not in ours:
                nets.add(IPv4Network(f"{dst}/{length}", strict=False))
    return frozenset(nets)
