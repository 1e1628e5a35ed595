"""``StackService``: the verbs of ``stack`` (``up``, ``down``, ``ps``, ``logs``, ``exec``, ``stop``,
``start``, ``restart``, ``kill``, ``port``, ``stats`` per container and per group), carried out
in-process over an injected ``HostDriver``. The daemon's ``Manager`` calls the same methods
(``up_stack``, ``down_for``... take a stack already loaded); ``stack --no-daemon`` calls them here.

Each verb has a method of its name taking the project (``ProjectOptions``) and an options class
of its name (``up`` / ``UpOptions``, in ``options``). ``up`` loads the stack, checks that the host
can run containers, observes the host, plans against what it observed, checks the plan (images
present, host ports free: ``preflight``), executes and records what it applied; with nothing to
change it does nothing. ``start`` and ``restart`` check the host too. ``down`` works without a
stack file when the project is named (``-p``). ``ps`` brings the health of running containers
up to date first (``HealthWaiter.refresh``: one probe when the last result is older than the
healthcheck's interval). Warnings go to the ``warn`` sink; progress ``Event``s to the
``progress`` callback of each call. Runtime problems are ``StackdError``s whose message names
the service; nothing here prints.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import cast

import anyio
import anyio.to_thread

from stackd.daemon import preflight
from stackd.daemon.options import (
    Applied,
    DownOptions,
    ExecOptions,
    KillOptions,
    LogsOptions,
    PortOptions,
    PsOptions,
    RestartOptions,
    StartOptions,
    StatsOptions,
    StopOptions,
    UpOptions,
)
from stackd.drivers.cgroups.usage import CgroupUsage
from stackd.drivers.host import ContainerRecord, ExecResult, HostDriver
from stackd.errors import StackdError
from stackd.execute import Clock, Event, HealthWaiter, Outcome, Result, SystemClock, execute
from stackd.execute.readiness import wait_ready
from stackd.graph import build, closure
from stackd.observe import (
    ContainerStatus,
    ContainerUsage,
    LogEntry,
    follow_entries,
    observe,
    published,
    read_entries,
    statuses,
    usage_row,
)
from stackd.plan import Observed, Plan, plan, plan_down
from stackd.plan import names as plan_names
from stackd.plan.lifecycle import plan_restart, plan_start, plan_stop
from stackd.spec.loader import Loaded, check_services, load, load_project
from stackd.spec.models import Stack
from stackd.spec.options import ProjectOptions

__all__ = [
    "Applied", "DownOptions", "ExecOptions", "HostDriver", "KillOptions", "LogsOptions", "PortOptions",
    "PsOptions", "RestartOptions", "StackService", "StartOptions", "StatsOptions", "StopOptions",
    "UpOptions", "default_host",
]

REALHOST_MODULE = "stackd.drivers.realhost"


def default_host(verb: str = "") -> HostDriver:
    """The host driver of this machine (``RealHost.from_env()``), or a clear error when this
    build has none. With ``verb`` (``up``), one line saying that ``stack <verb>`` needs root comes
    first when not root: nothing of the host is touched before."""
    try:
        module = importlib.import_module(REALHOST_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != REALHOST_MODULE:
            raise
        raise StackdError("this build of stackd has no host driver yet (stackd.drivers.realhost is "
                          "missing), so it cannot look at or change the host") from None
    if verb:
        cast(Callable[[str], None], module.require_root)(verb)
    factory = cast(Callable[[], HostDriver], module.RealHost.from_env)
    return factory()


def _ignore(_: Event) -> None:
    pass


# ---------------------------------------------------------------------------------------- service


class StackService:
    """The verbs over one host. ``parallel``: host calls at once; ``poll_interval``: seconds
    between looks at a container that is awaited; ``recorder`` receives every applied plan;
    ``exit_watch``: see ``execute`` (the real host's callers give ``EXIT_WATCH``)."""

    def __init__(self, host: HostDriver, *, clock: Clock | None = None, parallel: int = 32,
                 poll_interval: float = 0.5, warn: Callable[[str], None] | None = None,
                 recorder: Callable[[Applied], None] | None = None,
                 loader: Callable[[ProjectOptions], Loaded] = load, exit_watch: float | None = None) -> None:
        self.host = host
        self.clock: Clock = clock or SystemClock()
        self.parallel = parallel
        self.health = HealthWaiter(host, self.clock, poll_interval=poll_interval)
        self.warn = warn or (lambda _: None)
        self.applied: list[Applied] = []
        self.recorder = recorder or self.applied.append
        self.loader = loader
        self.exit_watch = exit_watch

    # ------------------------------------------------------------------ loading and looking

    async def load(self, project: ProjectOptions) -> Stack:
        loaded = await anyio.to_thread.run_sync(self.loader, project)
        for w in loaded.warnings:
            self.warn(w.render())
        return loaded.stack

    async def loaded(self, project: ProjectOptions) -> tuple[str, Loaded | None]:
        """The project's name and what was loaded (``load_project``), its warnings said."""
        name, loaded = await anyio.to_thread.run_sync(load_project, project, self.loader)
        for w in loaded.warnings if loaded is not None else ():
            self.warn(w.render())
        return name, loaded

    async def project(self, project: ProjectOptions) -> tuple[str, Stack | None]:
        """The project's name and stack; without any stack file, a project named with ``-p`` has
        no stack (enough for the verbs that only look at what exists)."""
        name, loaded = await self.loaded(project)
        return name, None if loaded is None else loaded.stack

    async def records(self, project: str) -> list[ContainerRecord]:
        found = await anyio.to_thread.run_sync(self.host.list_containers, project)
        return [r for r in found if r.project == project]

    async def observe(self, project: str, stack: Stack | None = None) -> Observed:
        refs = [plan_names.image_ref(stack.name, s) for s in stack.services.values()] if stack else []
        return await anyio.to_thread.run_sync(lambda: observe(project, self.host, images=refs))

    async def run(self, the_plan: Plan, stack: Stack | None, progress: Callable[[Event], None],
                  wait_timeout: float | None = None) -> Result:
        result = await execute(the_plan, stack, self.host, limiter=anyio.CapacityLimiter(self.parallel),
                               progress=progress, health=self.health, clock=self.clock,
                               wait_timeout=wait_timeout, exit_watch=self.exit_watch)
        for w in result.warnings:
            self.warn(w)
        return result

    check_services = staticmethod(check_services)

    # ------------------------------------------------------------------ changing verbs

    async def up(self, project: ProjectOptions, options: UpOptions | None = None,
                 progress: Callable[[Event], None] = _ignore) -> Applied:
        return await self.up_stack(await self.load(project), options, progress)

    async def up_stack(self, stack: Stack, options: UpOptions | None = None,
                       progress: Callable[[Event], None] = _ignore, *,
                       before_run: Callable[[], Awaitable[None]] | None = None) -> Applied:
        """``up`` of a stack already loaded (the daemon gets it from the client); ``before_run``
        is awaited once every check has passed, before the host is changed (the daemon records
        the new desired state there)."""
        opt = options or UpOptions()
        self.check_services(stack, opt.services)
        if not opt.dry_run:
            await preflight.check_host(self.host)
        the_plan = plan(stack, await self.observe(stack.name, stack), opt)
        for w in the_plan.warnings:
            self.warn(w)
        if opt.dry_run:
            return Applied(stack.name, the_plan)
        await preflight.check_plan(self.host, stack, the_plan)
        if before_run is not None:
            await before_run()
        result = Result() if the_plan.empty else await self.run(the_plan, stack, progress, opt.wait_timeout)
        wait_errors: tuple[str, ...] = ()
        if opt.wait and result.ok:
            scope = closure(build(stack), opt.services, deps=not opt.no_deps) if opt.services else set(
                stack.services)
            wait_errors = await wait_ready(stack, scope, self.health, clock=self.clock, progress=progress,
                                           timeout=opt.wait_timeout)
        applied = Applied(stack.name, the_plan, result, wait_errors)
        self.recorder(applied)
        return applied

    async def down(self, project: ProjectOptions, options: DownOptions | None = None,
                   progress: Callable[[Event], None] = _ignore) -> Applied:
        return await self.down_for(*await self.project(project), options, progress)

    async def down_for(self, name: str, stack: Stack | None, options: DownOptions | None = None,
                       progress: Callable[[Event], None] = _ignore) -> Applied:
        opt = options or DownOptions()
        the_plan = plan_down(stack, await self.observe(name, stack), opt)
        for w in the_plan.warnings:
            self.warn(w)
        if opt.dry_run:
            return Applied(name, the_plan)
        result = Result() if the_plan.empty else await self.run(the_plan, stack, progress)
        applied = Applied(name, the_plan, result)
        self.recorder(applied)
        return applied

    async def stop(self, project: ProjectOptions, options: StopOptions | None = None,
                   progress: Callable[[Event], None] = _ignore) -> Applied:
        return await self.stop_for(*await self.project(project), options, progress)

    async def stop_for(self, name: str, stack: Stack | None, options: StopOptions | None = None,
                       progress: Callable[[Event], None] = _ignore) -> Applied:
        opt = options or StopOptions()
        self.check_services(stack, opt.services)
        the_plan = plan_stop(stack, await self.observe(name), opt.services, opt.timeout)
        return Applied(name, the_plan, await self.run(the_plan, stack, progress))

    async def start(self, project: ProjectOptions, options: StartOptions | None = None,
                    progress: Callable[[Event], None] = _ignore) -> Applied:
        return await self.start_for(*await self.project(project), options, progress)

    async def start_for(self, name: str, stack: Stack | None, options: StartOptions | None = None,
                        progress: Callable[[Event], None] = _ignore) -> Applied:
        opt = options or StartOptions()
        self.check_services(stack, opt.services)
        await preflight.check_host(self.host)
        observed = await self.observe(name)
        missing = [s for s in opt.services if not any(c.service == s for c in observed.containers)]
        if missing:
            raise StackdError(f"service {missing[0]} has no container to start (run `stack up` first)")
        the_plan = plan_start(stack, observed, opt.services)
        return Applied(name, the_plan, await self.run(the_plan, stack, progress))

    async def restart(self, project: ProjectOptions, options: RestartOptions | None = None,
                      progress: Callable[[Event], None] = _ignore) -> Applied:
        return await self.restart_for(*await self.project(project), options, progress)

    async def restart_for(self, name: str, stack: Stack | None, options: RestartOptions | None = None,
                          progress: Callable[[Event], None] = _ignore) -> Applied:
        opt = options or RestartOptions()
        self.check_services(stack, opt.services)
        await preflight.check_host(self.host)
        the_plan = plan_restart(stack, await self.observe(name), opt.services, opt.timeout)
        return Applied(name, the_plan, await self.run(the_plan, stack, progress))

    async def kill(self, project: ProjectOptions, options: KillOptions | None = None,
                   progress: Callable[[Event], None] = _ignore) -> Result:
        """Send a signal to every running container of the services, all at once."""
        return await self.kill_for(*await self.project(project), options, progress)

    async def kill_for(self, name: str, stack: Stack | None, options: KillOptions | None = None,
                       progress: Callable[[Event], None] = _ignore) -> Result:
        opt = options or KillOptions()
        self.check_services(stack, opt.services)
        targets = [r for r in await self.records(name) if r.state in {"running", "paused"}
                   and (not opt.services or r.service in opt.services)]
        outcomes: dict[str, Outcome] = {}

        async def one(r: ContainerRecord) -> None:
            op = f"kill service:{r.service}:{r.number}"
            event = Event(resource=f"service:{r.service}:{r.number}", action="kill", status="working",
                          message=opt.signal, time=self.clock.wall(), name=r.name)
            progress(event)
            try:
                await anyio.to_thread.run_sync(self.host.kill_container, r.name, opt.signal)
            except StackdError as exc:
                outcomes[op] = Outcome(op, "failed", str(exc))
                progress(replace(event, status="error", message=str(exc), time=self.clock.wall()))
            else:
                outcomes[op] = Outcome(op, "done")
                progress(replace(event, status="done", time=self.clock.wall()))

        async with anyio.create_task_group() as tg:
            for r in targets:
                tg.start_soon(one, r)
        return Result(outcomes=tuple(outcomes[k] for k in sorted(outcomes)))

    # ------------------------------------------------------------------ looking verbs

    async def ps(self, project: ProjectOptions, options: PsOptions | None = None) -> list[ContainerStatus]:
        """The rows of the services' containers; the health of running ones is brought up to
        date first (without a stack file, the last recorded results are shown)."""
        return await self.ps_for(*await self.project(project), options)

    async def ps_for(self, name: str, stack: Stack | None, options: PsOptions | None = None, *,
                     records: list[ContainerRecord] | None = None) -> list[ContainerStatus]:
        """``ps`` of a project already resolved; ``records`` (the daemon's latest look, kept
        fresh by its health checks) spares looking at the host and probing again."""
        opt = options or PsOptions()
        self.check_services(stack, opt.services)
        if records is None:
            records = await self.records(name)
            if stack is not None:
                records = await self.health.refresh(stack, records)
        chosen = [r for r in records if not opt.services or r.service in opt.services]
        return statuses(chosen, opt.services, everything=opt.all)

    async def logs(self, project: ProjectOptions, options: LogsOptions | None = None,
                   emit: Callable[[LogEntry], None] = lambda _: None) -> None:
        """Hand the lines of the services' containers to ``emit`` (merged by time; with ``follow``,
        as they come, until every container has stopped)."""
        opt = options or LogsOptions()
        name, stack = await self.project(project)
        self.check_services(stack, opt.services)
        chosen = [r for r in await self.records(name) if not opt.services or r.service in opt.services]
        chosen.sort(key=lambda r: (r.service, r.number))
        if opt.follow:
            await follow_entries(self.host, chosen, emit, tail=opt.tail, since=opt.since,
                                 timestamps=opt.timestamps)
            return
        entries = await anyio.to_thread.run_sync(
            lambda: read_entries(self.host, chosen, tail=opt.tail, since=opt.since,
                                 timestamps=opt.timestamps))
        for entry in entries:
            emit(entry)

    async def _container(self, project: ProjectOptions, service: str, index: int) -> ContainerRecord:
        name, stack = await self.project(project)
        self.check_services(stack, (service,))
        for r in await self.records(name):
            if r.service == service and r.number == index:
                return r
        raise StackdError(f"service {service} has no container number {index} (is the stack up?)")

    async def exec(self, project: ProjectOptions, options: ExecOptions) -> ExecResult:
        record = await self._container(project, options.service, options.index)
        if record.state != "running":
            raise StackdError(f"service {options.service}: container {record.name} is {record.state}, "
                              "not running (start it with `stack start`)")
        return await anyio.to_thread.run_sync(lambda: self.host.exec_in(
            record.name, options.command, env=dict(options.env) or None, user=options.user))

    async def port(self, project: ProjectOptions, options: PortOptions) -> str:
        """``host_ip:port`` where the container's port is published."""
        record = await self._container(project, options.service, options.index)
        found = published(record, options.port, options.protocol)
        if not found:
            raise StackdError(f"service {options.service}: port {options.port}/{options.protocol} is not "
                              "published (add it to the service's ports)")
        return found[0].address

    async def stats(self, project: ProjectOptions,
                    options: StatsOptions | None = None) -> list[ContainerUsage]:
        opt = options or StatsOptions()
        source = self.host
        name, stack = await self.project(project)
        self.check_services(stack, opt.services)
        chosen = sorted((r for r in await self.records(name) if r.state in {"running", "paused"}
                         and (not opt.services or r.service in opt.services)),
                        key=lambda r: (r.service, r.number))

        groups = sorted({r.group for r in chosen if r.group})

        def sample() -> list[CgroupUsage | None]:
            return ([source.container_stats(r.name) for r in chosen]
                    + [source.group_stats(name, g) for g in groups])

        first = await anyio.to_thread.run_sync(sample)
        began = self.clock.now()
        await self.clock.sleep(opt.interval)
        second = await anyio.to_thread.run_sync(sample)
        seconds = self.clock.now() - began
        rows = [(r.name, r.service, "container") for r in chosen] + [(g, "", "group") for g in groups]
        return [usage_row(n, s, a, b, seconds, kind=kind)
                for (n, s, kind), a, b in zip(rows, first, second, strict=True)]
