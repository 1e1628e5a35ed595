"""``Reconciler``: keeps every project applied through the daemon as its latest revision says.

Level-triggered: each kept project has a worker that runs a pass (``passes.run_pass``) whenever
it is woken, and sooner when a restart waits for its backoff. Wake-ups coalesce: any number of
triggers while a pass runs make one more pass. Triggers come from the host (``HostWatch``: a
container's exit file written, a stackd link changed, a stackd nft table changed, a cgroup limit
written; those concern one project or, when it cannot be told, all), from the daemon's API (a
new revision, a verb done) and from the periodic resync. The resync runs every
``Settings.resync`` seconds: a project whose latest pass found nothing to do ("settled") is
looked at through the host's stamp (``HostDriver.stamp``, all settled projects in one worker
call: ``passes.changed``) and woken when it moved; any other project runs a whole pass; and
every project runs one with the table check every ``table_every`` seconds (and the deep one
every ``deep_every``), whatever its stamp says. Each
project has its own worker, lock and error handling: a pass that fails is journaled and retried
on the next wake-up, and never holds another project back.

The API's verbs take the project's lock (``exclusive``), which first cancels a pass that is
waiting (for a dependency's health, say) so that ``down`` never waits behind a pass. A
project's health checks run in their own task (``_health``), which sleeps while no container
has a healthcheck: every due healthcheck is probed
(``HealthWaiter.refresh``), a change is journaled, and a service that opts in with the label
``stackd.restart-on-unhealthy: "true"`` has an unhealthy container restarted. Verbs also cancel
the health checks in flight and wait for them to end (the ``probing`` lock), so that no result
is written into a container's directory while a verb removes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import anyio.abc
import anyio.to_thread

from stackd import labels
from stackd.drivers.host import ContainerRecord, HostDriver
from stackd.execute import Clock, HealthWaiter, SystemClock, execute
from stackd.execute.health import HealthSettings
from stackd.observe import observe
from stackd.plan.lifecycle import plan_restart
from stackd.reconcile.journal import Journal, Tracker
from stackd.reconcile.passes import Outcome, PassContext, Settings, changed, run_pass
from stackd.spec.models import Stack
from stackd.store import Store

log = logging.getLogger("stackd.reconcile")


@dataclass
class _Project:
    name: str
    wake: anyio.Event = field(default_factory=anyio.Event)
    deep: bool = True
    table: bool = True
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    scope: anyio.CancelScope | None = None  # the pass running now
    probing: anyio.Lock = field(default_factory=anyio.Lock)  # held while its health checks run
    probe_scope: anyio.CancelScope | None = None  # the health checks running now
    tracker: Tracker = field(default_factory=Tracker)
    records: list[ContainerRecord] = field(default_factory=list)
    stack: Stack | None = None  # of the latest pass
    last_error: str = ""
    passes: int = 0
    fresh: bool = False  # records are as the host is (no verb ran since the pass that read them)
    checked: bool = False  # some container of the latest pass has a healthcheck
    settled: bool = False  # the latest pass was quiet: the resync looks at the host's stamp instead
    checks: anyio.Event = field(default_factory=anyio.Event)  # set while ``checked`` (or stopping)
    stop: bool = False
    done: anyio.Event = field(default_factory=anyio.Event)  # set after every pass


class Reconciler:
    """The loop over every kept project (``run`` it in a task group; ``trigger`` it)."""

    def __init__(self, host: HostDriver, store: Store, *, settings: Settings | None = None,
                 clock: Clock | None = None, journal: Journal | None = None) -> None:
        self.host, self.store = host, store
        self.settings = settings or Settings()
        self.clock: Clock = clock or SystemClock()
        self.journal = journal or Journal(store)
        self.health = HealthWaiter(host, self.clock, poll_interval=0.1)
        self.projects: dict[str, _Project] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._limiter = anyio.CapacityLimiter(self.settings.parallel)
        self._ctx = PassContext(host, store, self.journal, self.health, self.clock, self.settings,
                                self._limiter)

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start a worker for every project the store keeps, then keep going until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for project in await anyio.to_thread.run_sync(self.store.stack_projects):
                self.keep(project)
            tg.start_soon(self._resync, name="resync")
            task_status.started()
            await anyio.sleep_forever()

    def keep(self, project: str) -> None:
        """Make sure ``project`` has a worker (after ``up``), and wake it."""
        state = self.projects.get(project)
        if state is None or state.stop:
            state = _Project(project)
            self.projects[project] = state
            assert self._tg is not None, "the reconciler is not running"
            self._tg.start_soon(self._worker, state, name=f"reconcile {project}")
            self._tg.start_soon(self._health, state, name=f"health {project}")
        self.trigger(project)

    def trigger(self, project: str | None = None, *, deep: bool = False, table: bool = False) -> None:
        """Ask for a pass of ``project`` (None: of every kept project); ``table``: with a check
        of its nft table; ``deep``: with everything (see ``Settings``)."""
        for state in ([self.projects[project]] if project in self.projects else []) if project else list(
                self.projects.values()):
            state.deep = state.deep or deep
            state.table = state.table or table
            state.wake.set()

    def records(self, project: str) -> list[ContainerRecord] | None:
        """What the latest pass saw of ``project`` (None when it is not kept or not looked at yet)."""
        state = self.projects.get(project)
        return list(state.records) if state is not None and state.fresh else None

    def stack(self, project: str) -> Stack | None:
        """The stack the latest pass of ``project`` kept it at (None before the first pass)."""
        state = self.projects.get(project)
        return state.stack if state is not None else None

    async def settled(self, project: str) -> None:
        """Wait for the end of the next pass of ``project`` (for callers that just triggered it)."""
        state = self.projects.get(project)
        if state is not None and not state.stop:
            await state.done.wait()

    @contextlib.asynccontextmanager
    async def exclusive(self, project: str) -> AsyncIterator[None]:
        """Hold ``project``'s lock for a verb of the API: a running pass is cancelled first."""
        state = self.projects.get(project)
        if state is None:
            yield
            return
        if state.scope is not None:
            state.scope.cancel()
        if state.probe_scope is not None:
            state.probe_scope.cancel()
        async with state.lock, state.probing:
            state.fresh = False
            try:
                yield
            finally:
                state.fresh = False
        state.wake.set()

    def forget(self, project: str) -> None:
        """Stop keeping ``project`` (after ``down``; the caller removed its revisions)."""
        state = self.projects.pop(project, None)
        self._ctx.quiet.pop(project, None)
        self._ctx.desired.pop(project, None)
        if state is not None:
            state.stop = True
            if state.scope is not None:
                state.scope.cancel()
            if state.probe_scope is not None:
                state.probe_scope.cancel()
            state.wake.set()
            state.checks.set()

    # ------------------------------------------------------------------ the workers

    async def _worker(self, state: _Project) -> None:
        first = True
        last_deep = last_table = self.clock.now()
        wake_at: float | None = None
        while not state.stop:
            timeout = self.settings.resync
            if state.settled:  # the resync wakes it when the stamp moves; else the next check is due
                now = self.clock.now()
                timeout = max(0.0, min(last_table + self.settings.table_every,
                                       last_deep + self.settings.deep_every) - now)
            if wake_at is not None:
                timeout = max(0.0, min(timeout, wake_at - self.clock.wall().timestamp()))
            with anyio.move_on_after(timeout):
                await state.wake.wait()
            if state.stop:
                break
            state.wake = anyio.Event()
            now = self.clock.now()
            deep = state.deep or now - last_deep >= self.settings.deep_every
            table = deep or state.table or now - last_table >= self.settings.table_every
            state.deep = state.table = False
            last_deep = now if deep else last_deep
            last_table = now if table else last_table
            outcome = await self._one_pass(state, first=first, deep=deep, table=table)
            first = False
            wake_at = outcome.wake_at if outcome is not None else None
            if outcome is not None and outcome.desired is None:
                state.stop = True  # nothing kept any more (down from elsewhere)
            done, state.done = state.done, anyio.Event()
            done.set()
        if self.projects.get(state.name) is state:
            del self.projects[state.name]
        state.done.set()
        state.checks.set()

    async def _one_pass(self, state: _Project, *, first: bool, deep: bool, table: bool) -> Outcome | None:
        async with state.lock:
            state.settled = False
            with anyio.CancelScope() as scope:
                state.scope = scope
                try:
                    outcome = await run_pass(self._ctx, state.name, state.tracker, first=first, deep=deep,
                                             table=table)
                except Exception as exc:  # one project's trouble is journaled, never spreads
                    text = str(exc) or type(exc).__name__
                    if text != state.last_error:
                        log.warning("pass of %s failed: %s", state.name, text)
                        await self.journal.say(state.name, f"project:{state.name}", "error", text)
                    state.last_error = text
                    state.table = True
                    return None
                finally:
                    state.scope = None
            if scope.cancelled_caught:
                state.wake.set()  # preempted by a verb: look again once it is done
                return None
            state.last_error = ""
            state.passes += 1
            quiet = self._ctx.quiet.get(state.name)
            state.settled = quiet is not None and quiet.stamp is not None and outcome.wake_at is None
            state.records = outcome.records
            state.stack = outcome.desired.stack if outcome.desired is not None else None
            state.checked = state.stack is not None and any(
                HealthSettings.of_container(state.stack, r) is not None for r in state.records)
            if state.checked:
                state.checks.set()
            elif state.checks.is_set():
                state.checks = anyio.Event()
            state.fresh = outcome.plan is None
            if outcome.result is not None and outcome.result.ok:
                state.wake.set()  # look again at what the plan made (after a failure: at the resync)
            return outcome

    async def _resync(self) -> None:
        """Every ``resync`` seconds, wake the settled projects whose host stamp or revision moved
        since their latest quiet pass (one look at all of them in one worker call)."""
        while True:
            await anyio.sleep(self.settings.resync)
            settled = [s.name for s in self.projects.values() if s.settled and not s.stop]
            if not settled:
                continue
            for project in await anyio.to_thread.run_sync(changed, self._ctx, settled):
                state = self.projects.get(project)
                if state is not None and state.settled:  # (a pass since has looked anyway)
                    self.trigger(project)

    async def _health(self, state: _Project) -> None:
        """Probe due healthchecks of ``state``'s running containers (see the module docstring)."""
        while not state.stop:
            await state.checks.wait()  # no ticking while no container has a healthcheck
            await anyio.sleep(self.settings.health_tick)
            desired = state.stack
            if desired is None:
                continue
            changed = await self._probe(state)
            for r in changed:
                await self.journal.say(state.name, f"service:{r.service}:{r.number}", "health",
                                       f"now {r.health}", name=r.name)
                service = desired.services.get(r.service)
                opted = service is not None and str(service.labels.get(labels.RESTART_ON_UNHEALTHY, "")
                                                    ).lower() == "true"
                if r.health == "unhealthy" and opted:
                    await self._restart_unhealthy(state, r)

    async def _probe(self, state: _Project) -> list[ContainerRecord]:
        """One round of ``state``'s due health checks (none once the project is forgotten, or
        when a verb cancels it); the records whose health changed."""
        async with state.probing:
            records = [r for r in state.records if r.state == "running"] if state.checked else []
            desired = state.stack
            if state.stop or not records or desired is None:
                return []
            with anyio.CancelScope() as scope:
                state.probe_scope = scope
                try:
                    fresh = await self.health.refresh(desired, records)
                except Exception as exc:
                    log.warning("health checks of %s failed: %s", state.name, exc)
                    return []
                finally:
                    state.probe_scope = None
            if scope.cancelled_caught:
                return []
            by_name = {r.name: r for r, old in zip(fresh, records, strict=True) if r is not old}  # probed
            if by_name:  # a pass may have looked again meanwhile: only the health of the same run is taken
                state.records = [dataclasses.replace(r, health=by_name[r.name].health,
                                                     last_health=by_name[r.name].last_health)
                                 if r.name in by_name and by_name[r.name].started_at == r.started_at else r
                                 for r in state.records]
            before = {r.name: r.health for r in records}
            return [r for r in fresh if r.health != before.get(r.name, r.health)]

    async def _restart_unhealthy(self, state: _Project, record: ContainerRecord) -> None:
        async with self.exclusive(state.name):
            stack = state.stack
            if stack is None:
                return
            observed = await anyio.to_thread.run_sync(lambda: observe(state.name, self.host))
            the_plan = plan_restart(stack, observed, (record.service,), None)
            await self.journal.say(state.name, f"service:{record.service}:{record.number}", "restarting",
                                   "unhealthy (restart-on-unhealthy)", name=record.name)
            await execute(the_plan, stack, self.host, limiter=self._limiter,
                          progress=self.journal.progress(state.name), health=self.health,
                          clock=self.clock, wait_timeout=self.settings.wait_timeout)
