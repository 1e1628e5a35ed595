"""Group limits to cgroup files and back, for v2 and v1, and drift between desired and observed."""

from __future__ import annotations

import itertools

import pytest

from stackd.drivers.cgroups.limits import (
    GroupLimits,
    Version,
    drift,
    file_value,
    parse,
    render,
    shares_to_weight,
    weight_to_shares,
)
from stackd.spec.models import Group

MiB = 1 << 20
V1_UNLIMITED = "9223372036854771712"  # what memory.limit_in_bytes reads when no limit is set


def files(limits: GroupLimits, version: Version) -> dict[str, str]:
    return {f.name: f.value for f in render(limits, version)}


def test_weight_and_shares_keep_the_defaults_and_the_range() -> None:
    assert weight_to_shares(100) == 1024
    assert shares_to_weight(1024) == 100
    assert weight_to_shares(1) == 10
    assert weight_to_shares(10000) == 102400
    assert shares_to_weight(2) == 1  # the v1 minimum still maps into the v2 range
    assert shares_to_weight(262144) == 10000


def test_every_weight_survives_the_trip_through_shares() -> None:
    assert all(shares_to_weight(weight_to_shares(w)) == w for w in range(1, 10001))


def test_v2_files_for_every_limit() -> None:
    limits = GroupLimits(cpu_weight=200, cpus=1.5, memory=512 * MiB, pids=64)
    assert files(limits, "v2") == {
        "cpu.weight": "200", "cpu.max": "150000 100000", "memory.max": str(512 * MiB), "pids.max": "64"}
    assert all(f.required for f in render(limits, "v2"))


def test_v1_files_for_every_limit_write_the_period_before_the_quota() -> None:
    limits = GroupLimits(cpu_weight=200, cpus=0.5, memory=64 * MiB, pids=10)
    rendered = render(limits, "v1")
    assert [f.name for f in rendered] == [
        "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "memory.limit_in_bytes", "pids.max"]
    assert files(limits, "v1") == {
        "cpu.shares": "2048", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000",
        "memory.limit_in_bytes": str(64 * MiB), "pids.max": "10"}
    assert {f.controller for f in rendered} == {"cpu", "memory", "pids"}


def test_unset_limits_render_the_kernel_defaults_and_are_not_required() -> None:
    assert files(GroupLimits(), "v2") == {
        "cpu.weight": "100", "cpu.max": "max 100000", "memory.max": "max", "pids.max": "max"}
    assert files(GroupLimits(), "v1") == {
        "cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1",
        "memory.limit_in_bytes": "-1", "pids.max": "max"}
    assert not any(f.required for f in render(GroupLimits(), "v1") + render(GroupLimits(), "v2"))
    only_memory = {f.name for f in render(GroupLimits(memory=MiB), "v1") if f.required}
    assert only_memory == {"memory.limit_in_bytes"}


def test_memory_is_rendered_in_whole_pages_and_tiny_quotas_are_raised() -> None:
    assert files(GroupLimits(memory=1_000_000), "v2")["memory.max"] == "999424"
    assert files(GroupLimits(memory=1_000_000), "v1")["memory.limit_in_bytes"] == "999424"
    assert render(GroupLimits(memory=70_000), "v2", page_size=65536)[2].value == "65536"
    assert files(GroupLimits(cpus=0.001), "v2")["cpu.max"] == "1000 100000"
    assert files(GroupLimits(cpus=2, cpu_period=50_000), "v2")["cpu.max"] == "100000 50000"


def test_parse_reads_what_the_kernel_writes() -> None:
    v1 = parse({"cpu.shares": "2048", "cpu.cfs_quota_us": "150000", "cpu.cfs_period_us": "100000",
                "memory.limit_in_bytes": "67108864", "pids.max": "max"})
    assert v1 == GroupLimits(cpu_weight=200, cpus=1.5, memory=64 * MiB, pids=None)
    v2 = parse({"cpu.weight": "50", "cpu.max": "max 100000", "memory.max": "max", "pids.max": "5"})
    assert v2 == GroupLimits(cpu_weight=50, pids=5)
    unlimited = parse({"cpu.cfs_quota_us": "-1", "memory.limit_in_bytes": V1_UNLIMITED})
    assert unlimited == GroupLimits()
    assert parse({"cpu.max": "25000 50000"}) == GroupLimits(cpus=0.5, cpu_period=50_000)


def test_parse_rejects_content_the_kernel_would_not_produce() -> None:
    with pytest.raises(ValueError):
        parse({"memory.max": "lots"})


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_render_then_parse_shows_no_drift(version: Version) -> None:
    choices = itertools.product((None, 1, 100, 333, 10000), (None, 0.25, 1.5, 3.333333),
                                (None, 1, 1_000_000, 256 * MiB), (None, 1, 5000))
    for weight, cpus, memory, pids in choices:
        desired = GroupLimits(cpu_weight=weight, cpus=cpus, memory=memory, pids=pids)
        observed = parse(files(desired, version))
        assert drift(desired, observed) == (), (desired, observed)


def test_drift_names_each_limit_that_differs() -> None:
    desired = GroupLimits(cpu_weight=300, cpus=1.0, memory=64 * MiB, pids=10)
    assert drift(desired, GroupLimits()) == ("cpu_weight", "cpus", "memory", "pids")
    assert drift(desired, GroupLimits(cpu_weight=300, cpus=1.0, memory=64 * MiB, pids=11)) == ("pids",)
    # unset weight is the default weight; an unset quota ignores the period
    assert drift(GroupLimits(), GroupLimits(cpu_weight=100, cpu_period=50_000)) == ()
    assert drift(GroupLimits(memory=2 * 4096), GroupLimits(memory=4096)) == ("memory",)
    assert drift(GroupLimits(cpus=1.0), GroupLimits(cpus=1.0, cpu_period=50_000)) == ("cpus",)


def test_file_value_compares_meanings_not_spellings() -> None:
    assert file_value("memory.limit_in_bytes", "-1") == file_value("memory.limit_in_bytes", V1_UNLIMITED)
    assert file_value("pids.max", "max") == file_value("pids.max", "-1")
    assert file_value("cpu.max", "max 100000") != file_value("cpu.max", "max 50000")
    assert file_value("cpu.shares", "1024\n") == 1024


@pytest.mark.parametrize("bad", [
    {"cpu_weight": 0}, {"cpu_weight": 10001}, {"cpus": 0.0}, {"memory": -1}, {"pids": -2},
    {"cpu_period": 999}, {"cpu_period": 1_000_001},
])
def test_out_of_range_limits_are_refused(bad: dict[str, int | float]) -> None:
    with pytest.raises(ValueError):
        GroupLimits(**bad)  # type: ignore[arg-type]


def test_limits_of_a_stack_group_and_the_controllers_they_need() -> None:
    group = Group.model_validate({"cpu_weight": 500, "memory": "512m", "pids": 100})
    limits = GroupLimits.of(group)
    assert limits == GroupLimits(cpu_weight=500, memory=512 * MiB, pids=100)
    assert limits.controllers() == frozenset({"cpu", "memory", "pids"})
    assert GroupLimits(cpus=1).controllers() == frozenset({"cpu"})
    assert GroupLimits().controllers() == frozenset()
