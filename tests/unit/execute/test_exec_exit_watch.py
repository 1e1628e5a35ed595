"""With ``exit_watch``, a start of ``up`` does not hold its dependents back for the watch: they
start at once, and a container that has exited with a failure status by the end of the watch
fails its own start (with its last output); one still running, or done with status 0, does not."""

from __future__ import annotations

from pathlib import Path

import anyio

from stackd.drivers.fakehost import FakeHost
from stackd.execute import Event, HealthWaiter, Result, SystemClock, execute
from stackd.plan import UpOptions
from tests.unit.execute.support import fake_for, make_stack, up_plan

STACK = make_stack({"db": {}, "web": {"depends_on": {"db": {"condition": "service_started"}}},
                    "job": {}})


def _up(host: FakeHost, options: UpOptions | None = None, events: list[Event] | None = None) -> Result:
    the_plan = up_plan(STACK, host, options)
    clock = SystemClock()  # the watch really waits 0.2 s: the others go on meanwhile
    sink = events if events is not None else []

    async def main() -> Result:
        return await execute(the_plan, STACK, host, limiter=anyio.CapacityLimiter(4), progress=sink.append,
                             health=HealthWaiter(host, clock, poll_interval=1.0), clock=clock,
                             exit_watch=0.2)

    return anyio.run(main)


def test_a_container_that_exits_at_once_fails_its_start_after_the_watch(tmp_path: Path) -> None:
    host = fake_for(STACK, log_dir=tmp_path)
    host.exits_on_start("db", 3)
    host.exits_on_start("job", 0)
    host.hook = lambda method, target: host.write_log(target, "FATAL: bad config") if (
        method == "start_container" and target == "demo-db-1") else None
    events: list[Event] = []
    result = _up(host, events=events)
    failed = {o.op: o.message for o in result.failed}
    assert list(failed) == ["start service:db:1"]
    assert failed["start service:db:1"].startswith("service db: container demo-db-1 exited at once with "
                                                   "status 3; its last output:")
    assert "FATAL: bad config" in failed["start service:db:1"]
    # web did not wait for db's watch: it was started before db's start was found failed
    assert "start service:web:1" in result.done and "start service:job:1" in result.done
    said = [(e.name, e.action, e.status) for e in events]
    assert said.index(("demo-web-1", "start", "done")) < said.index(("demo-db-1", "start", "error"))


def test_the_host_is_asked_not_to_watch_and_running_containers_pass() -> None:
    host = fake_for(STACK)
    seen: list[str] = []
    real_start = host.start_container

    def start(name: str, *, watch_exit: bool = True) -> None:
        seen.append(f"{name}:{watch_exit}")
        real_start(name, watch_exit=watch_exit)

    host.start_container = start  # type: ignore[method-assign]
    result = _up(host)
    assert result.ok
    assert sorted(seen) == ["demo-db-1:False", "demo-job-1:False", "demo-web-1:False"]
