"""What this host offers a container runtime, read (never changed) from /proc, /sys and /dev:
the cgroup layout (v1, v2 or hybrid), the caller's hard rlimits, the capabilities the kernel
knows, the cgroup settings it offers and the device nodes given to privileged containers.

Parsing is split from reading: ``parse_mountinfo`` and ``cgroup_mode`` are pure and unit-tested
on text; the ``probe_*`` and ``read_*`` functions only read the host. Nothing here writes.
"""

from __future__ import annotations

import os
import resource
import stat
from pathlib import Path
from typing import Literal

from stackd.drivers.mountinfo import MountEntry, parse_mountinfo
from stackd.drivers.runtime.request import Device, HostLimits
from stackd.drivers.runtime.spec import RLIMIT_NAMES
from stackd.errors import PermanentDriverError

CgroupMode = Literal["v1", "v2", "hybrid"]

CGROUP_ROOT = "/sys/fs/cgroup"
_SKIPPED_DEV_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})


def cgroup_mode(entries: list[MountEntry]) -> CgroupMode:
    """``v2`` (one unified hierarchy), ``v1`` (controller hierarchies only) or ``hybrid``
    (controller hierarchies plus a cgroup2 mount, e.g. at /sys/fs/cgroup/unified)."""
    v1 = any(e.fstype == "cgroup" for e in entries)
    v2 = any(e.fstype == "cgroup2" for e in entries)
    if v1 and v2:
        return "hybrid"
    if v1:
        return "v1"
    if v2:
        return "v2"
    raise PermanentDriverError("no cgroup file system is mounted on this host")


def cgroup_mount_points(entries: list[MountEntry]) -> list[str]:
    """Every mounted cgroup hierarchy (v1 and v2), each once, sorted."""
    return sorted({e.mount_point for e in entries if e.fstype in ("cgroup", "cgroup2")})


def unified_mount_point(entries: list[MountEntry]) -> str | None:
    """In a hybrid layout, the cgroup2 mount beside the v1 hierarchies (else ``None``)."""
    if cgroup_mode(entries) != "hybrid":
        return None
    return next(e.mount_point for e in entries if e.fstype == "cgroup2")


def read_mountinfo() -> list[MountEntry]:
    """This process's mount table."""
    try:
        return parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    except OSError as exc:
        raise PermanentDriverError(f"cannot read /proc/self/mountinfo: {exc}") from exc


def read_cgroup_features(entries: list[MountEntry]) -> dict[str, bool]:
    """Which cgroup settings this host offers, keyed by the ``HostLimits`` field names, found
    the way Docker finds them: by the interface files of each controller's root (v1) or by the
    controllers the unified root offers (v2)."""
    if cgroup_mode(entries) == "v2":
        root = next(e.mount_point for e in entries if e.fstype == "cgroup2")
        try:
            controllers = set(Path(root, "cgroup.controllers").read_text().split())
        except OSError:
            controllers = set()
        return {
            "swap_accounting": "memory" in controllers,
            "memory_swappiness": False,  # cgroup v2 has no per-group swappiness
            "cpu_shares": "cpu" in controllers,
            "cpu_quota": "cpu" in controllers,
            "cpuset": "cpuset" in controllers,
            "pids_limit": "pids" in controllers,
            "blkio_weight": "io" in controllers,
        }
    roots: dict[str, str] = {}
    for e in entries:
        if e.fstype == "cgroup":
            for option in e.super_options:
                roots.setdefault(option, e.mount_point)

    def has(controller: str, interface: str = "") -> bool:
        root = roots.get(controller)
        return root is not None and (not interface or Path(root, interface).exists())

    return {
        "swap_accounting": has("memory", "memory.memsw.limit_in_bytes"),
        "memory_swappiness": has("memory", "memory.swappiness"),
        "cpu_shares": has("cpu", "cpu.shares"),
        "cpu_quota": has("cpu", "cpu.cfs_quota_us"),
        "cpuset": has("cpuset"),
        "pids_limit": has("pids"),
        "blkio_weight": has("blkio", "blkio.weight"),
    }


def read_hard_rlimits() -> dict[str, int]:
    """The caller's hard limit per ``RLIMIT_*`` name (unlimited ones left out)."""
    out = {}
    for name in sorted(RLIMIT_NAMES):
        number = getattr(resource, name, None)
        if number is None:
            continue
        _, hard = resource.getrlimit(number)
        if hard != resource.RLIM_INFINITY:
            out[name] = hard
    return out


def read_cap_last_cap() -> int:
    """The highest capability number the running kernel knows."""
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 40


def device_from_path(path: str) -> Device:
    """The device node at ``path`` (following symlinks), as a ``Device`` at the same path."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise PermanentDriverError(f"cannot use device {path}: {exc.strerror}") from exc
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise PermanentDriverError(f"{path} is not a device node")
    return Device(path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                  stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def read_host_devices(root: str = "/dev") -> tuple[Device, ...]:
    """The character and block devices under ``root`` (not pseudo-terminals, shm, mqueue, the
    console), sorted by path: what a privileged container gets."""
    found = []
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not (top == root and d in _SKIPPED_DEV_DIRS))
        for name in sorted(files):
            path = os.path.join(top, name)
            if path == os.path.join(root, "console"):
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
                found.append(Device(path, kind, os.major(st.st_rdev), os.minor(st.st_rdev),
                                    stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
    return tuple(sorted(found, key=lambda d: d.path))


def probe_host_limits() -> HostLimits:
    """Everything ``oci_config`` needs to know about this host."""
    entries = read_mountinfo()
    return HostLimits(
        rlimits=read_hard_rlimits(),
        arch=os.uname().machine,
        cap_last_cap=read_cap_last_cap(),
        devices=read_host_devices(),
        **read_cgroup_features(entries),
    )
