"""What ps, port, stats and logs show, from host records and log files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import anyio

from stackd.drivers.cgroups.usage import CgroupUsage
from stackd.drivers.host import ContainerRecord
from stackd.observe import (
    LogEntry,
    PublishedPort,
    follow_entries,
    parse_port,
    published,
    read_entries,
    statuses,
    usage_row,
)
from tests.unit.execute.support import fake_for, make_stack, up


def _rec(name: str, service: str, number: int = 1, **kw: object) -> ContainerRecord:
    return ContainerRecord(name=name, project="demo", service=service, number=number, config_hash="h",
                           **kw)  # type: ignore[arg-type]


def test_ps_rows_are_sorted_and_show_only_live_containers_unless_asked() -> None:
    records = [_rec("demo-web-2", "web", 2, state="running", health="healthy", pid=7,
                    ports=("0.0.0.0:8080->80/tcp",)),
               _rec("demo-web-1", "web", 1, state="exited", exit_code=1),
               _rec("demo-db-1", "db", state="running")]
    assert [r.name for r in statuses(records)] == ["demo-db-1", "demo-web-2"]
    rows = statuses(records, ["web"], everything=True)
    assert [(r.name, r.status) for r in rows] == [
        ("demo-web-1", "exited (1)"), ("demo-web-2", "running (healthy)")]
    assert rows[1].to_dict() == {"name": "demo-web-2", "service": "web", "number": 2, "state": "running",
                                 "health": "healthy", "pid": 7, "exit_code": None, "restarts": 0,
                                 "started_at": None, "ports": ["0.0.0.0:8080->80/tcp"]}


def test_ports_parse_and_match_target_and_protocol() -> None:
    assert parse_port("0.0.0.0:8080->80/tcp") == PublishedPort("0.0.0.0", "8080", 80, "tcp")
    assert parse_port("[::1]:53->53/udp") == PublishedPort("::1", "53", 53, "udp")
    assert parse_port("::1:53->53/udp") == PublishedPort("::1", "53", 53, "udp")
    assert parse_port("nonsense") is None
    record = _rec("demo-dns-1", "dns", ports=("127.0.0.1:5353->53/udp", "0.0.0.0:5353->53/tcp"))
    assert [p.address for p in published(record, 53, "udp")] == ["127.0.0.1:5353"]
    assert published(record, 54) == []
    assert PublishedPort("::", "80", 80, "tcp").address == "[::]:80"


def test_cpu_share_comes_from_two_samples() -> None:
    first = CgroupUsage(cpu_ns=1_000_000_000, memory_bytes=1, pids=1)
    second = CgroupUsage(cpu_ns=1_500_000_000, memory_bytes=2048, memory_limit=4096, pids=3)
    row = usage_row("demo-db-1", "db", first, second, 2.0)
    assert row.cpu_percent == 25.0
    assert (row.memory_bytes, row.memory_limit, row.pids) == (2048, 4096, 3)
    assert usage_row("x", "x", None, None, 1.0).cpu_percent is None


def _logged(tmp_path: Path) -> tuple[object, list[ContainerRecord]]:
    stack = make_stack({"db": {}, "web": {}})
    host = fake_for(stack, log_dir=tmp_path)
    up(stack, host)
    t = [datetime(2024, 5, 1, 12, 0, s, tzinfo=UTC) for s in range(4)]
    host.write_log("demo-web-1", "web one", when=t[1])
    host.write_log("demo-db-1", "db zero", when=t[0])
    host.write_log("demo-db-1", "db two", stream="stderr", when=t[2])
    host.write_log("demo-web-1", "web three", when=t[3])
    return host, host.list_containers("demo")


def test_logs_of_several_containers_merge_by_time(tmp_path: Path) -> None:
    host, records = _logged(tmp_path)
    entries = read_entries(host, records)  # type: ignore[arg-type]
    assert [(e.container, e.line.text) for e in entries] == [
        ("demo-db-1", "db zero"), ("demo-web-1", "web one"), ("demo-db-1", "db two"),
        ("demo-web-1", "web three")]
    assert entries[2].line.stream == "stderr"
    tail = read_entries(host, records, tail=1, timestamps=True)  # type: ignore[arg-type]
    assert [e.line.text for e in tail] == ["2024-05-01T12:00:02.000000Z db two",
                                           "2024-05-01T12:00:03.000000Z web three"]


def test_follow_ends_when_the_containers_have_stopped(tmp_path: Path) -> None:
    host, records = _logged(tmp_path)
    got: list[LogEntry] = []

    async def main() -> None:
        with anyio.fail_after(5):
            await following()

    async def following() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: follow_entries(host, records, got.append,  # type: ignore[arg-type]
                                                 poll_interval=0.001))
            while len(got) < 4:
                await anyio.sleep(0.001)
            host.write_log("demo-db-1", "late")  # type: ignore[attr-defined]
            for r in records:
                host.stop_container(r.name, timeout=1, signal="SIGTERM")  # type: ignore[attr-defined]

    anyio.run(main)
    assert sorted(e.line.text for e in got) == ["db two", "db zero", "late", "web one", "web three"]


def test_a_container_waiting_for_its_restart_is_listed_as_restarting() -> None:
    records = [_rec("demo-web-1", "web", state="exited", exit_code=1, restarting=True, restarts=3),
               _rec("demo-job-1", "job", state="exited", exit_code=0)]
    [row] = statuses(records)
    assert (row.name, row.state, row.exit_code, row.restarts) == ("demo-web-1", "restarting", 1, 3)
    once = statuses([_rec("demo-web-1", "web", state="exited", exit_code=1, restarting=True, restarts=1)])
    assert once[0].status == "restarting"  # one restart is not a loop yet
    assert [r.status for r in statuses(records, everything=True)] == [
        "exited (0)", "restarting (crash loop, 3 restarts, exit code 1)"]
    paused = statuses([_rec("demo-x-1", "x", state="paused", health="unhealthy")])
    assert paused[0].status == "paused (unhealthy)"
