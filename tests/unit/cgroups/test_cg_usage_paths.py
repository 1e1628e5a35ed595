"""Usage statistics from v1/v2 files, cgroup naming rules and OSError translation."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from stackd.drivers.cgroups.cgfs import translate
from stackd.drivers.cgroups.paths import (
    check_cgroup_path,
    check_name,
    check_root,
    container_path,
    group_path,
)
from stackd.drivers.cgroups.usage import CgroupUsage, flat_keyed, usage_from
from stackd.errors import PermanentDriverError, TransientDriverError

V2_MEMORY_STAT = "anon 1000\nfile 9000\ninactive_file 4096\nactive_file 4904\n"
V1_MEMORY_STAT = "cache 9000\ninactive_file 100\ntotal_inactive_file 4096\ntotal_rss 1000\n"


def test_v2_usage() -> None:
    usage = usage_from({
        "memory.current": "10000", "memory.stat": V2_MEMORY_STAT, "memory.max": "max",
        "cpu.stat": "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n", "pids.current": "3"})
    assert usage == CgroupUsage(memory_bytes=10000 - 4096, memory_limit=None, cpu_ns=2_500_000, pids=3)


def test_v1_usage_counts_the_hierarchy_and_reads_nanoseconds() -> None:
    usage = usage_from({
        "memory.usage_in_bytes": "10000", "memory.stat": V1_MEMORY_STAT,
        "memory.limit_in_bytes": "33554432", "cpuacct.usage": "123456789", "pids.current": "1"})
    assert usage == CgroupUsage(memory_bytes=10000 - 4096, memory_limit=33554432, cpu_ns=123456789, pids=1)


def test_usage_without_controllers_is_unknown_not_zero() -> None:
    assert usage_from({}) == CgroupUsage(None, None, None, None)
    assert usage_from({"memory.limit_in_bytes": "9223372036854771712"}).memory_limit is None


def test_flat_keyed_skips_lines_that_are_not_key_value() -> None:
    assert flat_keyed("a 1\nbroken\nb x\nc -2\n") == {"a": 1, "c": -2}


@pytest.mark.parametrize("name", ["web", "foreground", "db-1", "a.b", "x_y", "Z9"])
def test_safe_names_pass(name: str) -> None:
    assert check_name(name, "group") == name


@pytest.mark.parametrize("name", [
    "", ".", "..", "a/b", "-x", ".hidden", "cgroup.procs", "memory.max", "cpu.weight", "tasks",
    "pids.max", "x" * 256, "sp ace",
])
def test_unsafe_names_fail_with_a_permanent_error(name: str) -> None:
    with pytest.raises(PermanentDriverError, match="name"):
        check_name(name, "group")


def test_paths_compose_below_the_root() -> None:
    assert group_path("/stackd", "shop", "foreground") == "/stackd/shop/foreground"
    assert container_path("/stackd/", "shop", "bg", "shop-web-1") == "/stackd/shop/bg/shop-web-1"
    assert check_root("//a//b/") == "/a/b"
    with pytest.raises(PermanentDriverError):
        group_path("/stackd", "shop", "../../memory")


@pytest.mark.parametrize("root", ["/", "", "stackd", "/a/../b"])
def test_bad_roots_fail(root: str) -> None:
    with pytest.raises(PermanentDriverError):
        check_root(root)


def test_cgroup_paths_for_stats() -> None:
    assert check_cgroup_path("/stackd/p/g/c") == "/stackd/p/g/c"
    assert check_cgroup_path("/") == "/"
    for bad in ("relative/x", "/a/../b", "/a/b c"):
        with pytest.raises(PermanentDriverError):
            check_cgroup_path(bad)


def test_translate_classifies_by_retry_behaviour(tmp_path: Path) -> None:
    file = tmp_path / "cpu.max"
    busy = translate(OSError(errno.EBUSY, "Device or resource busy"), "remove cgroup", tmp_path)
    assert isinstance(busy, TransientDriverError)
    assert str(tmp_path) in str(busy)
    refused = translate(OSError(errno.EINVAL, "Invalid argument"), "write '1' to", file)
    assert isinstance(refused, PermanentDriverError)
    assert "refused" in str(refused)
    assert "root" in str(translate(OSError(errno.EACCES, "Permission denied"), "open", file))
    # a control file missing from an existing cgroup: the controller is not there, retrying won't help
    assert isinstance(translate(OSError(errno.ENOENT, "No such file"), "open", file), PermanentDriverError)
    # ... but a cgroup that vanished under us may be back on the next pass
    gone = tmp_path / "gone" / "cpu.max"
    assert isinstance(translate(OSError(errno.ENOENT, "No such file"), "open", gone), TransientDriverError)
