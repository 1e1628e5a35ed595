"""What the host objects of a running stack should look like, compared with what was found: the
pure half of drift repair (``stackd.drivers.containers.drift`` does the reading and writing).

- Links: a bridge of a stack network must exist as a bridge, be up, hold its gateway address
  and only that, with ``route_localnet`` on (``bridge_problems``); the host side of a running
  container's veth must exist as a veth, be up and enslaved to its network's bridge
  (``veth_problems``); inside the container's namespace (looked at only in a deep check) each
  ``eth<i>`` must be up with its leased address, and the default route go through the
  gateway of its network (``inside_problems``).
- A container's own cgroup limits: the control files its OCI config's ``linux.resources``
  became (``container_files``, for cgroup v1 and v2 as runc and crun write them, unset limits
  as the kernel's defaults), compared in the form the kernel keeps them in (``file_drifted``)
  and written back in an order the kernel accepts (``write_order``: on v1 the memory limit may
  never exceed memory plus swap).

No I/O, no decisions about which objects should exist: the callers pass what was recorded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

from stackd.drivers.cgroups.limits import DEFAULT_PERIOD, DEFAULT_SHARES, UNLIMITED_BYTES, Version
from stackd.drivers.network.links import LinkState


@dataclass(frozen=True)
class WantedFile:
    """One control file of a container's cgroup: its controller, name and the value to write;
    ``accepted`` are other contents that mean the same for this file (a v2 CPU weight that
    runtimes derive from shares by one of two formulas)."""

    controller: str
    name: str
    value: str
    accepted: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------ links


def bridge_problems(bridge: str, address: IPv4Interface, found: LinkState | None,
                    route_localnet: str | None) -> list[str]:
    """What is wrong with the bridge ``bridge`` that should hold ``address`` (empty: nothing)."""
    if found is None:
        return ["bridge missing"]
    if found.kind != "bridge":
        return [f"{bridge} is a {found.kind or 'device'}, not a bridge"]
    out = []
    if not found.up:
        out.append("bridge down")
    if address not in found.addresses:
        out.append(f"gateway address {address} missing")
    extra = [str(a) for a in found.addresses if a != address]
    if extra:
        out.append(f"unexpected address(es) {', '.join(extra)}")
    if route_localnet is not None and route_localnet != "1":
        out.append("route_localnet off")
    return out


def veth_problems(veth: str, bridge: str, found: LinkState | None) -> list[str]:
    """What is wrong with the host side ``veth`` of a container's pair on ``bridge``."""
    if found is None:
        return [f"veth {veth} missing"]
    if found.kind != "veth":
        return [f"{veth} is a {found.kind or 'device'}, not a veth"]
    out = []
    if found.master is None:
        out.append(f"veth {veth} detached from bridge {bridge}")
    elif found.master != bridge:
        out.append(f"veth {veth} enslaved to {found.master}, not {bridge}")
    if not found.up:
        out.append(f"veth {veth} down")
    return out


def inside_problems(wanted: Sequence[tuple[str, IPv4Interface]], gateway: IPv4Address | None,
                    found: Sequence[LinkState], found_gateway: IPv4Address | None) -> list[str]:
    """What is wrong inside a container's namespace: ``wanted`` are (ifname, address) pairs,
    ``gateway`` the default route's next hop (``None``: no default route is wanted)."""
    by_name = {s.name: s for s in found}
    out = []
    for ifname, address in wanted:
        link = by_name.get(ifname)
        if link is None:
            out.append(f"{ifname} missing in the container")
            continue
        if not link.up:
            out.append(f"{ifname} down in the container")
        if address not in link.addresses:
            out.append(f"{ifname} lost its address {address}")
    if gateway is not None and found_gateway != gateway:
        out.append(f"default route via {found_gateway} instead of {gateway}" if found_gateway
                   else f"default route via {gateway} missing")
    return out


# --------------------------------------------------------------------------- container cgroups


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def linear_weight(shares: int) -> int:
    """The v2 weight runc and crun long derived from v1 shares."""
    shares = min(max(shares, 2), 262_144)
    return 1 + (shares - 2) * 9999 // 262_142


def curved_weight(shares: int) -> tuple[int, ...]:
    """The v2 weight newer runc and crun derive from shares (1024 -> 100), rounded both ways."""
    if shares <= 2:
        return (1,)
    if shares >= 262_144:
        return (10_000,)
    exp = math.log2(shares)
    value = 10 ** ((exp * exp + 125 * exp) / 612.0 - 7.0 / 34.0)
    return tuple(sorted({min(10_000, math.ceil(value)), min(10_000, round(value))}))


def _limit(value: int | None) -> str:
    return "-1" if value is None or value < 0 else str(value)


def container_files(resources: Mapping[str, Any], version: Version,
                    controller: str) -> tuple[WantedFile, ...]:
    """The files of ``controller`` (cpu, cpuset, memory, pids) in a container cgroup of a
    ``version`` hierarchy holding ``resources`` (an OCI ``linux.resources``). Memory limit, CPU
    shares/weight, CPU quota and period, and pids are always checked (unset ones as the kernel's
    default); swap, reservation, swappiness and cpusets only when they are set (an unset one is
    inherited or left to the kernel)."""
    memory = resources.get("memory") or {}
    cpu = resources.get("cpu") or {}
    pids = _int((resources.get("pids") or {}).get("limit"))
    limit, swap = _int(memory.get("limit")), _int(memory.get("swap"))
    reservation, swappiness = _int(memory.get("reservation")), _int(memory.get("swappiness"))
    shares, quota, period = _int(cpu.get("shares")), _int(cpu.get("quota")), _int(cpu.get("period"))
    out: list[WantedFile] = []
    if controller == "memory":
        if version == "v1":
            out.append(WantedFile("memory", "memory.limit_in_bytes", _limit(limit)))
            if swap is not None:
                out.append(WantedFile("memory", "memory.memsw.limit_in_bytes", _limit(swap)))
            if reservation is not None:
                out.append(WantedFile("memory", "memory.soft_limit_in_bytes", _limit(reservation)))
            if swappiness is not None:
                out.append(WantedFile("memory", "memory.swappiness", str(swappiness)))
        else:
            unlimited = limit is None or limit < 0
            out.append(WantedFile("memory", "memory.max", "max" if unlimited else str(limit)))
            if swap is not None and limit is not None and limit >= 0:
                out.append(WantedFile("memory", "memory.swap.max", "max" if swap < 0 else str(swap - limit)))
            if reservation is not None:
                out.append(WantedFile("memory", "memory.low", str(max(reservation, 0))))
    elif controller == "cpu":
        period_value = period or DEFAULT_PERIOD
        if version == "v1":
            out.append(WantedFile("cpu", "cpu.shares", str(shares or DEFAULT_SHARES)))
            out.append(WantedFile("cpu", "cpu.cfs_period_us", str(period_value)))
            out.append(WantedFile("cpu", "cpu.cfs_quota_us", _limit(quota if quota else None)))
        else:
            if shares:
                options = (linear_weight(shares), *curved_weight(shares))
                out.append(WantedFile("cpu", "cpu.weight", str(options[0]),
                                      tuple(str(w) for w in options[1:])))
            else:
                out.append(WantedFile("cpu", "cpu.weight", "100"))
            cap = quota if quota and quota > 0 else "max"
            out.append(WantedFile("cpu", "cpu.max", f"{cap} {period_value}"))
    elif controller == "cpuset":
        for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            value = cpu.get(key)
            if isinstance(value, str) and value.strip():
                out.append(WantedFile("cpuset", name, value.strip()))
    elif controller == "pids":
        out.append(WantedFile("pids", "pids.max", "max" if pids is None or pids <= 0 else str(pids)))
    return tuple(out)


CONTAINER_CONTROLLERS = ("memory", "cpu", "cpuset", "pids")


def cpu_list(text: str) -> frozenset[int]:
    """A cpuset list (``0-2,4``) as the set of numbers it names."""
    out: set[int] = set()
    for part in (p.strip() for p in text.strip().split(",")):
        if not part:
            continue
        first, _, last = part.partition("-")
        out.update(range(int(first), int(last or first) + 1))
    return frozenset(out)


def _amount(text: str) -> int | None:
    """``max``, negative values and v1's "unlimited" are ``None``; others their integer."""
    text = text.strip()
    if text == "max":
        return None
    value = int(text)
    if value < 0 or value >= UNLIMITED_BYTES:
        return None
    return value


def _meaning(name: str, text: str, page_size: int) -> object:
    if name.startswith("cpuset."):
        return cpu_list(text)
    if name == "cpu.max":
        q, _, p = text.strip().partition(" ")
        return (_amount(q), int(p or DEFAULT_PERIOD))
    value = _amount(text)
    if value is not None and name.startswith("memory.") and name != "memory.swappiness":
        return value // page_size  # the kernel keeps memory in whole pages
    return value


def file_drifted(wanted: WantedFile, found: str | None, page_size: int = 4096) -> bool:
    """Whether the content ``found`` (``None``: no such file) differs from what ``wanted``
    holds, in the form the kernel keeps it. A missing file is no drift (the controller is not
    in this hierarchy); content that cannot be read is."""
    if found is None:
        return False
    try:
        have = _meaning(wanted.name, found, page_size)
        return all(have != _meaning(wanted.name, v, page_size) for v in (wanted.value, *wanted.accepted))
    except ValueError:
        return True


def write_order(files: Sequence[WantedFile], current: Mapping[str, str]) -> list[WantedFile]:
    """``files`` in an order the kernel accepts: on v1 the memory limit must never be above
    memory plus swap, so when the new limit is above the current ``memory.memsw.limit_in_bytes``,
    memory plus swap is written first."""
    names = [f.name for f in files]
    if "memory.limit_in_bytes" not in names or "memory.memsw.limit_in_bytes" not in names:
        return list(files)
    limit = next(f for f in files if f.name == "memory.limit_in_bytes")
    try:
        new_limit = _amount(limit.value)
        old_swap = _amount(current.get("memory.memsw.limit_in_bytes", "-1"))
    except ValueError:
        return list(files)
    swap_first = old_swap is not None and (new_limit is None or new_limit > old_swap)
    if not swap_first:
        return list(files)
    return sorted(files, key=lambda f: 0 if f.name == "memory.memsw.limit_in_bytes" else 1)
