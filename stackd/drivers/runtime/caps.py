"""Linux capabilities: the kernel's list, Docker's default set, and cap_add/cap_drop resolution.

Pure data and functions, no I/O. Names are accepted as ``CHOWN``, ``cap_chown`` or ``CAP_CHOWN``
and always returned as ``CAP_CHOWN``, ordered by capability number.
"""

from __future__ import annotations

from collections.abc import Iterable

from stackd.errors import PermanentDriverError

ALL_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
"""Every capability, indexed by its number (``ALL_CAPS[0]`` is ``CAP_CHOWN``)."""

DOCKER_DEFAULT_CAPS: frozenset[str] = frozenset({
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
})
"""The 14 capabilities Docker grants a container unless told otherwise."""

_NUMBER = {name: i for i, name in enumerate(ALL_CAPS)}


def normalize_cap(name: str) -> str:
    """``chown`` / ``CAP_CHOWN`` → ``CAP_CHOWN``; ``all`` → ``ALL``. Unknown names are refused."""
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full not in _NUMBER:
        raise PermanentDriverError(f"unknown capability {name!r}")
    return full


def known_caps(cap_last_cap: int) -> tuple[str, ...]:
    """The capabilities the running kernel knows (``/proc/sys/kernel/cap_last_cap``)."""
    return ALL_CAPS[: cap_last_cap + 1]


def resolve_caps(
    add: Iterable[str], drop: Iterable[str], *, privileged: bool = False, cap_last_cap: int = 40
) -> tuple[str, ...]:
    """The container's capability set, with Docker's rules.

    Privileged: every capability the kernel knows. ``ALL`` in ``add``: every capability except
    those dropped. ``ALL`` in ``drop``: only those added. Otherwise Docker's default set minus
    ``drop``, plus ``add`` (an added capability wins over the same one dropped).
    """
    known = known_caps(cap_last_cap)
    if privileged:
        return known
    adds = {normalize_cap(c) for c in add}
    drops = {normalize_cap(c) for c in drop}
    chosen: set[str] | frozenset[str]
    if "ALL" in adds:
        chosen = set(known) - drops
    elif "ALL" in drops:
        chosen = adds
    else:
        chosen = (DOCKER_DEFAULT_CAPS - drops) | adds
    return tuple(c for c in known if c in chosen)
