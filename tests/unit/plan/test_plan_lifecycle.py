"""Plans of stop, start and restart: which containers, in which order, waiting for what."""

from __future__ import annotations

from stackd.plan import Observed, ObservedContainer, StartContainer, WaitFor
from stackd.plan.lifecycle import plan_restart, plan_start, plan_stop
from tests.unit.execute.support import make_stack

STACK = make_stack({"db": {}, "web": {"depends_on": {"db": {"condition": "service_healthy"}}, "scale": 2},
                    "job": {}})


def _c(service: str, number: int, state: str) -> ObservedContainer:
    return ObservedContainer(name=f"demo-{service}-{number}", service=service, number=number, config_hash="h",
                             state=state)


def test_stop_goes_dependents_first_and_skips_what_is_stopped() -> None:
    seen = Observed(project="demo", containers=(_c("db", 1, "running"), _c("web", 1, "running"),
                                                _c("web", 2, "paused"), _c("job", 1, "exited")))
    the_plan = plan_stop(STACK, seen, timeout=5)
    assert [op.id for op in the_plan.ops] == ["stop service:web:1", "stop service:web:2", "stop service:db:1"]
    assert the_plan.get("stop service:db:1").after == ("stop service:web:1", "stop service:web:2")
    assert {getattr(op, "timeout", None) for op in the_plan.ops} == {5}
    assert [op.id for op in plan_stop(STACK, seen, ("db",)).ops] == ["stop service:db:1"]


def test_start_waits_for_dependencies_and_their_conditions() -> None:
    seen = Observed(project="demo", containers=(_c("db", 1, "exited"), _c("web", 1, "exited"),
                                                _c("web", 2, "running")))
    the_plan = plan_start(STACK, seen)
    assert [op.id for op in the_plan.ops] == ["start service:db:1", "start service:web:1"]
    web = the_plan.get("start service:web:1")
    assert isinstance(web, StartContainer)
    assert web.after == ("start service:db:1",)
    assert web.wait == (WaitFor(service="db", condition="service_healthy", required=True,
                                containers=("demo-db-1",)),)


def test_restart_stops_then_starts_everything_in_order() -> None:
    seen = Observed(project="demo", containers=(_c("db", 1, "running"), _c("web", 1, "running"),
                                                _c("job", 1, "exited")))
    the_plan = plan_restart(STACK, seen)
    ids = [op.id for op in the_plan.ops]
    assert set(ids) == {"stop service:db:1", "stop service:web:1", "start service:db:1",
                        "start service:web:1", "start service:job:1"}
    assert ids.index("stop service:web:1") < ids.index("stop service:db:1") < ids.index("start service:db:1")
    assert the_plan.get("start service:web:1").after == ("start service:db:1", "stop service:web:1")


def test_without_a_stack_there_is_no_order_and_nothing_to_wait_for() -> None:
    seen = Observed(project="demo", containers=(_c("db", 1, "exited"), _c("web", 1, "exited")))
    the_plan = plan_start(None, seen)
    assert all(op.after == () and isinstance(op, StartContainer) and op.wait == () for op in the_plan.ops)
