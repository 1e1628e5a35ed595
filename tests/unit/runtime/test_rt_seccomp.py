"""The default seccomp profile: a deny-list over an allow-by-default filter, lifted per capability."""

from __future__ import annotations

from typing import Any

from stackd.drivers.runtime.caps import DOCKER_DEFAULT_CAPS
from stackd.drivers.runtime.seccomp import ENOSYS, EPERM, default_profile


def denied(profile: dict[str, Any]) -> dict[str, int]:
    """Unconditionally denied names → errno (rules with argument filters left out)."""
    return {n: s["errnoRet"] for s in profile["syscalls"] if "args" not in s for n in s["names"]}


def test_everything_else_is_allowed_and_every_rule_returns_an_errno() -> None:
    profile = default_profile(DOCKER_DEFAULT_CAPS, "x86_64")
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    assert all(s["action"] == "SCMP_ACT_ERRNO" for s in profile["syscalls"])


def test_calls_a_shell_or_server_needs_are_not_denied() -> None:
    names = denied(default_profile(DOCKER_DEFAULT_CAPS, "x86_64"))
    for call in ("read", "write", "openat", "execve", "fork", "vfork", "wait4", "socket", "bind",
                 "listen", "accept4", "epoll_wait", "mmap", "futex", "setuid", "chown", "sendfile",
                 "shmget", "semop", "fsync", "prctl", "setsid", "personality", "ptrace"):
        assert call not in names, call


def test_dangerous_calls_are_denied_with_eperm() -> None:
    names = denied(default_profile(DOCKER_DEFAULT_CAPS, "x86_64"))
    for call in ("mount", "umount2", "unshare", "setns", "pivot_root", "keyctl", "add_key",
                 "init_module", "finit_module", "kexec_load", "reboot", "bpf", "perf_event_open",
                 "clock_settime", "swapon", "open_by_handle_at", "io_uring_setup", "acct"):
        assert names[call] == EPERM, call


def test_clone3_fails_with_enosys_so_libc_falls_back_to_clone() -> None:
    assert denied(default_profile(DOCKER_DEFAULT_CAPS, "x86_64"))["clone3"] == ENOSYS


def test_clone_is_refused_only_with_namespace_flags() -> None:
    rules = [s for s in default_profile(DOCKER_DEFAULT_CAPS, "x86_64")["syscalls"] if s["names"] == ["clone"]]
    flags = {r["args"][0]["value"] for r in rules}
    assert 0x10000000 in flags  # CLONE_NEWUSER
    assert 0x40000000 in flags  # CLONE_NEWNET
    for r in rules:
        (arg,) = r["args"]
        assert arg["index"] == 0 and arg["op"] == "SCMP_CMP_MASKED_EQ" and arg["value"] == arg["valueTwo"]
    assert all(bin(f).count("1") == 1 for f in flags)


def test_a_capability_lifts_its_rules() -> None:
    admin = default_profile(DOCKER_DEFAULT_CAPS | {"CAP_SYS_ADMIN"}, "x86_64")
    names = denied(admin)
    assert "mount" not in names and "unshare" not in names and "clone3" not in names
    assert not any(s["names"] == ["clone"] for s in admin["syscalls"])
    assert "keyctl" in names  # the keyring stays closed to everyone
    assert "clock_settime" not in denied(default_profile({"CAP_SYS_TIME"}, "x86_64"))
    assert "ptrace" not in names and "kcmp" not in denied(default_profile({"CAP_SYS_PTRACE"}, "x86_64"))


def test_architectures_cover_the_compat_abis() -> None:
    x86 = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert default_profile((), "x86_64")["architectures"] == x86
    assert default_profile((), "aarch64")["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert default_profile((), "mips")["architectures"] == []
