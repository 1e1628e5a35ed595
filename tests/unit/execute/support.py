"""Test support for the executor: small stacks, a FakeHost with their images, and one call that
plans against the fake host and executes on it with a virtual clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from stackd.drivers.fakehost import FakeHost
from stackd.execute import Event, HealthWaiter, ManualClock, Result, execute
from stackd.observe import observe
from stackd.plan import Plan, UpOptions, plan
from stackd.spec.models import Stack

PROJECT = "demo"


def make_stack(services: dict[str, dict[str, Any]], **top: Any) -> Stack:
    """A stack of ``services`` (long form; every service gets ``image: <name>:1`` unless given)."""
    full = {name: {"image": f"{name}:1", **svc} for name, svc in services.items()}
    return Stack.model_validate({"name": PROJECT, "services": full, **top})


def fake_for(stack: Stack, **kwargs: Any) -> FakeHost:
    """A FakeHost that holds the image of every service of ``stack``."""
    images = {svc.image: f"sha256:{name}" for name, svc in stack.services.items() if svc.image}
    return FakeHost(images=images, **kwargs)


@dataclass
class Run:
    """What one execution produced."""

    plan: Plan
    result: Result
    events: list[Event] = field(default_factory=list)
    clock: ManualClock = field(default_factory=ManualClock)

    def statuses(self, resource: str, action: str | None = None) -> list[str]:
        return [e.status for e in self.events
                if e.resource == resource and (action is None or e.action == action)]


def up_plan(stack: Stack, host: FakeHost, options: UpOptions | None = None) -> Plan:
    return plan(stack, observe(stack.name, host, images=[s.image or "" for s in stack.services.values()]),
                options)


async def run_plan(the_plan: Plan, stack: Stack | None, host: FakeHost, *, limit: int = 4,
                   clock: ManualClock | None = None, wait_timeout: float | None = None) -> Run:
    clock = clock or ManualClock()
    events: list[Event] = []
    result = await execute(the_plan, stack, host, limiter=anyio.CapacityLimiter(limit),
                           progress=events.append, health=HealthWaiter(host, clock, poll_interval=1.0),
                           clock=clock, wait_timeout=wait_timeout)
    return Run(the_plan, result, events, clock)


def up(stack: Stack, host: FakeHost, *, limit: int = 4, options: UpOptions | None = None) -> Run:
    """Plan ``stack`` against ``host`` and execute the plan on it."""
    return anyio.run(lambda: run_plan(up_plan(stack, host, options), stack, host, limit=limit))


class Gate:
    """A FakeHost hook that holds every call of ``method`` until ``release`` (at most 5 s, so a
    broken test ends)."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.opened = threading.Event()

    def __call__(self, method: str, target: str) -> None:
        if method == self.method:
            self.opened.wait(timeout=5)

    def release(self) -> None:
        self.opened.set()


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the event loop (1 ms at a time) until ``condition`` holds; at most 5 s."""
    with anyio.fail_after(5):
        while not condition():
            await anyio.sleep(0.001)
