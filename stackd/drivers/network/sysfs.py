"""The state of named links in the caller's network namespace, read cheaply: sysfs for each
name (exists, index, up, master, bridge or veth) and one netlink dump of IPv4 addresses, instead
of a dump of every link on the host with all its attributes (which grows with everything else on
the host). What the reconciler's frequent looks use; no process, no namespace switch.
``ipv4_addresses`` reads the dump off a plain netlink socket.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import struct
from collections.abc import Iterable
from ipaddress import IPv4Interface
from pathlib import Path

from stackd.drivers.network.errors import classify
from stackd.drivers.network.links import LinkState

SYS_NET = Path("/sys/class/net")
_IFF_UP = 0x1


def observe_links(names: Iterable[str]) -> dict[str, LinkState]:
    """The links among ``names`` that exist in this network namespace, with their state and
    IPv4 addresses (from sysfs, and one netlink dump of addresses; no process, no namespace)."""
    found: dict[str, LinkState] = {}
    for name in names:
        state = _sysfs_link(name)
        if state is not None:
            found[name] = state
    if not found:
        return found
    try:
        addresses = ipv4_addresses()
    except OSError as exc:
        raise classify(exc.errno or 0, f"list addresses: {exc.strerror or exc}") from exc
    return {name: dataclasses.replace(s, addresses=tuple(sorted(addresses.get(s.index, []))))
            for name, s in found.items()}


_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFADDR = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTA = struct.Struct("=HH")  # len, type
NLMSG_ERROR, NLMSG_DONE, RTM_NEWADDR, RTM_GETADDR = 2, 3, 20, 22
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFA_ADDRESS = 1


def ipv4_addresses() -> dict[int, list[IPv4Interface]]:
    """Every IPv4 address of this network namespace, by link index: one ``RTM_GETADDR`` dump on
    a plain netlink socket, its few fields read here (pyroute2's parser costs more than the rest
    of a reconciler's look at its links)."""
    out: dict[int, list[IPv4Interface]] = {}
    sock_type = socket.SOCK_RAW | socket.SOCK_CLOEXEC
    with socket.socket(socket.AF_NETLINK, sock_type, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        sock.send(_NLMSG.pack(_NLMSG.size + _IFADDR.size, RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
                  + _IFADDR.pack(socket.AF_INET, 0, 0, 0, 0))
        while True:
            data = sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, kind = _NLMSG.unpack_from(data, offset)[:2]
                if length < _NLMSG.size:
                    raise OSError(errno.EPROTO, "bad netlink message")
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, offset + _NLMSG.size)[0]
                    raise OSError(code, os.strerror(code))
                if kind == RTM_NEWADDR:
                    family, prefix, _, _, index = _IFADDR.unpack_from(data, offset + _NLMSG.size)
                    attr = offset + _NLMSG.size + _IFADDR.size
                    while family == socket.AF_INET and attr + _RTA.size <= offset + length:
                        attr_len, attr_type = _RTA.unpack_from(data, attr)
                        if attr_len < _RTA.size:
                            break
                        if attr_type == IFA_ADDRESS and attr_len >= _RTA.size + 4:
                            raw = data[attr + _RTA.size:attr + _RTA.size + 4]
                            out.setdefault(index, []).append(IPv4Interface((raw, prefix)))
                            break
                        attr += (attr_len + 3) & ~3
                offset += (length + 3) & ~3


def _sysfs_link(name: str) -> LinkState | None:
    """Link ``name`` as sysfs shows it (no addresses), ``None`` when there is none. A bridge has
    a ``bridge`` directory; a veth is told by its peer (``iflink`` is not its own index)."""
    folder = SYS_NET / name
    try:
        index = int((folder / "ifindex").read_text())
        iflink = int((folder / "iflink").read_text())
        flags = int((folder / "flags").read_text(), 16)
        is_bridge = (folder / "bridge").is_dir()
        try:
            master: str | None = os.path.basename(os.readlink(folder / "master"))
        except FileNotFoundError:
            master = None
    except (OSError, ValueError):
        return None  # gone (or going) meanwhile
    kind = "bridge" if is_bridge else "veth" if iflink != index else None
    return LinkState(name=name, index=index, kind=kind, up=bool(flags & _IFF_UP), master=master,
                     addresses=(), peer_index=iflink if kind == "veth" else None)
