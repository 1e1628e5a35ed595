"""``up --wait``: after a plan is carried out, wait until the containers of the services are ready.

Ready is what Compose's ``--wait`` means: a container with a healthcheck (its service's or its
image's) is healthy; one without a healthcheck is running. A one-shot service that others depend on with
``service_completed_successfully`` is ready once its containers exited with code 0. Waits go
through the ``HealthWaiter``; the whole wait is bounded by ``timeout`` (``fail_after``). Returns
the problems found (empty when all is ready); changes nothing on the host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import anyio

from stackd.execute.clock import Clock
from stackd.execute.events import Event, Status
from stackd.execute.health import HealthSettings, HealthWaiter, WaitFailed
from stackd.spec.models import Stack


def _one_shots(stack: Stack) -> set[str]:
    return {dep for svc in stack.services.values() for dep, d in svc.depends_on.items()
            if d.condition == "service_completed_successfully"}


async def wait_ready(stack: Stack, services: Iterable[str], health: HealthWaiter, *, clock: Clock,
                     progress: Callable[[Event], None], timeout: float | None = None) -> tuple[str, ...]:
    """Wait for the containers of ``services`` (see the module docstring); the problems found."""
    records = await health.records(stack.name)
    one_shots = _one_shots(stack)
    problems: list[str] = []

    def emit(service: str, name: str, status: Status, message: str) -> None:
        progress(Event(resource=f"service:{service}", action="wait", status=status, message=message,
                       time=clock.wall(), name=name))

    async def one(service: str, name: str) -> None:
        emit(service, name, "waiting", "ready")
        try:
            if service in one_shots:
                reached = await health.completed(stack.name, service, [name])
            elif HealthSettings.of_container(stack, records[name]) is not None:
                reached = await health.healthy(stack, service, [name])
            else:
                await health.started(stack.name, service, [name])
                state = (await health.records(stack.name))[name].state
                if state != "running":
                    raise WaitFailed(f"service {service}: container {name} is {state}, not running")
                reached = "running"
        except WaitFailed as exc:
            problems.append(str(exc))
            emit(service, name, "error", str(exc))
        else:
            emit(service, name, "done", reached)

    limit = anyio.fail_after(timeout) if timeout is not None else contextlib.nullcontext()
    try:
        with limit:
            async with anyio.create_task_group() as tg:
                for r in sorted(records.values(), key=lambda r: r.name):
                    if r.service in services and r.service in stack.services:
                        tg.start_soon(one, r.service, r.name)
    except TimeoutError:
        problems.append(f"the services were not ready after {timeout:g}s")
    return tuple(problems)
