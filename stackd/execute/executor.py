"""``execute(plan, ...)``: carry a plan out on a host, in parallel where the plan allows.

Every operation runs in its own task of one anyio TaskGroup. It starts once every operation in its
``after`` is finished; its one host call (``dispatch``) runs in a worker thread and holds a slot
of the ``limiter`` while it does, so independent operations run side by side, at most as many
at once as the limiter allows. A ``StartContainer`` first waits for its dependency conditions
(``WaitFor``) through the ``HealthWaiter``, for at most ``wait_timeout`` seconds (``fail_after``).
With ``exit_watch``, a start of ``up`` (``watch_exit``) is done as soon as the host started the
container, so that dependents go on at once; ``exit_watch`` seconds later the container is looked
at again, and one that has already exited with a failure status fails its start then (with its
last output).

An operation that fails makes every operation waiting on it (directly or not) skipped, with the
failure as the cause; independent branches still finish. The one exception is written in the
plan itself: a dependency declared ``required: false`` (a ``WaitFor`` that is not required) does
not hold its dependents back, and its unmet condition is a warning. The ``Result`` lists what was
done, what failed and why, and what was skipped. Cancelled from outside, the executor starts
nothing more; a host call already running in a thread is let finish (never abandoned half-done),
then the cancellation goes on to the caller.

This module makes no decision about desired state: it follows the plan's order and data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import anyio
import anyio.abc
import anyio.to_thread

from stackd.drivers.host import HostDriver
from stackd.errors import StackdError
from stackd.execute.clock import Clock
from stackd.execute.dispatch import Target, host_call
from stackd.execute.events import Event, Status, describe
from stackd.execute.health import HealthWaiter, WaitFailed
from stackd.plan.model import CreateContainer, Op, Plan, StartContainer, WaitFor
from stackd.spec.models import Stack

OutcomeStatus = Literal["done", "failed", "skipped"]
EXIT_WATCH = 0.1
"""What the real host's callers give as ``exit_watch``: seconds after a start of ``up``
(``StartContainer.watch_exit``) when the container is looked at once more; one that has exited
with a failure status by then fails its start."""


@dataclass(frozen=True)
class Outcome:
    """What became of one operation; ``message`` is the error, or the cause of a skip."""

    op: str
    status: OutcomeStatus
    message: str = ""


@dataclass(frozen=True)
class Result:
    """The outcome of every operation, in plan order, and the warnings raised on the way."""

    outcomes: tuple[Outcome, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def done(self) -> tuple[str, ...]:
        return tuple(o.op for o in self.outcomes if o.status == "done")

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")

    @property
    def skipped(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "skipped")

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


async def execute(plan: Plan, stack: Stack | None, host: HostDriver, *, limiter: anyio.CapacityLimiter,
                  progress: Callable[[Event], None], health: HealthWaiter, clock: Clock,
                  wait_timeout: float | None = None, exit_watch: float | None = None) -> Result:
    """Carry ``plan`` out on ``host`` (see the module docstring). ``stack`` is the stack the plan
    was made from (``None`` only for a removal plan made without one). ``exit_watch``: seconds
    after which a start of ``up`` looks at its container again, without holding its dependents
    back; ``None`` leaves that watch to the host driver's start, which then takes that long."""
    run = _Run(plan, Target(host, plan.project, stack), limiter=limiter, progress=progress, health=health,
               clock=clock, wait_timeout=wait_timeout)
    run.exit_watch = exit_watch
    async with anyio.create_task_group() as tg:
        run.tg = tg
        for op in plan.ops:
            tg.start_soon(run.one, op, name=op.id)
    return Result(outcomes=tuple(run.outcomes[op.id] for op in plan.ops), warnings=tuple(run.warnings))


class _Run:
    def __init__(self, plan: Plan, target: Target, *, limiter: anyio.CapacityLimiter,
                 progress: Callable[[Event], None], health: HealthWaiter, clock: Clock,
                 wait_timeout: float | None) -> None:
        self.target, self.limiter, self.progress = target, limiter, progress
        self.health, self.clock, self.wait_timeout = health, clock, wait_timeout
        self.ops = {op.id: op for op in plan.ops}
        self.starts = {op.resource: op for op in plan.ops if isinstance(op, StartContainer)}
        self.finished = {op.id: anyio.Event() for op in plan.ops}
        self.outcomes: dict[str, Outcome] = {}
        self.root: dict[str, str] = {}  # failed or skipped op -> the failed op at the origin
        self.warnings: list[str] = []
        self.tg: anyio.abc.TaskGroup | None = None
        self.exit_watch: float | None = None

    def emit(self, op: Op, status: Status, message: str) -> None:
        action, name = describe(op)
        self.progress(Event(resource=op.resource, action=action, status=status, message=message,
                            time=self.clock.wall(), name=name))

    async def one(self, op: Op) -> None:
        try:
            for dep in op.after:
                await self.finished[dep].wait()
            blocker = self._blocker(op)
            if blocker is not None:
                self.root[op.id] = self.root[blocker]
                cause = f"skipped: {self.root[op.id]} failed"
                self.outcomes[op.id] = Outcome(op.id, "skipped", cause)
                self.emit(op, "error", cause)
                return
            await self._perform(op)
        finally:
            self.finished[op.id].set()

    def _blocker(self, op: Op) -> str | None:
        """The first finished-but-not-done operation ``op`` waits for and may not go without."""
        for dep in sorted(op.after):
            if self.outcomes[dep].status != "done" and not self._optional(op, dep):
                return dep
        return None

    def _optional(self, op: Op, dep: str) -> bool:
        """Whether ``dep`` is the create or start of a dependency that ``op``'s container may go
        without."""
        dep_op = self.ops[dep]
        start = self.starts.get(op.resource)
        if not isinstance(dep_op, StartContainer | CreateContainer) or start is None:
            return False
        return any(w.service == dep_op.service and not w.required for w in start.wait)

    async def _perform(self, op: Op) -> None:
        try:
            if isinstance(op, StartContainer) and op.wait:
                self.emit(op, "waiting", "waiting for " + ", ".join(w.render() for w in op.wait))
                timeout = (anyio.fail_after(self.wait_timeout) if self.wait_timeout is not None
                           else contextlib.nullcontext())
                with timeout:
                    for wait in op.wait:
                        await self._condition(op, wait)
            self.emit(op, "working", op.cause)
            if isinstance(op, StartContainer) and op.watch_exit and self.exit_watch is not None \
                    and self.tg is not None:
                # started: dependents may go on; an exit at once is looked for meanwhile
                quick = replace(op, watch_exit=False)
                await anyio.to_thread.run_sync(host_call(quick, self.target), limiter=self.limiter)
                self.tg.start_soon(self._watch_exit, op)
            else:
                await anyio.to_thread.run_sync(host_call(op, self.target), limiter=self.limiter)
        except anyio.get_cancelled_exc_class():
            self.emit(op, "error", "cancelled")
            raise
        except TimeoutError:
            self._fail(op, f"{op.id}: dependencies not ready after {self.wait_timeout:g}s")
        except Exception as exc:  # driver errors and anything a driver failed to translate
            # a StackdError's text is meant for users; anything else gets its class name in front
            text = str(exc) if isinstance(exc, StackdError) else f"{type(exc).__name__}: {exc}"
            self._fail(op, text)
        else:
            self.outcomes[op.id] = Outcome(op.id, "done")
            self.emit(op, "done", op.cause)

    async def _watch_exit(self, op: StartContainer) -> None:
        """``EXIT_WATCH`` seconds after the start, fail ``op`` if its container has already
        exited with a failure status (what ``up`` says then names it, with its last output)."""
        await self.clock.sleep(self.exit_watch or 0.0)
        records = await anyio.to_thread.run_sync(self.target.host.list_containers, self.target.project)
        found = next((r for r in records if r.name == op.name), None)
        if found is None or found.state not in ("exited", "dead") or found.exit_code in (None, 0):
            return
        tail = await self.health.tail(op.name)
        self._fail(op, f"service {op.service}: container {op.name} exited at once with status "
                       f"{found.exit_code}{tail}")

    def _fail(self, op: Op, message: str) -> None:
        self.outcomes[op.id] = Outcome(op.id, "failed", message)
        self.root[op.id] = op.id
        self.emit(op, "error", message)

    async def _condition(self, op: StartContainer, wait: WaitFor) -> None:
        def each(status: Status, message: str) -> None:
            for name in wait.containers or ("",):
                self.progress(Event(resource=f"service:{wait.service}", action="wait", status=status,
                                    message=message, time=self.clock.wall(), name=name or wait.service))

        each("waiting", wait.condition)
        project = self.target.project
        try:
            if wait.condition == "service_healthy":
                if self.target.stack is None:
                    raise WaitFailed(f"service {wait.service}: no stack to read its healthcheck from")
                reached = await self.health.healthy(self.target.stack, wait.service, wait.containers)
            elif wait.condition == "service_completed_successfully":
                reached = await self.health.completed(project, wait.service, wait.containers)
            else:
                reached = await self.health.started(project, wait.service, wait.containers)
        except WaitFailed as exc:
            if wait.required:
                each("error", str(exc))
                raise
            warning = f"{op.id}: optional dependency {wait.service} not met: {exc}"
            self.warnings.append(warning)
            each("done", f"warning: {exc}")
            return
        each("done", reached)
