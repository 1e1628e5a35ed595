"""StackService end to end on a FakeHost: files in a temp dir, every verb in-process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from stackd.daemon.service import (
    DownOptions,
    ExecOptions,
    KillOptions,
    LogsOptions,
    PortOptions,
    PsOptions,
    RestartOptions,
    StackService,
    StartOptions,
    StatsOptions,
    StopOptions,
    UpOptions,
    default_host,
)
from stackd.drivers.cgroups.usage import CgroupUsage
from stackd.drivers.fakehost import FakeHost
from stackd.drivers.host import ExecResult
from stackd.errors import SpecError, StackdError
from stackd.execute import Event, ManualClock
from stackd.observe import LogEntry
from stackd.spec.options import ProjectOptions

T = TypeVar("T")

STACK = """\
name: demo
services:
  db:
    image: db:1
    volumes: [data:/var/lib/db]
    healthcheck: {test: [CMD, ready], interval: 1s, retries: 2}
  web:
    image: web:1
    environment: {MODE: "${MODE:-dev}"}
    ports: ["8080:80"]
    depends_on: {db: {condition: service_healthy}}
  cache:
    image: cache:1
volumes:
  data: {}
"""


QUESTIONS = {"image_id", "exec_in", "host_problems", "port_conflicts", "record_health"}
"""host calls that change nothing (a probe in a container changes nothing that matters here)"""


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        (tmp_path / "stack.yaml").write_text(STACK)
        self.host = FakeHost(images={"db:1": "i-db", "web:1": "i-web", "cache:1": "i-cache"},
                             log_dir=tmp_path)
        self.clock = ManualClock()
        self.warnings: list[str] = []
        self.events: list[Event] = []
        self.service = StackService(self.host, clock=self.clock, warn=self.warnings.append)

    def project(self, **environ: str) -> ProjectOptions:
        return ProjectOptions(cwd=str(self.dir), environ=environ)

    def run(self, call: Callable[[], Awaitable[T]]) -> T:
        return anyio.run(call)

    def up(self, options: UpOptions | None = None, **environ: str) -> Any:
        return self.run(lambda: self.service.up(self.project(**environ), options, self.events.append))

    def changing(self) -> list[tuple[str, str]]:
        return [(m, t) for m, t in self.host.calls
                if not m.startswith("list_") and m not in QUESTIONS]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_up_twice_the_second_does_nothing_and_says_so(env: Env) -> None:
    first = env.up()
    assert first.ok and first.changed
    assert {c.name: c.state for c in env.host.containers.values()} == {
        "demo-cache-1": "running", "demo-db-1": "running", "demo-web-1": "running"}
    assert env.service.applied == [first]
    env.host.calls.clear()
    second = env.up()
    assert not second.changed and second.ok and second.result.outcomes == ()
    assert second.plan.render() == "nothing to do for demo\n"
    assert env.changing() == []


def test_changing_one_service_recreates_only_it(env: Env) -> None:
    env.up()
    env.host.calls.clear()
    applied = env.up(MODE="prod")
    assert applied.ok
    assert {op.resource for op in applied.plan.ops} == {"service:web:1"}
    assert "config hash changed: environment" in applied.plan.render()
    assert env.changing() == [("stop_container", "demo-web-1"), ("remove_container", "demo-web-1"),
                              ("create_container", "demo-web-1"), ("start_container", "demo-web-1")]


def test_dry_run_plans_against_the_observed_host_and_changes_nothing(env: Env) -> None:
    env.up()
    env.host.calls.clear()
    applied = env.up(UpOptions(dry_run=True), MODE="prod")
    assert applied.result is None
    assert [op.id for op in applied.plan.ops] == ["stop service:web:1", "remove service:web:1",
                                                  "create service:web:1", "start service:web:1"]
    assert env.changing() == []


def test_down_removes_everything_and_volumes_only_with_v(env: Env) -> None:
    env.up()
    down = env.run(lambda: env.service.down(env.project(), DownOptions()))
    assert down.ok
    assert env.host.containers == {} and env.host.networks == {} and env.host.groups == {}
    assert list(env.host.volumes) == [("demo", "demo_data")]
    env.up()
    env.run(lambda: env.service.down(env.project(), DownOptions(volumes=True)))
    assert env.host.volumes == {}
    again = env.run(lambda: env.service.down(env.project(), DownOptions()))
    assert not again.changed


def test_down_by_project_name_without_a_file(env: Env, tmp_path_factory: pytest.TempPathFactory) -> None:
    env.up()
    elsewhere = tmp_path_factory.mktemp("no-stack-file")
    named = ProjectOptions(cwd=str(elsewhere), project_name="demo")
    env.run(lambda: env.service.down(named, DownOptions()))
    assert env.host.containers == {}
    with pytest.raises(SpecError, match="no stack file found"):
        env.run(lambda: env.service.down(ProjectOptions(cwd=str(elsewhere)), DownOptions()))


def test_up_with_an_unknown_service_is_a_spec_error(env: Env) -> None:
    with pytest.raises(SpecError, match="no such service: nope"):
        env.up(UpOptions(services=("nope",)))
    assert env.host.containers == {}


def test_up_reports_failures_and_orphans_warn(env: Env) -> None:
    env.host.fail("start_container", "demo-cache-1")
    applied = env.up()
    assert not applied.ok and [o.op for o in applied.result.failed] == ["start service:cache:1"]
    (env.dir / "stack.yaml").write_text(STACK.replace("  cache:\n    image: cache:1\n", ""))
    env.up()
    assert "orphan container demo-cache-1 (use --remove-orphans)" in env.warnings


def test_up_wait_waits_for_health_and_reports_what_is_not_ready(env: Env) -> None:
    env.host.script_exec("demo-db-1", ExecResult(0, b"", b""))
    applied = env.up(UpOptions(wait=True))
    assert applied.ok and applied.wait_errors == ()
    ready = {e.name: e.message for e in env.events if e.action == "wait" and e.status == "done"}
    assert ready == {"demo-db-1": "healthy", "demo-cache-1": "running", "demo-web-1": "running"}
    env.host.set_state("demo-cache-1", "exited", 1)
    applied = env.up(UpOptions(wait=True, services=("web",)))
    assert applied.ok  # cache is not in scope
    env.host.kill_container("demo-web-1", "SIGKILL")
    env.host.exits_on_start("web", 1)
    applied = env.up(UpOptions(wait=True))
    assert not applied.ok and any("demo-web-1 is exited" in e for e in applied.wait_errors)


def test_ps_lists_live_containers_or_all(env: Env) -> None:
    env.up()
    env.host.set_state("demo-cache-1", "exited", 0)
    rows = env.run(lambda: env.service.ps(env.project()))
    assert [r.name for r in rows] == ["demo-db-1", "demo-web-1"]
    every = env.run(lambda: env.service.ps(env.project(), PsOptions(all=True)))
    assert [r.name for r in every] == ["demo-cache-1", "demo-db-1", "demo-web-1"]
    web = env.run(lambda: env.service.ps(env.project(), PsOptions(services=("web",))))
    assert web[0].ports == ("0.0.0.0:8080->80/tcp",)
    with pytest.raises(SpecError):
        env.run(lambda: env.service.ps(env.project(), PsOptions(services=("nope",))))


def test_stop_start_restart_follow_dependencies(env: Env) -> None:
    env.up()
    env.host.calls.clear()
    stopped = env.run(lambda: env.service.stop(env.project(), StopOptions(timeout=2)))
    assert stopped.ok
    stops = env.host.calls_of("stop_container")
    assert stops.index("demo-web-1") < stops.index("demo-db-1")
    assert env.host.stopped_with["demo-db-1"] == (2, None)
    env.host.calls.clear()
    started = env.run(lambda: env.service.start(env.project(), StartOptions(services=("db", "web"))))
    assert started.ok
    assert env.host.calls_of("start_container") == ["demo-db-1", "demo-web-1"]
    assert env.host.containers["demo-cache-1"].state == "exited"
    env.host.calls.clear()
    restarted = env.run(lambda: env.service.restart(env.project(), RestartOptions()))
    assert restarted.ok
    assert sorted(env.host.calls_of("stop_container")) == ["demo-db-1", "demo-web-1"]
    assert sorted(env.host.calls_of("start_container")) == ["demo-cache-1", "demo-db-1", "demo-web-1"]
    assert env.host.containers["demo-web-1"].restarts == 2


def test_start_of_a_service_without_containers_says_to_run_up(env: Env) -> None:
    with pytest.raises(StackdError, match="service web has no container to start"):
        env.run(lambda: env.service.start(env.project(), StartOptions(services=("web",))))


def test_kill_signals_running_containers(env: Env) -> None:
    env.up()
    only_web = KillOptions(services=("web",), signal="SIGTERM")
    result = env.run(lambda: env.service.kill(env.project(), only_web))
    assert result.ok and result.done == ("kill service:web:1",)
    assert env.host.containers["demo-web-1"].exit_code == 143
    assert env.host.containers["demo-db-1"].state == "running"
    env.host.fail("kill_container", "demo-db-1")
    result = env.run(lambda: env.service.kill(env.project(), KillOptions()))
    assert [o.op for o in result.failed] == ["kill service:db:1"]


def test_exec_runs_in_the_numbered_container(env: Env) -> None:
    env.up()
    env.host.script_exec("demo-web-1", ExecResult(3, b"out", b"err"))
    result = env.run(lambda: env.service.exec(env.project(), ExecOptions(service="web", command=("ls", "/"))))
    assert result == ExecResult(3, b"out", b"err")
    assert env.host.execs[-1] == ("demo-web-1", ("ls", "/"))
    with pytest.raises(StackdError, match="no container number 2"):
        env.run(lambda: env.service.exec(env.project(), ExecOptions(service="web", command=("ls",), index=2)))
    env.host.set_state("demo-web-1", "exited", 0)
    with pytest.raises(StackdError, match="not running"):
        env.run(lambda: env.service.exec(env.project(), ExecOptions(service="web", command=("ls",))))


def test_port_finds_the_published_address(env: Env) -> None:
    env.up()
    found = env.run(lambda: env.service.port(env.project(), PortOptions(service="web", port=80)))
    assert found == "0.0.0.0:8080"
    with pytest.raises(StackdError, match="port 81/tcp is not published"):
        env.run(lambda: env.service.port(env.project(), PortOptions(service="web", port=81)))


def test_stats_samples_twice_on_the_clock(env: Env) -> None:
    env.up()
    env.host.script_usage("demo-db-1", CgroupUsage(cpu_ns=0, memory_bytes=10),
                          CgroupUsage(cpu_ns=500_000_000, memory_bytes=20, pids=2))
    env.host.script_usage("group:default", CgroupUsage(cpu_ns=0), CgroupUsage(cpu_ns=700_000_000, pids=5))
    rows = env.run(lambda: env.service.stats(env.project(), StatsOptions(services=("db",), interval=1.0)))
    assert [(r.name, r.kind, r.cpu_percent, r.memory_bytes, r.pids) for r in rows] == [
        ("demo-db-1", "container", 50.0, 20, 2), ("default", "group", 70.0, None, 5)]
    assert env.clock.sleeps[-1] == 1.0


def test_logs_of_chosen_services(env: Env) -> None:
    env.up()
    env.host.write_log("demo-web-1", "GET /", when=datetime(2024, 1, 1, 0, 0, 2, tzinfo=UTC))
    env.host.write_log("demo-db-1", "ready", when=datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC))
    got: list[LogEntry] = []
    env.run(lambda: env.service.logs(env.project(), LogsOptions(), got.append))
    assert [(e.container, e.line.text) for e in got] == [("demo-db-1", "ready"), ("demo-web-1", "GET /")]
    got.clear()
    env.run(lambda: env.service.logs(env.project(), LogsOptions(services=("web",)), got.append))
    assert [e.container for e in got] == ["demo-web-1"]


def test_loader_warnings_reach_the_sink(env: Env) -> None:
    (env.dir / "stack.yaml").write_text(STACK.replace("${MODE:-dev}", "${UNSET_VARIABLE}"))
    env.up()
    assert any("UNSET_VARIABLE" in w for w in env.warnings)


def test_default_host_says_clearly_when_there_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from stackd.daemon import service

    monkeypatch.setattr(service, "REALHOST_MODULE", "stackd.drivers.no_such_module_here")
    with pytest.raises(StackdError, match="no host driver"):
        default_host()
