"""Docker's defaults for a Linux container, as data: standard mounts, masked and read-only paths,
the device cgroup rules, the default PATH.

Pure data (and tiny constructors over it); ``spec.oci_config`` combines it with a request.
"""

from __future__ import annotations

from typing import Any

from stackd.drivers.runtime.request import Mount

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
"""Paths hidden from an unprivileged container (a file under /dev/null, a directory under an
empty read-only tmpfs): kernel information that leaks the host or is a known attack surface."""

READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)
"""Paths an unprivileged container can read but not write."""


def standard_mounts(shm_size: int, *, privileged: bool = False) -> tuple[Mount, ...]:
    """/proc, /dev, /dev/pts, /sys (read-only), /sys/fs/cgroup (read-only), /dev/mqueue and
    /dev/shm (``shm_size`` bytes), with Docker's options. Privileged: /sys and its cgroups are
    writable."""
    sys_mode = "rw" if privileged else "ro"
    return (
        Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
        Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        Mount("/dev/pts", "devpts", "devpts",
              ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5")),
        Mount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", sys_mode)),
        Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("nosuid", "noexec", "nodev", sys_mode)),
        Mount("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
        Mount("/dev/shm", "shm", "tmpfs", ("nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}")),
    )


def _rule(kind: str, major: int | None, minor: int | None, access: str = "rwm",
          allow: bool = True) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": allow, "access": access}
    if kind != "a":
        rule["type"] = kind
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


def default_device_rules() -> list[dict[str, Any]]:
    """Deny every device, then allow what a container's /dev holds: mknod of any node, null,
    zero, full, random, urandom, tty, console, ptmx and the pseudo-terminals."""
    return [
        _rule("a", None, None, allow=False),
        _rule("c", None, None, "m"),
        _rule("b", None, None, "m"),
        _rule("c", 1, 3),    # null
        _rule("c", 1, 5),    # zero
        _rule("c", 1, 7),    # full
        _rule("c", 1, 8),    # random
        _rule("c", 1, 9),    # urandom
        _rule("c", 5, 0),    # tty
        _rule("c", 5, 1),    # console
        _rule("c", 5, 2),    # ptmx
        _rule("c", 136, None),  # /dev/pts/*
    ]


def allow_all_devices_rule() -> dict[str, Any]:
    """The device cgroup rule of a privileged container."""
    return _rule("a", None, None)
