"""``Manager``: the verbs as the daemon serves them, over ``StackService`` and the ``Reconciler``.

What the daemon adds to each verb: ``up`` records the new desired state (a revision, with the
options that shape it) once every check passed and before the host is changed, so that a
daemon killed in the middle finishes the work when it comes back; it clears the "stopped by the
user" mark and the restart count of the containers it brings up, and the project is kept from
then on. ``down`` forgets the desired state first, so that nothing brings back what it removes.
``stop`` and ``kill`` mark their containers as stopped by the user (their restart policy leaves
them alone, as Docker does); ``start`` and ``restart`` clear the mark. Every verb holds the
project's lock (``Reconciler.exclusive``): passes and verbs of a project never interleave. A
verb may come without a stack (``-p NAME`` and no file): the kept one is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import anyio
import anyio.to_thread

from stackd.daemon.options import (
    Applied,
    DownOptions,
    KillOptions,
    PsOptions,
    RestartOptions,
    StartOptions,
    StopOptions,
    UpOptions,
)
from stackd.daemon.service import StackService
from stackd.drivers.host import ContainerRecord, HostDriver
from stackd.execute import Clock, Event, Result
from stackd.execute.executor import EXIT_WATCH
from stackd.graph import build, closure
from stackd.observe import ContainerStatus
from stackd.reconcile import Reconciler, options_json, widen
from stackd.reconcile.desired import options_of
from stackd.reconcile.passes import ensure_stored
from stackd.spec.models import Stack
from stackd.store import Store

KEPT_REVISIONS = 20
"""Revisions kept per project (the newest; older ones are pruned at each ``up``)."""


def _ignore(_: Event) -> None:
    pass


@dataclass(frozen=True)
class Source:
    """Where a desired state came from (shown by ``stack ls`` and kept with the revision)."""

    files: tuple[str, ...] = ()
    envs: tuple[str, ...] = ()


class Manager:
    """The daemon's verbs (see the module docstring)."""

    def __init__(self, host: HostDriver, store: Store, reconciler: Reconciler, *,
                 clock: Clock | None = None, exit_watch: float | None = EXIT_WATCH) -> None:
        self.host, self.store, self.reconciler, self.clock = host, store, reconciler, clock
        self.exit_watch = exit_watch

    def service(self, warn: Callable[[str], None] | None = None) -> StackService:
        return StackService(self.host, clock=self.clock, warn=warn, poll_interval=0.1,
                            exit_watch=self.exit_watch)

    def _log(self, project: str, progress: Callable[[Event], None]) -> Callable[[Event], None]:
        """``progress``, and each finished operation journaled."""
        return self.reconciler.journal.progress(project, progress)

    async def kept_stack(self, project: str) -> Stack | None:
        revision = await anyio.to_thread.run_sync(self.store.latest_stack, project)
        return None if revision is None else Stack.model_validate_json(revision.stack_json)

    async def _marks(self, project: str, services: Iterable[str], *, stopped: bool) -> None:
        chosen = set(services)
        records = await anyio.to_thread.run_sync(self.host.list_containers, project)

        def mark() -> None:
            for r in records:
                if r.project == project and (not chosen or r.service in chosen):
                    ensure_stored(self.store, r)
                    self.store.set_stopped_by_user(r.name, stopped)
                    if not stopped:
                        self.store.reset_restarts(r.name)

        await anyio.to_thread.run_sync(mark)

    # ------------------------------------------------------------------ changing verbs

    async def up(self, stack: Stack, options: UpOptions, source: Source = Source(),
                 progress: Callable[[Event], None] = _ignore,
                 warn: Callable[[str], None] | None = None) -> Applied:
        project = stack.name
        if options.dry_run:
            return await self.service(warn).up_stack(stack, options, progress)

        async def record() -> None:
            previous = await anyio.to_thread.run_sync(self.store.latest_stack, project)
            kept = widen(options_of(previous.options_json) if previous else None, options)
            stack_json, kept_json = stack.model_dump_json(), options_json(kept)
            scope = (closure(build(stack), options.services, deps=not options.no_deps) if options.services
                     else set(stack.services))
            await self._marks(project, scope, stopped=False)
            if previous is not None and (previous.stack_json, previous.options_json) == (
                    stack_json, kept_json):
                return  # the same desired state again: no new revision
            revision = await anyio.to_thread.run_sync(lambda: self.store.add_stack_revision(
                project, files=source.files, envs=source.envs, stack_json=stack_json, options_json=kept_json))
            await anyio.to_thread.run_sync(lambda: self.store.prune_stack_revisions(project, KEPT_REVISIONS))
            await self.reconciler.journal.say(project, f"project:{project}", "applied",
                                              f"revision {revision.revision}", revision=revision.revision)

        async with self.reconciler.exclusive(project):
            applied = await self.service(warn).up_stack(stack, options, self._log(project, progress),
                                                        before_run=record)
        if await anyio.to_thread.run_sync(self.store.latest_stack, project) is not None:
            self.reconciler.keep(project)
        return applied

    async def down(self, project: str, stack: Stack | None, options: DownOptions,
                   progress: Callable[[Event], None] = _ignore,
                   warn: Callable[[str], None] | None = None) -> Applied:
        stack = stack or await self.kept_stack(project)
        if options.dry_run:
            return await self.service(warn).down_for(project, stack, options, progress)
        async with self.reconciler.exclusive(project):
            if await anyio.to_thread.run_sync(self.store.forget_stack, project):
                await self.reconciler.journal.say(project, f"project:{project}", "forgotten", "down")
            self.reconciler.forget(project)
            return await self.service(warn).down_for(project, stack, options, self._log(project, progress))

    async def stop(self, project: str, stack: Stack | None, options: StopOptions,
                   progress: Callable[[Event], None] = _ignore) -> Applied:
        stack = stack or await self.kept_stack(project)
        async with self.reconciler.exclusive(project):
            await self._marks(project, options.services, stopped=True)
            return await self.service().stop_for(project, stack, options, self._log(project, progress))

    async def start(self, project: str, stack: Stack | None, options: StartOptions,
                    progress: Callable[[Event], None] = _ignore) -> Applied:
        stack = stack or await self.kept_stack(project)
        async with self.reconciler.exclusive(project):
            await self._marks(project, options.services, stopped=False)
            return await self.service().start_for(project, stack, options, self._log(project, progress))

    async def restart(self, project: str, stack: Stack | None, options: RestartOptions,
                      progress: Callable[[Event], None] = _ignore) -> Applied:
        stack = stack or await self.kept_stack(project)
        async with self.reconciler.exclusive(project):
            await self._marks(project, options.services, stopped=False)
            return await self.service().restart_for(project, stack, options, self._log(project, progress))

    async def kill(self, project: str, stack: Stack | None, options: KillOptions,
                   progress: Callable[[Event], None] = _ignore) -> Result:
        stack = stack or await self.kept_stack(project)
        async with self.reconciler.exclusive(project):
            await self._marks(project, options.services, stopped=True)
            return await self.service().kill_for(project, stack, options, self._log(project, progress))

    # ------------------------------------------------------------------ looking verbs

    async def ps(self, project: str, stack: Stack | None, options: PsOptions) -> list[ContainerStatus]:
        """The rows of ``ps``: from the latest pass when the project is kept (at most a resync
        old, and fresh after every event the host reported), else looked up now."""
        kept: list[ContainerRecord] | None = self.reconciler.records(project)
        stack = stack or self.reconciler.stack(project) or await self.kept_stack(project)
        return await self.service().ps_for(project, stack, options, records=kept)

    async def projects(self) -> list[dict[str, object]]:
        """Every kept project with its latest revision."""
        def read() -> list[dict[str, object]]:
            out: list[dict[str, object]] = []
            for project in self.store.stack_projects():
                r = self.store.latest_stack(project)
                if r is not None:
                    out.append({"project": project, "revision": r.revision, "files": list(r.files),
                                "envs": list(r.envs), "applied_at": r.applied_at.isoformat()})
            return out

        return await anyio.to_thread.run_sync(read)
