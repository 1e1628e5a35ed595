"""The limits of a stack group and the cgroup files that hold them, for cgroup v2 and v1.

Pure: ``render`` turns ``GroupLimits`` into the (file, value) pairs to write, ``parse`` reads such
files back into ``GroupLimits``, and ``drift`` says which limits differ once both sides are put in
the form the kernel keeps them in. No I/O here; the driver does the reading and writing.

Files per limit::

    limit        v2                       v1
    cpu_weight   cpu.weight (1..10000)    cpu.shares (2..262144)
    cpus         cpu.max "QUOTA PERIOD"   cpu.cfs_period_us + cpu.cfs_quota_us (-1 = none)
    memory       memory.max ("max")       memory.limit_in_bytes (-1 = none)
    pids         pids.max ("max")         pids.max ("max")

An unset limit renders as the kernel default (weight 100 / 1024 shares, no quota, no memory or pids
limit), so writing a group resets limits removed from the stack file: the state is level-triggered.

Weight and shares. The stack file speaks cgroup v2 weight; on v1 it becomes shares the way systemd
converts ``CPUWeight=`` for v1 (``cgroup_cpu_weight_to_shares``)::

    shares = clamp(weight * 1024 // 100, 2, 262144)        # default weight 100 -> 1024 shares

so defaults and ratios are kept (weight 200 gets twice the CPU of weight 100 under contention, as in
v2). runc and crun convert the other way (shares given in an OCI config -> v2 weight): until 2025 with
the linear ``1 + (shares - 2) * 9999 // 262142``, which sends the default 1024 shares to weight 39,
since runc 1.3.2 / crun 1.23 with a curve that keeps 1024 -> 100. stackd never converts shares it did
not write, so it needs only the inverse of its own formula; reading back uses::

    weight = clamp(ceil(shares * 100 / 1024), 1, 10000)

which is exact for every shares value written above (``weight * 1024 // 100`` loses less than one
weight unit's worth, 10.24 shares, and the ceiling restores it), unlike systemd's floor-based
inverse, which turns weight 3 -> 30 shares -> weight 2.

Memory is kept by the kernel in whole pages (it rounds a written byte count down); a cpu quota is
``round(cpus * period)`` microseconds and at least 1000 (the kernel's minimum).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal, Protocol

Version = Literal["v1", "v2"]

DEFAULT_PERIOD = 100_000  # µs, the kernel's default CFS period
MIN_QUOTA = 1_000  # µs
DEFAULT_WEIGHT = 100
DEFAULT_SHARES = 1024
MIN_SHARES, MAX_SHARES = 2, 262_144
MIN_WEIGHT, MAX_WEIGHT = 1, 10_000
# v1 reports "no memory limit" as the largest page-aligned value of a signed 64-bit counter;
# anything this large is no limit on any page size.
UNLIMITED_BYTES = 1 << 62

CONTROLLER_OF = {"cpu_weight": "cpu", "cpus": "cpu", "memory": "memory", "pids": "pids"}


class GroupSettings(Protocol):
    """What a stack's group declares (``stackd.spec.models.Group`` has this shape)."""

    @property
    def cpu_weight(self) -> int | None: ...
    @property
    def cpus(self) -> float | None: ...
    @property
    def memory(self) -> int | None: ...
    @property
    def pids(self) -> int | None: ...


@dataclass(frozen=True)
class GroupLimits:
    """Limits of one group; ``None`` means no limit (the kernel default). Compare with ``drift``,
    not ``==``: an observed group reports weight 100 where the stack file left it unset."""

    cpu_weight: int | None = None  # 1..10000, v2 semantics
    cpus: float | None = None  # CPUs, e.g. 1.5
    memory: int | None = None  # bytes
    pids: int | None = None  # tasks
    cpu_period: int = DEFAULT_PERIOD  # µs, the period the cpus quota is measured over

    def __post_init__(self) -> None:
        if self.cpu_weight is not None and not MIN_WEIGHT <= self.cpu_weight <= MAX_WEIGHT:
            raise ValueError(f"cpu_weight must be within 1..10000, got {self.cpu_weight}")
        if self.cpus is not None and not self.cpus > 0:
            raise ValueError(f"cpus must be above 0, got {self.cpus}")
        if self.memory is not None and self.memory < 0:
            raise ValueError(f"memory must not be negative, got {self.memory}")
        if self.pids is not None and self.pids < 0:
            raise ValueError(f"pids must not be negative, got {self.pids}")
        if not 1_000 <= self.cpu_period <= 1_000_000:
            raise ValueError(f"cpu_period must be within 1000..1000000 µs, got {self.cpu_period}")

    @classmethod
    def of(cls, group: GroupSettings) -> GroupLimits:
        """The limits a stack file's group declares."""
        return cls(cpu_weight=group.cpu_weight, cpus=group.cpus, memory=group.memory, pids=group.pids)

    def controllers(self) -> frozenset[str]:
        """The controllers the set limits need (an unset limit needs none)."""
        return frozenset(CONTROLLER_OF[f.name] for f in fields(self)
                         if f.name in CONTROLLER_OF and getattr(self, f.name) is not None)


@dataclass(frozen=True)
class CgroupFile:
    """One control file to write. ``required`` is true when the stack asked for this limit (a
    missing file is then an error); false for defaults written only to undo earlier limits."""

    controller: str
    name: str
    value: str
    required: bool


def weight_to_shares(weight: int) -> int:
    """v2 weight -> v1 shares (systemd's formula, see the module docstring)."""
    return max(MIN_SHARES, min(MAX_SHARES, weight * DEFAULT_SHARES // DEFAULT_WEIGHT))


def shares_to_weight(shares: int) -> int:
    """v1 shares -> v2 weight; the exact inverse of ``weight_to_shares`` on 1..10000."""
    return max(MIN_WEIGHT, min(MAX_WEIGHT, -(-shares * DEFAULT_WEIGHT // DEFAULT_SHARES)))


def quota(cpus: float, period: int) -> int:
    """The CFS quota (µs per period) for ``cpus`` CPUs."""
    return max(MIN_QUOTA, round(cpus * period))


def render(limits: GroupLimits, version: Version, page_size: int = 4096) -> tuple[CgroupFile, ...]:
    """The files that hold ``limits`` in a hierarchy of ``version``, in the order to write them."""
    weight, cpus, memory, pids = limits.cpu_weight, limits.cpus, limits.memory, limits.pids
    period = limits.cpu_period
    mem = "max" if memory is None else str(memory // page_size * page_size)
    pid = "max" if pids is None else str(pids)
    if version == "v2":
        return (
            CgroupFile("cpu", "cpu.weight", str(weight or DEFAULT_WEIGHT), weight is not None),
            CgroupFile("cpu", "cpu.max", f"{'max' if cpus is None else quota(cpus, period)} {period}",
                       cpus is not None),
            CgroupFile("memory", "memory.max", mem, memory is not None),
            CgroupFile("pids", "pids.max", pid, pids is not None),
        )
    return (
        CgroupFile("cpu", "cpu.shares", str(weight_to_shares(weight or DEFAULT_WEIGHT)), weight is not None),
        CgroupFile("cpu", "cpu.cfs_period_us", str(period), cpus is not None),
        CgroupFile("cpu", "cpu.cfs_quota_us", "-1" if cpus is None else str(quota(cpus, period)),
                   cpus is not None),
        CgroupFile("memory", "memory.limit_in_bytes", "-1" if memory is None else mem, memory is not None),
        CgroupFile("pids", "pids.max", pid, pids is not None),
    )


def _amount(text: str) -> int | None:
    """``max``, ``-1`` and v1's huge "unlimited" become ``None``; other values their integer."""
    text = text.strip()
    if text == "max":
        return None
    value = int(text)
    return None if value < 0 or value >= UNLIMITED_BYTES else value


def _cpu_max(text: str) -> tuple[int | None, int]:
    """``cpu.max`` ("QUOTA PERIOD", quota ``max`` for none) as (quota or None, period)."""
    q, _, p = text.strip().partition(" ")
    return _amount(q), int(p or DEFAULT_PERIOD)


def file_value(name: str, text: str) -> object:
    """The meaning of a control file's content, comparable between what was read and what would be
    written (``-1`` and ``max`` are both "none"; ``cpu.max`` is a (quota, period) pair)."""
    return _cpu_max(text) if name == "cpu.max" else _amount(text)


def parse(files: Mapping[str, str]) -> GroupLimits:
    """The limits held by control files (name -> content; v1 and v2 names both understood, missing
    files mean no limit). Raises ``ValueError`` on content the kernel would not produce."""
    weight: int | None = None
    cpus: float | None = None
    period = DEFAULT_PERIOD
    if "cpu.weight" in files:
        weight = int(files["cpu.weight"])
    elif "cpu.shares" in files:
        weight = shares_to_weight(int(files["cpu.shares"]))
    if "cpu.max" in files:
        q, period = _cpu_max(files["cpu.max"])
    else:
        q = _amount(files.get("cpu.cfs_quota_us", "-1"))
        period = int(files.get("cpu.cfs_period_us", DEFAULT_PERIOD))
    if q is not None:
        cpus = q / period
    memory = _amount(files.get("memory.max", files.get("memory.limit_in_bytes", "max")))
    pids = _amount(files.get("pids.max", "max"))
    return GroupLimits(cpu_weight=weight, cpus=cpus, memory=memory, pids=pids, cpu_period=period)


def _kept(limits: GroupLimits, page_size: int) -> dict[str, object]:
    """Each limit as the kernel keeps it (defaults filled in, memory in pages, cpus as a quota)."""
    return {
        "cpu_weight": limits.cpu_weight or DEFAULT_WEIGHT,
        "cpus": None if limits.cpus is None else (quota(limits.cpus, limits.cpu_period), limits.cpu_period),
        "memory": None if limits.memory is None else limits.memory // page_size,
        "pids": limits.pids,
    }


def drift(desired: GroupLimits, observed: GroupLimits, page_size: int = 4096) -> tuple[str, ...]:
    """The names of the limits whose observed value is not what ``desired`` becomes on the host."""
    want, have = _kept(desired, page_size), _kept(observed, page_size)
    return tuple(name for name in want if want[name] != have[name])
