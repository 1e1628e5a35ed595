"""The executor on a FakeHost: order, parallelism within the limit, failures, cancellation."""

from __future__ import annotations

import anyio
import pytest

from stackd.drivers.fakehost import FakeHost
from stackd.errors import PermanentDriverError
from stackd.execute import ManualClock
from stackd.observe import observe
from stackd.plan import (
    CreateContainer,
    EnsureImage,
    Plan,
    RemoveContainer,
    StartContainer,
    StopContainer,
    plan_down,
)
from stackd.plan.assemble import assemble
from tests.unit.execute.support import Gate, fake_for, make_stack, run_plan, until, up, up_plan

CALL_OF = {"CreateNetwork": "ensure_network", "CreateVolume": "ensure_volume", "CreateGroup": "ensure_group",
           "CreateContainer": "create_container", "StartContainer": "start_container",
           "StopContainer": "stop_container", "RemoveContainer": "remove_container"}


def _target(op: object) -> str:
    for attr in ("name", "group"):
        value = getattr(op, attr, None)
        if isinstance(value, str):
            return value
    raise AssertionError(op)


def test_every_op_runs_once_after_the_ops_it_waits_for() -> None:
    stack = make_stack({
        "db": {"volumes": [{"type": "volume", "source": "data", "target": "/data"}]},
        "cache": {},
        "web": {"depends_on": {"db": {"condition": "service_started"}, "cache": {}},
                "ports": [{"target": 80, "published": "8080"}]},
    }, volumes={"data": {}})
    host = fake_for(stack)
    run = up(stack, host)
    assert run.result.ok and len(run.result.done) == len(run.plan.ops)
    position = {call: i for i, call in enumerate(host.calls)}
    for op in run.plan.ops:
        mine = position[(CALL_OF[type(op).__name__], _target(op))]
        for dep in op.after:
            d = run.plan.get(dep)
            assert position[(CALL_OF[type(d).__name__], _target(d))] < mine, f"{op.id} ran before {dep}"
    assert {c.name: c.state for c in host.containers.values()} == {
        "demo-cache-1": "running", "demo-db-1": "running", "demo-web-1": "running"}
    assert host.calls_of("start_container").index("demo-web-1") == 2  # after both dependencies


def _independent(count: int) -> tuple[FakeHost, Plan, object]:
    stack = make_stack({f"s{i}": {} for i in range(count)})
    host = fake_for(stack)
    return host, up_plan(stack, host), stack


@pytest.mark.parametrize("limit", [3, 10])
def test_independent_ops_run_in_parallel_up_to_the_limit(limit: int) -> None:
    host, the_plan, stack = _independent(10)
    gate = Gate("create_container")
    host.hook = gate

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: run_plan(the_plan, stack, host, limit=limit))  # type: ignore[arg-type]
            await until(lambda: host.in_flight == limit)
            for _ in range(20):  # give a call above the limit every chance to start
                await anyio.sleep(0)
            assert host.in_flight == limit
            gate.release()

    anyio.run(main)
    assert host.max_in_flight == limit
    assert len(host.calls_of("create_container")) == 10


def test_a_failure_skips_its_dependents_and_independent_branches_finish() -> None:
    stack = make_stack({"db": {}, "web": {"depends_on": {"db": {}}}, "cache": {}})
    host = fake_for(stack)
    host.fail("create_container", "demo-db-1", PermanentDriverError("disk full"))
    run = up(stack, host)
    failed = {o.op: o.message for o in run.result.failed}
    skipped = {o.op: o.message for o in run.result.skipped}
    assert failed == {"create service:db:1": "disk full"}
    dependents = ("start service:db:1", "create service:web:1", "start service:web:1")
    assert skipped == dict.fromkeys(dependents, "skipped: create service:db:1 failed")
    assert "start service:cache:1" in run.result.done
    assert host.containers["demo-cache-1"].state == "running"
    assert "demo-web-1" not in host.containers
    assert not run.result.ok
    assert run.statuses("service:db:1", "create") == ["working", "error"]
    assert run.statuses("service:web:1", "start") == ["error"]


def test_unexpected_exceptions_fail_the_op_with_their_class_name() -> None:
    stack = make_stack({"db": {}})
    host = fake_for(stack)
    host.fail("start_container", error=RuntimeError("boom"))  # type: ignore[arg-type]
    run = up(stack, host)
    assert [(o.op, o.message) for o in run.result.failed] == [("start service:db:1", "RuntimeError: boom")]


def test_missing_image_check_fails_with_a_hint_and_build_builds() -> None:
    stack = make_stack({"db": {}, "web": {"image": "web:2", "build": {"context": "."}}})
    host = FakeHost(images={})
    run = up(stack, host)
    messages = {o.op: o.message for o in run.result.failed}
    assert "image db:1 is not in stackd's store and the service has no build section" in messages[
        "ensure image:db"]
    assert "service db" in messages["ensure image:db"]
    assert "start service:web:1" in run.result.done
    assert host.calls_of("build_image") == ["web:2"]
    assert isinstance(run.plan.get("ensure image:web"), EnsureImage)


def test_stop_uses_the_services_grace_period_and_signal_unless_the_plan_says() -> None:
    stack = make_stack({"db": {"stop_grace_period": "1m30s", "stop_signal": "SIGINT"}, "web": {}})
    host = fake_for(stack)
    up(stack, host)
    observed = observe("demo", host)
    anyio.run(lambda: run_plan(plan_down(stack, observed), stack, host))
    assert host.stopped_with == {"demo-db-1": (90.0, "SIGINT"), "demo-web-1": (10.0, None)}
    assert host.containers == {}
    up(stack, host)
    from stackd.plan import DownOptions

    anyio.run(lambda: run_plan(plan_down(stack, observe("demo", host), DownOptions(timeout=3)), stack, host))
    assert host.stopped_with["demo-db-1"] == (3, "SIGINT")


def test_down_without_a_stack_removes_by_host_names() -> None:
    stack = make_stack({"db": {}})
    host = fake_for(stack)
    up(stack, host)
    run = anyio.run(lambda: run_plan(plan_down(None, observe("demo", host)), None, host))
    assert run.result.ok
    assert host.containers == {} and host.networks == {} and host.groups == {}


def test_a_create_without_its_stack_is_an_internal_error_not_a_crash() -> None:
    op = CreateContainer(resource="service:db:1", cause="x", service="db", number=1, name="demo-db-1",
                         image="db:1", config_hash="h", config_parts={})
    run = anyio.run(lambda: run_plan(assemble("demo", [op]), None, FakeHost()))
    assert "needs the stack it was planned from" in run.result.failed[0].message


def test_events_carry_names_kinds_and_the_clock_time() -> None:
    stack = make_stack({"db": {}})
    clock = ManualClock()
    clock.advance(42)
    host = fake_for(stack)
    run = anyio.run(lambda: run_plan(up_plan(stack, host), stack, host, clock=clock))
    start = [e for e in run.events if e.resource == "service:db:1" and e.action == "start"]
    assert [e.status for e in start] == ["working", "done"]
    assert start[-1].name == "demo-db-1" and start[-1].kind == "Container"
    assert start[-1].time == clock.wall()
    net = [e for e in run.events if e.resource == "network:default"][-1]
    assert (net.kind, net.name, net.action, net.status) == ("Network", "demo_default", "create", "done")
    assert net.to_dict()["kind"] == "Network"


def test_cancellation_lets_the_running_call_finish_and_starts_nothing_more() -> None:
    stack = make_stack({"db": {}, "web": {"depends_on": {"db": {}}}})
    host = fake_for(stack)
    the_plan = up_plan(stack, host)
    gate = Gate("create_container")
    host.hook = gate
    seen: dict[str, object] = {}

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            scope = anyio.CancelScope()

            async def executing() -> None:
                with scope:
                    seen["run"] = await run_plan(the_plan, stack, host)
                seen["cancelled"] = scope.cancelled_caught

            tg.start_soon(executing)
            await until(lambda: host.in_flight == 1)
            scope.cancel()
            for _ in range(20):
                await anyio.sleep(0)
            assert "cancelled" not in seen  # the call in its thread is not abandoned
            gate.release()

    anyio.run(main)
    assert seen == {"cancelled": True}
    assert host.in_flight == 0
    assert host.calls_of("create_container") == ["demo-db-1"]  # the call that ran completed ...
    assert host.containers["demo-db-1"].state == "created"
    assert host.calls_of("start_container") == []  # ... and nothing after it started


def test_ops_are_not_started_twice_and_plan_order_is_kept_in_the_result() -> None:
    stack = make_stack({"a": {}, "b": {}})
    host = fake_for(stack)
    run = up(stack, host)
    assert [o.op for o in run.result.outcomes] == [op.id for op in run.plan.ops]
    assert sorted(host.calls_of("start_container")) == ["demo-a-1", "demo-b-1"]
    again = up(stack, host)
    assert again.plan.empty and again.result.outcomes == ()


def test_recreate_stops_removes_creates_and_starts_in_that_order() -> None:
    stack = make_stack({"db": {"environment": {"A": "1"}}})
    host = fake_for(stack)
    up(stack, host)
    changed = make_stack({"db": {"environment": {"A": "2"}}})
    run = up(changed, host)
    kinds = [type(run.plan.get(i)) for i in run.result.done]
    assert kinds == [StopContainer, RemoveContainer, CreateContainer, StartContainer]
    names = [m for m, _ in host.calls if m.endswith("_container") and m != "list_containers"]
    assert names[-4:] == ["stop_container", "remove_container", "create_container", "start_container"]
