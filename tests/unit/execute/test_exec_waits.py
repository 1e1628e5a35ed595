"""depends_on conditions as the executor waits for them: started, healthy, completed successfully,
optional dependencies, and the healthcheck's timing on a virtual clock."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from stackd.drivers.host import ExecResult
from stackd.execute import HealthSettings, HealthWaiter, ManualClock, WaitFailed
from stackd.spec.models import Healthcheck
from tests.unit.execute.support import Run, fake_for, make_stack, run_plan, up_plan

OK = ExecResult(0, b"accepting connections\n", b"")
NO = ExecResult(1, b"", b"no response\n")


def _two(condition: str, db: dict[str, Any] | None = None, required: bool = True) -> Any:
    return make_stack({"db": db or {}, "web": {"depends_on": {"db": {"condition": condition,
                                                                      "required": required}}}})


def _run(stack: Any, host: Any, **kwargs: Any) -> Run:
    return anyio.run(lambda: run_plan(up_plan(stack, host), stack, host, **kwargs))


HC = {"test": ["CMD", "pg_isready"], "interval": "2s", "timeout": "1s", "retries": 3}


def test_service_started_passes_once_the_dependency_runs() -> None:
    stack = _two("service_started")
    host = fake_for(stack)
    run = _run(stack, host)
    assert run.result.ok
    waits = [(e.name, e.status, e.message) for e in run.events if e.action == "wait"]
    assert waits == [("demo-db-1", "waiting", "service_started"), ("demo-db-1", "done", "started")]
    assert run.statuses("service:web:1", "start") == ["waiting", "working", "done"]


def test_service_healthy_probes_until_the_check_passes() -> None:
    stack = _two("service_healthy", {"healthcheck": HC})
    host = fake_for(stack)
    host.script_exec("db", NO, NO, OK)
    run = _run(stack, host)
    assert run.result.ok
    assert host.execs == [("demo-db-1", ("pg_isready",))] * 3
    assert run.clock.sleeps == [2.0, 2.0]  # the interval between probes, on the virtual clock
    assert host.calls_of("start_container") == ["demo-db-1", "demo-web-1"]
    assert [e.message for e in run.events if e.action == "wait" and e.status == "done"] == ["healthy"]


def test_unhealthy_dependency_fails_the_dependent_naming_the_service_and_last_output() -> None:
    stack = _two("service_healthy", {"healthcheck": HC})
    host = fake_for(stack)
    host.script_exec("db", NO)
    run = _run(stack, host)
    [failed] = run.result.failed
    assert failed.op == "start service:web:1"
    assert "service db is unhealthy" in failed.message and "3 times" in failed.message
    assert "no response" in failed.message
    assert len(host.execs) == 3
    assert host.containers["demo-web-1"].state == "created"


def test_failures_in_the_start_period_do_not_count() -> None:
    check = {**HC, "start_period": "10s", "start_interval": "1s", "retries": 2}
    stack = _two("service_healthy", {"healthcheck": check})
    host = fake_for(stack)
    host.script_exec("db", NO)
    run = _run(stack, host)
    assert not run.result.ok
    # probes at t=0..9 (start period, 1 s apart) do not count; then two failures, 2 s apart
    assert len(host.execs) == 10 + 2
    assert run.clock.sleeps == [1.0] * 10 + [2.0]


def test_healthy_without_a_healthcheck_is_an_error_that_says_what_to_do() -> None:
    stack = _two("service_healthy")
    run = _run(stack, fake_for(stack))
    assert "has no healthcheck" in run.result.failed[0].message
    assert "service_started" in run.result.failed[0].message


def test_a_dependency_that_exits_while_awaited_fails_at_once() -> None:
    stack = _two("service_healthy", {"healthcheck": HC})
    host = fake_for(stack)
    host.exits_on_start("db", 2)
    run = _run(stack, host)
    message = run.result.failed[0].message
    assert "demo-db-1 is exited (code 2)" in message and host.execs == []


def test_health_reported_by_the_host_is_trusted() -> None:
    stack = _two("service_healthy", {"healthcheck": HC})
    host = fake_for(stack)
    host.script_exec("db", NO)

    def healthy_on_start(method: str, target: str) -> None:
        if method == "start_container" and target == "demo-db-1":
            host.set_health(target, "healthy")

    host.hook = healthy_on_start
    run = _run(stack, host)
    assert run.result.ok and host.execs == []


def test_completed_successfully_waits_for_the_exit() -> None:
    stack = _two("service_completed_successfully")
    host = fake_for(stack)
    host.exits_on_start("db", 0, after_lists=3)
    run = _run(stack, host)
    assert run.result.ok
    assert run.clock.sleeps == [1.0, 1.0]  # polled until the exit showed
    assert host.containers["demo-db-1"].state == "exited"
    assert host.containers["demo-web-1"].state == "running"


def test_completed_with_a_failure_names_the_service_and_code() -> None:
    stack = _two("service_completed_successfully")
    host = fake_for(stack)
    host.exits_on_start("db", 3)
    run = _run(stack, host)
    [failed] = run.result.failed
    assert failed.op == "start service:web:1"
    assert failed.message == ("service db didn't complete successfully: container demo-db-1 exited with "
                              "code 3")


@pytest.mark.parametrize("condition",
                         ["service_started", "service_healthy", "service_completed_successfully"])
def test_an_optional_dependency_that_fails_is_a_warning(condition: str) -> None:
    stack = _two(condition, {"healthcheck": HC}, required=False)
    host = fake_for(stack)
    host.fail("create_container", "demo-db-1")
    run = _run(stack, host)
    assert [o.op for o in run.result.failed] == ["create service:db:1"]
    assert [o.op for o in run.result.skipped] == ["start service:db:1"]
    assert host.containers["demo-web-1"].state == "running"
    [warning] = run.result.warnings
    assert "optional dependency db not met" in warning and "demo-db-1 does not exist" in warning


def test_a_required_dependency_that_fails_skips_the_dependent() -> None:
    stack = _two("service_started")
    host = fake_for(stack)
    host.fail("start_container", "demo-db-1")
    run = _run(stack, host)
    assert [o.op for o in run.result.skipped] == ["start service:web:1"]  # made, as Compose does
    assert run.result.warnings == ()


def test_wait_timeout_bounds_the_wait() -> None:
    stack = _two("service_completed_successfully")
    host = fake_for(stack)
    host.exits_on_start("db", 0, after_lists=10**9)

    class Slow(ManualClock):
        async def sleep(self, seconds: float) -> None:
            await anyio.sleep(0.001)

    run = _run(stack, host, clock=Slow(), wait_timeout=0.01)
    assert "dependencies not ready after 0.01s" in run.result.failed[0].message


def test_health_settings_follow_docker_defaults_and_forms() -> None:
    assert HealthSettings.of(None) is None
    assert HealthSettings.of(Healthcheck(test=["NONE"])) is None
    assert HealthSettings.of(Healthcheck(test=["CMD", "true"], disable=True)) is None
    assert HealthSettings.of(Healthcheck(interval="5s")) is None  # the test is left to the image
    shell = HealthSettings.of(Healthcheck(test=["CMD-SHELL", "curl -f localhost || exit 1"]))
    assert shell == HealthSettings(argv=("/bin/sh", "-c", "curl -f localhost || exit 1"))
    assert (shell.interval, shell.timeout, shell.retries, shell.start_period) == (30.0, 30.0, 3, 0.0)
    custom = HealthSettings.of(Healthcheck(test=["CMD", "a", "b"], interval="1m", timeout="500ms",
                                           retries=7, start_period="3s", start_interval="250ms"))
    assert custom == HealthSettings(("a", "b"), 60.0, 0.5, 7, 3.0, 0.25)


def test_health_waiter_passes_the_timeout_to_the_probe_and_reports_a_probe_that_cannot_run() -> None:
    stack = make_stack({"db": {"healthcheck": {**HC, "retries": 1}}})
    host = fake_for(stack)
    _run(stack, host)
    host.fail("exec_in", "demo-db-1")
    waiter = HealthWaiter(host, ManualClock())
    with pytest.raises(WaitFailed, match="the probe could not run: injected failure"):
        anyio.run(lambda: waiter.healthy(stack, "db", ["demo-db-1"]))
    with pytest.raises(WaitFailed, match="has no container"):
        anyio.run(lambda: waiter.started("demo", "db", []))
