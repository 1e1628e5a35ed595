"""The reconciler over a FakeHost and a real sqlite store: what it repairs, how it restarts per
policy, that it waits for depends_on on restarts too, that triggers coalesce, that one project's
trouble does not stall another, and that the API's verbs preempt a waiting pass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from stackd.daemon.manager import Manager
from stackd.daemon.options import DownOptions, StopOptions, UpOptions
from stackd.drivers.fakehost import FakeHost
from stackd.drivers.host import ExecResult
from stackd.reconcile import Reconciler, Settings
from stackd.spec.loader import load
from stackd.spec.models import Stack
from stackd.spec.options import ProjectOptions
from stackd.store import Store

STACK = """\
name: {name}
services:
  web:
    image: web:1
    restart: always
    depends_on:
      db: {{condition: service_healthy}}
  db:
    image: db:1
    restart: unless-stopped
    healthcheck: {{test: ["CMD", "check"], interval: 1s, retries: 1}}
  once:
    image: web:1
    restart: "no"
  flaky:
    image: web:1
    restart: on-failure:2
"""
FAST = Settings(resync=0.05, deep_every=0.2, wait_timeout=5.0, health_tick=0.05)


def stack_of(tmp_path: Path, name: str = "demo", text: str = STACK) -> Stack:
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    (d / "stack.yaml").write_text(text.format(name=name))
    return load(ProjectOptions(cwd=str(d), environ={})).stack


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.host = FakeHost(images={"web:1": "i-web", "db:1": "i-db"}, log_dir=tmp_path)
        self.store = Store(tmp_path / "stackd.db")
        self.rec = Reconciler(self.host, self.store, settings=FAST)
        self.manager = Manager(self.host, self.store, self.rec)

    def run(self, body: Callable[[World], Awaitable[None]]) -> None:
        async def main() -> None:
            async with anyio.create_task_group() as tg:
                await tg.start(self.rec.run)
                with anyio.fail_after(20):
                    await body(self)
                tg.cancel_scope.cancel()

        anyio.run(main)

    def state(self, name: str) -> str:
        return self.host.containers[name].state

    async def until(self, check: Callable[[], bool], what: str) -> None:
        with anyio.fail_after(10):
            while not check():
                await anyio.sleep(0.01)

    def kinds(self, name: str) -> list[str]:
        return [e.kind for e in self.store.events_since(0) if e.data.get("name") == name]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_killed_container_is_restarted_per_its_policy(world: World) -> None:
    async def body(w: World) -> None:
        applied = await w.manager.up(stack_of(w.tmp), UpOptions())
        assert applied.ok
        await w.rec.settled("demo")  # the daemon has looked at what runs
        for name in ("demo-web-1", "demo-db-1", "demo-once-1"):
            w.host.kill_container(name, "SIGKILL")
        await w.until(lambda: w.state("demo-web-1") == "running" and w.state("demo-db-1") == "running",
                      "web and db back")
        await anyio.sleep(0.3)  # several passes: `restart: "no"` stays down
        assert w.state("demo-once-1") == "exited"
        kept = w.store.container("demo-web-1")
        assert kept is not None and kept.restarts == 1
        assert "died" in w.kinds("demo-web-1") and "restarting" in w.kinds("demo-web-1")
        assert w.kinds("demo-once-1").count("died") == 1 and "restarting" not in w.kinds("demo-once-1")

    world.run(body)


def test_on_failure_gives_up_after_its_attempts_and_says_so_once(world: World) -> None:
    world.host.exits_on_start("flaky", code=3, after_lists=1)

    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp), UpOptions(services=("flaky",)))
        await w.until(lambda: "gave-up" in w.kinds("demo-flaky-1"), "gave up")
        await anyio.sleep(0.3)
        assert w.state("demo-flaky-1") == "exited"
        assert w.host.calls_of("start_container").count("demo-flaky-1") == 3  # up, then 2 restarts
        assert w.kinds("demo-flaky-1").count("gave-up") == 1

    world.run(body)


def test_a_removed_container_is_recreated_and_a_stopped_one_stays_stopped(world: World) -> None:
    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp), UpOptions())
        await w.manager.stop("demo", None, StopOptions(services=("web",)))
        w.host.stop_container("demo-db-1", timeout=1)
        w.host.remove_container("demo-db-1", volumes=False)  # behind stackd's back
        await w.until(lambda: "demo-db-1" in w.host.containers and w.state("demo-db-1") == "running",
                      "db recreated")
        await anyio.sleep(0.3)
        assert w.state("demo-web-1") == "exited"  # `stack stop` is respected, even with restart: always

    world.run(body)


def test_a_restart_waits_for_its_dependencies_conditions(world: World) -> None:
    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp), UpOptions(services=("web",)))
        w.host.script_exec("db", ExecResult(1, b"", b"not ready"))  # db's healthcheck now fails
        w.host.kill_container("demo-db-1", "SIGKILL")
        w.host.kill_container("demo-web-1", "SIGKILL")
        await w.until(lambda: w.state("demo-db-1") == "running", "db back")
        await anyio.sleep(0.5)
        assert w.state("demo-web-1") == "exited"  # held back: db is not healthy
        w.host.script_exec("db", ExecResult(0, b"", b""))
        await w.until(lambda: w.state("demo-web-1") == "running", "web back once db is healthy")

    world.run(body)


def test_drift_the_host_repairs_is_journaled(world: World) -> None:
    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp), UpOptions(services=("once",)))
        w.host.drift("network:demo_default", "recreated bridge stk-abc", "bridge missing", project="demo")
        w.rec.trigger("demo")
        await w.until(lambda: any(e.kind == "drift" for e in w.store.events_since(0)), "drift said")
        drift = [e for e in w.store.events_since(0) if e.kind == "drift"]
        assert [(e.resource, e.message) for e in drift] == [
            ("network:demo_default", "recreated bridge stk-abc (bridge missing)")]

    world.run(body)


def test_one_projects_trouble_never_stalls_another(world: World) -> None:
    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp, "aaa"), UpOptions(services=("once",)))
        await w.manager.up(stack_of(w.tmp, "bbb"), UpOptions(services=("web",)))
        w.host.fail("repair_drift", None, times=None)  # every pass of every project fails now...
        w.host.fail("list_containers", "bbb", times=None)  # ...and bbb cannot even be looked at
        w.host._failures.pop(("repair_drift", None))
        w.host.kill_container("aaa-once-1", "SIGKILL")
        w.host.remove_container("aaa-once-1", volumes=False)
        await w.until(lambda: "aaa-once-1" in w.host.containers, "aaa repaired while bbb fails")
        errors = [e for e in w.store.events_since(0) if e.kind == "error"]
        assert [e.project for e in errors] == ["bbb"]  # said once, not once per pass

    world.run(body)


def test_down_preempts_a_waiting_pass_and_nothing_comes_back(world: World) -> None:
    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp), UpOptions(services=("web",)))
        w.host.script_exec("db", ExecResult(1, b"", b"not ready"))
        w.host.kill_container("demo-db-1", "SIGKILL")
        w.host.kill_container("demo-web-1", "SIGKILL")
        await anyio.sleep(0.3)  # a pass now waits for db to be healthy before starting web
        with anyio.fail_after(3):
            down = await w.manager.down("demo", None, DownOptions())
        assert down.ok
        await anyio.sleep(0.3)
        assert w.host.containers == {}
        assert w.store.latest_stack("demo") is None and "demo" not in w.rec.projects

    world.run(body)


def test_triggers_coalesce_while_a_pass_runs(world: World) -> None:
    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp), UpOptions(services=("once",)))
        state = w.rec.projects["demo"]
        await w.rec.settled("demo")
        before = state.passes
        async with state.lock:  # a pass is "running": triggers pile up
            for _ in range(50):
                w.rec.trigger("demo")
        await w.rec.settled("demo")
        await w.rec.settled("demo")
        assert state.passes - before <= 3  # not 50

    world.run(body)


def test_a_restarted_daemon_adopts_what_runs_without_restarting_it(world: World, tmp_path: Path) -> None:
    async def first(w: World) -> None:
        await w.manager.up(stack_of(w.tmp), UpOptions())

    world.run(first)
    starts = len(world.host.calls_of("start_container"))
    again = Reconciler(world.host, world.store, settings=FAST)
    world.rec = again
    world.manager = Manager(world.host, world.store, again)

    async def second(w: World) -> None:
        await w.until(lambda: "demo" in w.rec.projects and w.rec.projects["demo"].passes >= 3, "passes")

    world.run(second)
    assert len(world.host.calls_of("start_container")) == starts
    assert len(world.host.calls_of("create_container")) == 4


UNHEALTHY = """\
name: {name}
services:
  api:
    image: web:1
    labels: {{io.stackd.restart-on-unhealthy: "true"}}
    healthcheck: {{test: ["CMD", "check"], interval: 1s, retries: 1}}
  other:
    image: web:1
    healthcheck: {{test: ["CMD", "check"], interval: 1s, retries: 1}}
"""


def test_a_service_that_opts_in_is_restarted_when_it_turns_unhealthy(world: World) -> None:
    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp, text=UNHEALTHY), UpOptions())
        await w.until(lambda: w.host.containers["demo-api-1"].health == "healthy", "healthy first")
        starts = w.host.calls_of("start_container").count("demo-api-1")
        w.host.script_exec("api", ExecResult(1, b"", b"broken"))
        w.host.script_exec("other", ExecResult(1, b"", b"broken"))
        await w.until(lambda: w.host.calls_of("start_container").count("demo-api-1") > starts, "restarted")

        def health() -> list[tuple[object, str]]:
            return [(e.data.get("name"), e.message) for e in w.store.events_since(0) if e.kind == "health"]

        # other's probe may fall due a moment after api's
        await w.until(lambda: ("demo-other-1", "now unhealthy") in health(), "other unhealthy")
        await anyio.sleep(0.2)
        assert w.host.calls_of("start_container").count("demo-other-1") == 1  # did not opt in
        assert any(e.kind == "restarting" and e.message.startswith("unhealthy")
                   for e in w.store.events_since(0))

    world.run(body)


def test_a_quiet_host_is_not_planned_again_until_something_changes(world: World,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from stackd.plan import plan as real_plan

    planned: list[str] = []

    def counting(stack: Stack, *args: object, **kwargs: object) -> object:
        planned.append(stack.name)
        return real_plan(stack, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("stackd.reconcile.passes.plan", counting)

    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp, text=STACK.replace("restart: \"no\"", "restart: always")),
                           UpOptions())
        await anyio.sleep(0.3)  # passes go by
        before, passes_before = len(planned), w.rec.projects["demo"].passes
        await anyio.sleep(0.5)
        assert w.rec.projects["demo"].passes >= passes_before + 5
        assert len(planned) == before  # nothing changed: nothing planned
        w.host.stop_container("demo-once-1", timeout=1)
        w.host.remove_container("demo-once-1", volumes=False)
        await w.until(lambda: "demo-once-1" in w.host.containers and w.state("demo-once-1") == "running",
                      "once recreated")
        assert len(planned) > before

    world.run(body)


def test_no_health_rounds_run_while_no_container_has_a_healthcheck(world: World,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rounds: list[str] = []
    real = Reconciler._probe

    async def counting(self: Reconciler, state: object) -> object:
        rounds.append(getattr(state, "name", ""))
        return await real(self, state)  # type: ignore[arg-type]

    monkeypatch.setattr(Reconciler, "_probe", counting)
    plain = "name: {name}\nservices:\n  web:\n    image: web:1\n"

    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp, text=plain), UpOptions())
        await anyio.sleep(0.5)  # ten health ticks
        assert rounds == []
        await w.manager.up(stack_of(w.tmp), UpOptions(services=("db",)))  # db has a healthcheck
        await w.until(lambda: bool(rounds), "health rounds once db runs")
        await w.manager.down("demo", None, DownOptions())
        await anyio.sleep(0.1)
        assert not [t for t in anyio.get_running_tasks() if t.name and t.name.startswith("health ")]
        assert "demo" not in w.rec._ctx.desired and "demo" not in w.rec._ctx.quiet  # nothing kept of it

    world.run(body)


class StampedHost(FakeHost):
    """A fake host whose stamp the test sets (None: it cannot tell)."""

    mark: object = 1
    stamps = 0

    def stamp(self, project: str) -> object:
        self.stamps += 1
        return self.mark


def test_a_settled_project_is_looked_at_through_its_stamp(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.host = StampedHost(images={"web:1": "i-web", "db:1": "i-db"}, log_dir=tmp_path)
    world.rec = Reconciler(world.host, world.store, settings=Settings(resync=0.05, table_every=60,
                                                                      deep_every=60, wait_timeout=5.0))
    world.manager = Manager(world.host, world.store, world.rec)
    host = world.host

    def looks() -> int:
        return host.calls_of("list_containers").count("demo")

    async def body(w: World) -> None:
        await w.manager.up(stack_of(w.tmp, text=STACK.replace("restart: \"no\"", "restart: always")),
                           UpOptions())
        await anyio.sleep(0.2)
        state = w.rec.projects["demo"]
        before, passes, stamps = looks(), state.passes, host.stamps
        await anyio.sleep(0.3)  # resyncs: the stamp is as the last quiet pass saw it
        assert host.stamps >= stamps + 4 and looks() == before and state.passes == passes
        assert state.settled and state.records  # what was seen stands
        host.mark = 2  # something changed on the host: the next periodic pass looks
        await w.until(lambda: looks() > before, "a whole pass")
        before = looks()
        await anyio.sleep(0.3)
        assert looks() == before
        w.rec.trigger("demo", table=True)  # as a link event asks: a table check looks at everything
        await w.until(lambda: looks() > before, "a table check")
        await anyio.sleep(0.1)
        before = looks()
        host.mark = None  # a host that cannot tell: every pass looks
        await w.until(lambda: looks() >= before + 3, "whole passes")
        host.mark = 3
        await anyio.sleep(0.1)
        before = looks()
        w.host.kill_container("demo-web-1", "SIGKILL")
        w.rec.trigger("demo")  # what the host watch does on an exit: a pass asked for looks
        await w.until(lambda: w.state("demo-web-1") == "running", "web restarted")
        assert looks() > before

    world.run(body)
