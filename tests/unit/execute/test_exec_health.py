"""Health as ``ps`` shows it: Docker's rules over probe results, every probe of a wait recorded on
the host, and ``refresh`` probing once what is stale; a stop leaves the signal to the driver."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from stackd.drivers.host import ContainerRecord, ExecResult, HealthRecord
from stackd.execute import HealthWaiter, ManualClock, WaitFailed, stop_settings
from stackd.execute.health import next_health, parse_time
from tests.unit.execute.support import fake_for, make_stack, up

OK = ExecResult(0, b"PONG\n", b"")
NO = ExecResult(1, b"", b"connection refused\n")
HC = {"test": ["CMD", "redis-cli", "ping"], "interval": "2s", "timeout": "1s", "retries": 2}


def step(prev: HealthRecord | None, passed: bool, *, counting: bool = True) -> HealthRecord:
    return next_health(prev, passed, "out", counting=counting, retries=2, checked_at="t", started_at="s")


def test_docker_rules() -> None:
    first_fail = step(None, False)
    assert (first_fail.status, first_fail.failing_streak) == ("starting", 1)
    assert step(first_fail, False).status == "unhealthy"
    assert step(None, False, counting=False) == HealthRecord("starting", 0, "out", "t", "s")
    healthy = step(first_fail, True)
    assert (healthy.status, healthy.failing_streak) == ("healthy", 0)
    wobbly = step(healthy, False)
    assert (wobbly.status, wobbly.failing_streak) == ("healthy", 1)  # healthy until retries in a row
    assert step(wobbly, False).status == "unhealthy"
    assert step(step(wobbly, False), True).status == "healthy"


def test_times_as_hosts_write_them() -> None:
    assert parse_time("2026-01-01T00:00:00.123456789Z") == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert parse_time(None) is None and parse_time("yesterday") is None
    assert parse_time("2026-01-01T00:00:00") is None  # no zone: cannot be compared


def test_every_probe_of_a_wait_is_recorded() -> None:
    stack = make_stack({"cache": {"healthcheck": HC}})
    host = fake_for(stack)
    up(stack, host)
    host.script_exec("cache", NO, OK)
    clock = ManualClock()
    waiter = HealthWaiter(host, clock, poll_interval=1.0)
    assert anyio.run(lambda: waiter.healthy(stack, "cache", ["demo-cache-1"])) == "healthy"
    assert host.calls_of("record_health") == ["demo-cache-1", "demo-cache-1"]
    record = host.containers["demo-cache-1"]
    assert record.health == "healthy" and record.last_health is not None
    assert (record.last_health.output, record.last_health.started_at) == ("PONG", record.started_at)
    # a fresh healthy result stands for a probe; a stale one does not
    host.execs.clear()
    anyio.run(lambda: waiter.healthy(stack, "cache", ["demo-cache-1"]))
    assert host.execs == []
    clock.advance(5)
    anyio.run(lambda: waiter.healthy(stack, "cache", ["demo-cache-1"]))
    assert len(host.execs) == 1


def test_an_unhealthy_result_is_recorded_before_the_wait_fails() -> None:
    stack = make_stack({"cache": {"healthcheck": HC}})
    host = fake_for(stack)
    up(stack, host)
    host.script_exec("cache", NO)
    waiter = HealthWaiter(host, ManualClock(), poll_interval=1.0)
    with pytest.raises(WaitFailed, match="failed its healthcheck 2 times in a row; last output: connection"):
        anyio.run(lambda: waiter.healthy(stack, "cache", ["demo-cache-1"]))
    last = host.containers["demo-cache-1"].last_health
    assert last is not None and (last.status, last.failing_streak) == ("unhealthy", 2)


def refresh(waiter: HealthWaiter, stack: object, records: list[ContainerRecord]) -> list[ContainerRecord]:
    return anyio.run(lambda: waiter.refresh(stack, records))  # type: ignore[arg-type]


def test_refresh_probes_once_what_is_stale_and_only_that() -> None:
    stack = make_stack({"cache": {"healthcheck": {**HC, "retries": 1}}, "plain": {}, "job": {}})
    host = fake_for(stack)
    up(stack, host)
    host.set_state("demo-job-1", "exited", 0)
    host.script_exec("cache", NO)
    clock = ManualClock(datetime.now(UTC))
    waiter = HealthWaiter(host, clock)
    rows = {r.name: r for r in refresh(waiter, stack, host.list_containers("demo"))}
    assert host.execs == [("demo-cache-1", ("redis-cli", "ping"))]  # no healthcheck, not running: no probe
    assert rows["demo-cache-1"].health == "unhealthy" and rows["demo-plain-1"].health == "none"
    assert host.containers["demo-cache-1"].health == "unhealthy"  # recorded on the host
    refresh(waiter, stack, host.list_containers("demo"))
    assert len(host.execs) == 1  # within the interval: the recorded result stands
    clock.advance(2)
    host.script_exec("cache", OK)
    rows = {r.name: r for r in refresh(waiter, stack, host.list_containers("demo"))}
    assert len(host.execs) == 2 and rows["demo-cache-1"].health == "healthy"


def test_refresh_in_the_start_period_keeps_starting() -> None:
    stack = make_stack({"db": {"healthcheck": {**HC, "retries": 1, "start_period": "1h"}}})
    host = fake_for(stack)
    up(stack, host)
    host.script_exec("db", NO)
    record = host.list_containers("demo")[0]
    assert record.started_at is not None
    waiter = HealthWaiter(host, ManualClock(parse_time(record.started_at)))
    [row] = refresh(waiter, stack, [record])
    assert row.health == "starting" and row.last_health is not None and row.last_health.failing_streak == 0
    # a result the host kept for the container is where the streak goes on from
    kept = HealthRecord("healthy", 0, "", "2000-01-01T00:00:00Z", record.started_at)
    after = replace(record, health="healthy", last_health=kept)
    waiter.clock = ManualClock(datetime.now(UTC))
    [row] = refresh(waiter, stack, [after])
    assert row.health == "unhealthy"


def test_stops_leave_the_signal_to_the_driver_unless_the_service_names_one() -> None:
    stack = make_stack({"db": {"stop_signal": "SIGINT", "stop_grace_period": "5s"}, "web": {}})
    assert stop_settings(stack, "db", None) == (5.0, "SIGINT")
    assert stop_settings(stack, "web", 3) == (3, None)
    assert stop_settings(None, "web", None) == (10.0, None)


@pytest.mark.parametrize(("condition", "check", "said"), [
    ("service_healthy", HC, "service db: container demo-db-1 is exited (code 3) and cannot become healthy"),
    ("service_completed_successfully", None,
     "service db didn't complete successfully: container demo-db-1 exited with code 3"),
])
def test_a_dependency_that_exits_is_reported_with_its_last_log_lines(
        tmp_path: Path, condition: str, check: dict[str, object] | None, said: str) -> None:
    db = {"healthcheck": check} if check else {}
    stack = make_stack({"db": db, "web": {"depends_on": {"db": {"condition": condition}}}})
    host = fake_for(stack, log_dir=tmp_path)

    def on_start(method: str, target: str) -> None:
        if method == "start_container":
            for i in range(7):
                host.write_log(target, f"line {i}")

    host.hook = on_start
    host.exits_on_start("db", 3)
    [failed] = up(stack, host).result.failed
    assert failed.op == "start service:web:1"
    assert failed.message == said + "; its last output:\n" + "\n".join(f"  line {i}" for i in range(2, 7))


def test_an_images_healthcheck_counts_and_the_services_fields_go_over_it() -> None:
    from stackd.drivers.images.config import Healthcheck as ImageCheck
    from stackd.execute import HealthSettings
    from stackd.spec.models import Healthcheck

    image = ImageCheck(test=("CMD-SHELL", "exec 3<>/dev/tcp/127.0.0.1/80"), interval=5_000_000_000,
                       timeout=2_000_000_000, retries=4)
    shell = ("/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/80")
    assert HealthSettings.of(None, image) == HealthSettings(shell, interval=5.0, timeout=2.0, retries=4)
    tuned = HealthSettings.of(Healthcheck(interval="1s", start_period="3s"), image)
    assert tuned is not None and (tuned.argv[0], tuned.interval, tuned.timeout, tuned.retries,
                                  tuned.start_period) == ("/bin/sh", 1.0, 2.0, 4, 3.0)
    own = HealthSettings.of(Healthcheck(test=["CMD", "true"]), image)
    assert own is not None and (own.argv, own.interval) == (("true",), 5.0)
    assert HealthSettings.of(Healthcheck(disable=True), image) is None
    assert HealthSettings.of(Healthcheck(test=["NONE"]), image) is None
    assert HealthSettings.of(None, ImageCheck(test=("NONE",))) is None
    assert HealthSettings.of(None, None) is None


def test_a_container_whose_image_has_a_healthcheck_can_be_awaited_and_shows_its_health() -> None:
    from stackd.drivers.images.config import Healthcheck as ImageCheck

    stack = make_stack({"web": {}, "app": {"depends_on": {"web": {"condition": "service_healthy"}}}})
    host = fake_for(stack)
    host.image_healthchecks["web:1"] = ImageCheck(test=("CMD", "probe"), interval=1_000_000_000)
    host.script_exec("web", NO, OK)
    run = up(stack, host)
    assert run.result.ok and host.execs == [("demo-web-1", ("probe",))] * 2
    assert run.clock.sleeps == [1.0]  # the image's interval
    assert host.containers["demo-web-1"].health == "healthy"
    assert host.containers["demo-app-1"].image_healthcheck is None


def test_the_start_period_is_probed_at_the_checks_own_pace_when_shorter() -> None:
    from stackd.execute import HealthSettings
    from stackd.spec.models import Healthcheck

    quick = HealthSettings.of(Healthcheck(test=["CMD", "true"], interval="2s", start_period="5s"))
    assert quick is not None and quick.start_interval == 2.0
    slow = HealthSettings.of(Healthcheck(test=["CMD", "true"], interval="30s", start_period="60s"))
    assert slow is not None and slow.start_interval == 5.0  # Docker's default start interval
    told = HealthSettings.of(Healthcheck(test=["CMD", "true"], interval="2s", start_interval="1s"))
    assert told is not None and told.start_interval == 1.0
