"""Find out how cgroups are mounted on this host: pure v1, pure v2, or hybrid (v1 controller
hierarchies plus a cgroup2 mount such as /sys/fs/cgroup/unified).

``parse_layout`` is pure (mountinfo text and the v2 controller list in, ``CgroupLayout`` out) and is
what the unit tests exercise; ``detect`` only reads /proc/self/mountinfo and the v2
``cgroup.controllers`` file. Nothing here writes to the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stackd.drivers.mountinfo import MountEntry, parse_mountinfo
from stackd.errors import PermanentDriverError

LayoutMode = Literal["v1", "v2", "hybrid"]
Version = Literal["v1", "v2"]

MOUNTINFO = Path("/proc/self/mountinfo")

# the controllers a v1 hierarchy may carry (other super options are mount flags)
V1_CONTROLLERS = frozenset({
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio",
    "perf_event", "hugetlb", "pids", "rdma", "misc", "debug",
})
_PREFERRED_V2 = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")


@dataclass(frozen=True)
class CgroupLayout:
    """The mounted cgroup hierarchies.

    ``v1`` maps each v1 controller (and each named hierarchy as ``name=<x>``, e.g. ``name=systemd``)
    to its mount point; co-mounted controllers (``cpu,cpuacct``) share one. ``v2`` is the cgroup2
    mount (or ``None``) and ``v2_controllers`` what its root offers in ``cgroup.controllers``.
    """

    mode: LayoutMode
    v1: Mapping[str, Path] = field(default_factory=dict)
    v2: Path | None = None
    v2_controllers: frozenset[str] = frozenset()

    def backing(self, controller: str) -> tuple[Version, Path] | None:
        """Which hierarchy carries ``controller``: its v1 hierarchy if it has one, else the v2 mount
        if the controller is available there, else ``None``."""
        if controller in self.v1:
            return "v1", self.v1[controller]
        if self.v2 is not None and controller in self.v2_controllers:
            return "v2", self.v2
        return None

    def mounts(self) -> tuple[Path, ...]:
        """Every hierarchy once (v1 mount points sorted, then the v2 mount): where cgroups of a
        path may exist, e.g. leaves an OCI runtime created in every hierarchy it joins."""
        out = sorted(set(self.v1.values()))
        if self.v2 is not None:
            out.append(self.v2)
        return tuple(out)


def _cgroup_mounts(text: str) -> list[MountEntry]:
    """The cgroup and cgroup2 entries of a mountinfo text, in order (malformed lines skipped)."""
    return [m for m in parse_mountinfo(text) if m.fstype in ("cgroup", "cgroup2")]


def _preference(mount_point: str) -> tuple[int, int]:
    """Mounts under /sys/fs/cgroup win over other mounts of the same hierarchy (e.g. bind mounts or
    a second mount a test made); among the rest, mountinfo order decides (sort is stable)."""
    if mount_point in _PREFERRED_V2:
        return (0, _PREFERRED_V2.index(mount_point))
    return (1 if mount_point.startswith("/sys/fs/cgroup/") else 2, 0)


def parse_layout(mountinfo: str, v2_controllers: frozenset[str] = frozenset()) -> CgroupLayout:
    """The cgroup layout a mountinfo text describes; ``v2_controllers`` is what the chosen cgroup2
    mount offers (read by ``detect``). Raises ``PermanentDriverError`` when no cgroup is mounted."""
    mounts = sorted(_cgroup_mounts(mountinfo), key=lambda m: _preference(m.mount_point))
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for m in mounts:
        if m.fstype == "cgroup2":
            v2 = v2 or Path(m.mount_point)
            continue
        keys = [o for o in m.super_options if o in V1_CONTROLLERS or o.startswith("name=")]
        for key in keys:
            v1.setdefault(key, Path(m.mount_point))
    has_v1_controllers = any(not k.startswith("name=") for k in v1)
    if v2 is not None and has_v1_controllers:
        mode: LayoutMode = "hybrid"
    elif v2 is not None:
        mode = "v2"
    elif v1:
        mode = "v1"
    else:
        raise PermanentDriverError("no cgroup hierarchy is mounted on this host")
    return CgroupLayout(mode=mode, v1=v1, v2=v2, v2_controllers=v2_controllers if v2 else frozenset())


def read_v2_controllers(mount: Path) -> frozenset[str]:
    """What the cgroup2 hierarchy at ``mount`` offers (its root's ``cgroup.controllers``)."""
    try:
        return frozenset((mount / "cgroup.controllers").read_text().split())
    except OSError as exc:
        raise PermanentDriverError(f"cannot read {mount / 'cgroup.controllers'}: {exc.strerror}") from exc


def detect(mountinfo: Path = MOUNTINFO) -> CgroupLayout:
    """The layout of this host, from ``mountinfo`` (injectable for tests) and the v2 mount."""
    try:
        text = mountinfo.read_text()
    except OSError as exc:
        raise PermanentDriverError(f"cannot read {mountinfo}: {exc.strerror}") from exc
    layout = parse_layout(text)
    if layout.v2 is None:
        return layout
    return parse_layout(text, read_v2_controllers(layout.v2))
