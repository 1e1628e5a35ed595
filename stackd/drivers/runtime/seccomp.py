"""The default seccomp profile: a deny-list, as data, lifted per capability the way Docker does.

Everything is allowed except the system calls below, which fail with EPERM (``clone3`` with
ENOSYS, so that C libraries fall back to ``clone``, whose namespace flags are checked). A rule
names the capabilities that lift it: a container given CAP_SYS_ADMIN may mount, one given
CAP_SYS_TIME may set the clock. The list follows the calls Docker's default profile blocks
(kernel keyring, modules, kexec, clock, accounting, mount and namespace creation, obsolete and
debugging interfaces, io_uring); ordinary servers (nginx, postgres, redis) and shells use none
of them. Pure data and one pure function; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

EPERM = 1
ENOSYS = 38

_CLONE_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)

ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
    "ppc64le": ("SCMP_ARCH_PPC64LE",),
    "riscv64": ("SCMP_ARCH_RISCV64",),
}
"""The seccomp architectures whose calls the filter covers, by ``uname -m`` (the compat ABIs too,
so that 32-bit calls cannot go around the list)."""


@dataclass(frozen=True)
class Deny:
    """System calls refused with ``errno`` unless the container holds one of ``unless``;
    ``masked_arg0`` restricts the rule to calls whose first argument has all those bits set."""

    names: tuple[str, ...]
    unless: tuple[str, ...] = ()
    errno: int = EPERM
    masked_arg0: int | None = None


DENY_LIST: tuple[Deny, ...] = (
    Deny(("add_key", "keyctl", "request_key")),  # the keyring is not namespaced
    Deny(("nfsservctl", "uselib", "ustat", "sysfs", "_sysctl", "vm86", "vm86old")),  # obsolete
    Deny(("io_uring_setup", "io_uring_enter", "io_uring_register")),
    Deny(("acct",), ("CAP_SYS_PACCT",)),
    Deny(("bpf",), ("CAP_SYS_ADMIN", "CAP_BPF")),
    Deny(("perf_event_open",), ("CAP_SYS_ADMIN", "CAP_PERFMON")),
    Deny(("clock_adjtime", "clock_settime", "settimeofday", "stime"), ("CAP_SYS_TIME",)),
    Deny(("create_module", "delete_module", "finit_module", "init_module", "get_kernel_syms",
          "query_module"), ("CAP_SYS_MODULE",)),
    Deny(("ioperm", "iopl"), ("CAP_SYS_RAWIO",)),
    Deny(("kcmp", "pidfd_getfd", "process_madvise", "userfaultfd"), ("CAP_SYS_PTRACE",)),
    Deny(("kexec_file_load", "kexec_load", "reboot"), ("CAP_SYS_BOOT",)),
    Deny(("move_pages", "migrate_pages"), ("CAP_SYS_NICE",)),
    Deny(("name_to_handle_at", "open_by_handle_at"), ("CAP_DAC_READ_SEARCH",)),
    Deny(("syslog",), ("CAP_SYS_ADMIN", "CAP_SYSLOG")),
    Deny(("mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick",
          "move_mount", "open_tree", "mount_setattr", "unshare", "setns", "lookup_dcookie",
          "quotactl", "quotactl_fd", "swapon", "swapoff"), ("CAP_SYS_ADMIN",)),
    Deny(("clone3",), ("CAP_SYS_ADMIN",), errno=ENOSYS),
    *(Deny(("clone",), ("CAP_SYS_ADMIN",), masked_arg0=flag) for flag in _CLONE_NAMESPACE_FLAGS),
)


def _entry(rule: Deny) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "names": list(rule.names),
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": rule.errno,
    }
    if rule.masked_arg0 is not None:
        # SCMP_CMP_MASKED_EQ: (arg0 & value) == valueTwo
        entry["args"] = [{"index": 0, "value": rule.masked_arg0, "valueTwo": rule.masked_arg0,
                          "op": "SCMP_CMP_MASKED_EQ"}]
    return entry


def default_profile(caps: Iterable[str], arch: str) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for a container holding ``caps`` on an ``arch`` host."""
    held = set(caps)
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": list(ARCHITECTURES.get(arch, ())),
        "syscalls": [_entry(rule) for rule in DENY_LIST if not held.intersection(rule.unless)],
    }
