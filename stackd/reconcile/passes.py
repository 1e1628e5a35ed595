"""One reconciling pass over one kept project: look, decide, repair, act.

A pass reads the desired state (the latest revision in the store), looks at the host once
(``list_containers``), journals what changed since the last look (``died``, ``health``), asks the
restart policy about every exited container, lets the host driver repair drift of what running
containers need (veths, bridges, the nft table, cgroup limits), plans ``up`` against what it saw
with the restart policy's answer (``UpOptions.restartable``), and executes the plan. The plan
brings back what is missing (a container removed behind stackd's back, a group, a network) and
waits for ``depends_on`` conditions before every start, restarts included. It returns when the
next pass is due for a waiting restart. Every decision is the planner's or the policy's; this
module only wires them to the host and the store.

Before it looks, a pass takes the host's stamp (``HostDriver.stamp``: the store's version, the
runtime's and conmon's directories, the running processes, limit writes, group directories,
images, volumes, ``ip_forward``). A pass that finds nothing to do (no restart decided or
waiting, no drift, an empty plan) leaves it with the revision in ``PassContext.quiet``: the
reconciler's resync compares the host's stamp with it (``changed``) instead of running the pass.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import anyio
import anyio.to_thread

from stackd.drivers.host import ContainerRecord, HostDriver
from stackd.execute import Clock, HealthWaiter, Result, execute
from stackd.observe import observe
from stackd.plan import Observed, Plan, plan
from stackd.plan import names as plan_names
from stackd.plan.restart import Backoff
from stackd.reconcile.desired import Desired, desired_of
from stackd.reconcile.journal import Journal, Tracker
from stackd.reconcile.restarts import RestartPlan, restart_plan
from stackd.store import Store, StoredContainer


@dataclass(frozen=True)
class Settings:
    """``resync``: seconds between looks when nothing happens (the safety net: a whole pass, or
    for a settled project a comparison of the host's stamp, see ``loop``); ``table_every``:
    seconds between checks of the nft table and of the bridges and veths (``nft`` runs, every
    link is read from sysfs; a change to a table or to a link asks for one at once);
    ``deep_every``: seconds between looks inside every container's network namespace
    (a namespace switch per container); ``wait_timeout``: how long a
    start in a pass waits for its dependencies before the pass gives up on it (the next pass
    tries again); ``health_tick``: how often due healthchecks are looked for."""

    resync: float = 2.0
    table_every: float = 30.0
    deep_every: float = 300.0
    wait_timeout: float = 60.0
    health_tick: float = 0.5
    parallel: int = 32
    backoff: Backoff = field(default_factory=lambda: Backoff(immediate_first=True))


@dataclass
class PassContext:
    host: HostDriver
    store: Store
    journal: Journal
    health: HealthWaiter
    clock: Clock
    settings: Settings
    limiter: anyio.CapacityLimiter
    desired: dict[str, Desired] = field(default_factory=dict)  # parsed revisions, per project
    quiet: dict[str, Quiet] = field(default_factory=dict)
    """Per project: what its latest quiet pass saw (see ``Quiet``)."""


@dataclass(frozen=True)
class Quiet:
    """A pass that found nothing to do: no restart decided or waiting, no drift, an empty plan.
    ``stamp``: the host's stamp taken before it looked (``HostDriver.stamp``; None: none)."""

    revision: int
    observed: Observed
    stamp: Hashable | None


@dataclass
class Outcome:
    """What one pass did: the plan and its result (None when nothing was to do), when the next
    pass is due (``wake_at``, epoch seconds), and the containers it looked at."""

    desired: Desired | None
    records: list[ContainerRecord]
    plan: Plan | None = None
    result: Result | None = None
    wake_at: float | None = None
    restarts: RestartPlan = field(default_factory=RestartPlan)


async def load_desired(store: Store, project: str, cache: dict[str, Desired] | None = None) -> Desired | None:
    """The latest revision of ``project``; parsed once per revision when given a ``cache``."""
    number = await anyio.to_thread.run_sync(store.latest_revision, project)
    if number is None:
        return None
    kept = cache.get(project) if cache is not None else None
    if kept is not None and kept.revision == number:
        return kept
    revision = await anyio.to_thread.run_sync(store.latest_stack, project)
    if revision is None:
        return None
    desired = await anyio.to_thread.run_sync(
        lambda: desired_of(project, revision.revision, revision.stack_json, revision.options_json))
    if cache is not None:
        cache[project] = desired
    return desired


async def run_pass(ctx: PassContext, project: str, tracker: Tracker, *, first: bool, deep: bool,
                   table: bool = False,
                   progress: Callable[[object], None] | None = None) -> Outcome:
    """One pass (see the module docstring); a quiet one leaves ``ctx.quiet[project]``."""
    quiet = ctx.quiet.pop(project, None)  # put back only by a pass that ends quiet
    desired = await load_desired(ctx.store, project, ctx.desired)
    if desired is None:
        return Outcome(None, [])
    stack = desired.stack
    # the stamp before the look: whatever changes after it changes the stamp too
    stamp, listed = await anyio.to_thread.run_sync(
        lambda: (ctx.host.stamp(project), ctx.host.list_containers(project)))
    records = [r for r in listed if r.project == project]
    stored = {c.name: c for c in await anyio.to_thread.run_sync(ctx.store.containers, project)}
    for record, kind, message in tracker.look(records):
        await ctx.journal.say(project, f"service:{record.service}:{record.number}", kind, message,
                              name=record.name, exit_code=record.exit_code)
    now = ctx.clock.wall().timestamp()
    decided = restart_plan(stack, records, stored, now, ctx.settings.backoff, daemon_start=first)
    await _note_decisions(ctx, project, records, stored=stored, decided=decided, tracker=tracker)

    # links are looked at with the table: between those checks, link events ask for one
    repairs = await anyio.to_thread.run_sync(
        lambda: ctx.host.repair_drift(stack, deep=deep, table=table, links=table))
    for r in repairs:
        await ctx.journal.say(project, r.resource, "drift", f"{r.what} ({r.why})")

    refs = [plan_names.image_ref(stack.name, s) for s in stack.services.values()]
    observed = await anyio.to_thread.run_sync(
        lambda: observe(project, ctx.host, images=refs, records=records))
    outcome = Outcome(desired, records, wake_at=decided.wake_at, restarts=decided)
    calm = not decided.now and not decided.later and not repairs
    if not decided.now and quiet is not None and \
            (quiet.revision, quiet.observed) == (desired.revision, observed):
        # the same host and the same revision as when nothing was to do
        ctx.quiet[project] = Quiet(desired.revision, observed, stamp if calm else None)
        return outcome
    options = replace(desired.options, restartable=frozenset(decided.now))
    # off the event loop: with hundreds of services planning takes long enough to delay answers
    the_plan = await anyio.to_thread.run_sync(lambda: plan(stack, observed, options))
    if the_plan.empty:
        if not decided.now:
            ctx.quiet[project] = Quiet(desired.revision, observed, stamp if calm else None)
        return outcome
    by_name = {r.name: r for r in records}
    for name, attempt in decided.now.items():
        await anyio.to_thread.run_sync(_set_restarts, ctx.store, by_name[name], attempt, None)
    result = await execute(the_plan, stack, ctx.host, limiter=ctx.limiter,
                           progress=ctx.journal.progress(project), health=ctx.health, clock=ctx.clock,
                           wait_timeout=ctx.settings.wait_timeout)
    outcome.plan, outcome.result = the_plan, result
    return outcome


async def _note_decisions(ctx: PassContext, project: str, records: list[ContainerRecord], *,
                          stored: dict[str, StoredContainer], decided: RestartPlan, tracker: Tracker) -> None:
    """Journal each decision once and keep a waiting restart's due time in the store (so that a
    restarted daemon keeps the backoff)."""
    by_name = {r.name: r for r in records}
    for name, (at, _) in decided.later.items():
        kept = stored.get(name)
        due = datetime.fromtimestamp(at, UTC)
        if kept is None or kept.backoff_until is None or abs(kept.backoff_until - due) > timedelta(
                milliseconds=1):
            restarts = kept.restarts if kept else 0
            record = by_name[name]
            await anyio.to_thread.run_sync(_set_restarts, ctx.store, record, restarts, due)
            await ctx.journal.say(project, f"service:{record.service}:{record.number}", "restarting",
                                  decided.why[name], name=name)
    for name, attempt in decided.now.items():
        record = by_name[name]
        await ctx.journal.say(project, f"service:{record.service}:{record.number}", "restarting",
                              decided.why[name], name=name, attempt=attempt)
    for name, why in decided.gave_up.items():
        if name in tracker.gave_up:
            continue
        tracker.gave_up.add(name)
        record = by_name[name]
        await ctx.journal.say(project, f"service:{record.service}:{record.number}", "gave-up", why, name=name)


def changed(ctx: PassContext, projects: list[str]) -> list[str]:
    """Of ``projects``, those whose revision or host stamp is not what their latest quiet pass
    left (all of them when there was none, or the host cannot tell). Blocking."""
    out = []
    for project in projects:
        quiet = ctx.quiet.get(project)
        try:
            now = (ctx.store.latest_revision(project), ctx.host.stamp(project))
        except Exception:  # whatever it is, the pass finds it and says so
            now = None
        if quiet is None or quiet.stamp is None or now != (quiet.revision, quiet.stamp):
            out.append(project)
    return out


def ensure_stored(store: Store, record: ContainerRecord) -> None:
    """Make sure the store has a record of ``record``'s container to keep its bookkeeping in
    (the host driver normally made one when it created the container)."""
    if store.container(record.name) is None:
        store.put_container(StoredContainer(
            name=record.name, project=record.project, service=record.service, number=record.number,
            config_hash=record.config_hash, created_at=datetime.now(UTC), image_id=record.image_id,
            group=record.group))


def _set_restarts(store: Store, record: ContainerRecord, restarts: int, due: datetime | None) -> None:
    ensure_stored(store, record)
    store.set_restart_state(record.name, restarts=restarts, backoff_until=due)
