"""The state of named links in the caller's network namespace, read cheaply: sysfs for each
name (exists, index, up, master, bridge or veth) and one netlink dump of IPv4 addresses, instead
of a dump of every link on the host with all its attributes (which grows with everything else on
the host). What the reconciler's frequent looks use; no process, no namespace switch.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterable
from ipaddress import IPv4Interface
from pathlib import Path

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

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
        with IPRoute() as ipr:
            dump = list(ipr.get_addr(family=socket.AF_INET))
    except NetlinkError as exc:
        raise classify(exc.code, f"list addresses: {exc}") from exc
    except OSError as exc:
        raise classify(exc.errno, f"list addresses: {exc}") from exc
    addresses: dict[int, list[IPv4Interface]] = {}
    for a in dump:
        address = IPv4Interface(f"{a.get('address')}/{a.get('prefixlen')}")
        addresses.setdefault(int(a["index"]), []).append(address)
    return {name: dataclasses.replace(s, addresses=tuple(sorted(addresses.get(s.index, []))))
            for name, s in found.items()}


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
