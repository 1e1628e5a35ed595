"""``RemoteService``: the verbs of ``StackService`` as ``stack`` runs them when a daemon keeps the
host (the default on a real host; ``--no-daemon`` or ``STACK_NO_DAEMON=1`` runs them in-process).

The stack is loaded here, in the client, so that a mistake in it is shown with its file and
line before the daemon hears of it; the daemon gets the loaded model. ``up`` (attached),
``stop``, ``start``, ``restart`` and ``kill`` go to the daemon (it records the desired state and
marks what the user stopped); ``up -d``, ``down``, ``ps``, ``events`` and ``ls`` take the
shorter path of ``stackd.cli.fast``, which this module shares its request code with. What an
attached ``up`` needs of the host afterwards (its containers, their logs) is read here, through
the local service, made only then; ``logs``, ``exec``, ``port`` and ``stats`` never come here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from stackd.cli.client import Daemon, project_path
from stackd.cli.fast import UP_FIELDS, stream, up_body
from stackd.daemon.options import (
    Applied,
    DownOptions,
    KillOptions,
    LogsOptions,
    RestartOptions,
    StartOptions,
    StopOptions,
    UpOptions,
)
from stackd.execute import Event, Outcome, Result
from stackd.plan import Plan
from stackd.spec.loader import Loaded, check_services, load, load_project
from stackd.spec.models import Stack
from stackd.spec.options import ProjectOptions

if TYPE_CHECKING:
    from stackd.daemon.service import StackService
    from stackd.drivers.host import ContainerRecord
    from stackd.execute import Clock
    from stackd.observe import LogEntry


def _event(data: dict[str, Any]) -> Event:
    return Event(resource=data["resource"], action=data["action"], status=data["status"],
                 message=data["message"], time=datetime.fromisoformat(data["time"]),
                 name=data.get("name", ""))


def _result(data: dict[str, Any]) -> Result:
    return Result(outcomes=tuple(Outcome(o["op"], o["status"], o["message"]) for o in data["outcomes"]),
                  warnings=tuple(data.get("warnings", ())))


class RemoteService:
    """The verbs through the daemon (see the module docstring); ``local`` serves the rest."""

    def __init__(self, local: Callable[[], StackService], daemon: Daemon, *,
                 warn: Callable[[str], None] = lambda _: None,
                 loader: Callable[[ProjectOptions], Loaded] | None = None) -> None:
        self._make_local, self.daemon, self.warn = local, daemon, warn
        self._local: StackService | None = None
        self.loader = loader or load

    @property
    def local(self) -> StackService:
        """The in-process service, made when a verb first needs the host here (logs, exec...):
        the verbs that only talk to the daemon never load the host drivers."""
        if self._local is None:
            self._local = self._make_local()
        return self._local

    @property
    def clock(self) -> Clock:
        return self.local.clock

    async def _project(self, project: ProjectOptions) -> tuple[str, Stack | None]:
        """The project's name and stack, as ``StackService.project`` finds them, loaded here."""
        name, loaded = await anyio.to_thread.run_sync(load_project, project, self.loader)
        for w in loaded.warnings if loaded is not None else ():
            self.warn(w.render())
        return name, None if loaded is None else loaded.stack

    def _run(self, method: str, path: str, body: dict[str, Any],
             progress: Callable[[Event], None]) -> dict[str, Any]:
        assert method == "POST"
        return stream(self.daemon, path, body, lambda view: progress(_event(view.to_dict())), self.warn)

    async def _call(self, method: str, path: str, body: dict[str, Any],
                    progress: Callable[[Event], None]) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(lambda: self._run(method, path, body, progress))

    @staticmethod
    def _applied(project: str, data: dict[str, Any]) -> Applied:
        return Applied(project, Plan(project=project), _result(data), tuple(data.get("wait_errors", ())),
                       said_changed=bool(data.get("changed", True)))

    # ------------------------------------------------------------------ through the daemon

    async def up(self, project: ProjectOptions, options: UpOptions | None = None,
                 progress: Callable[[Event], None] = lambda _: None) -> Applied:
        opt = options or UpOptions()
        if opt.dry_run:
            return await self.local.up(project, opt, progress)
        loaded = await anyio.to_thread.run_sync(self.loader, project)
        for w in loaded.warnings:
            self.warn(w.render())
        stack = loaded.stack
        check_services(stack, opt.services)
        body = up_body({k: getattr(opt, k) for k in UP_FIELDS}, project.envs) | {
            "stack": stack.model_dump(mode="json"), "files": list(loaded.discovered.files)}
        answer = await self._call("POST", project_path(stack.name, "up"), body, progress)
        return self._applied(stack.name, answer)

    async def _target(self, project: ProjectOptions,
                      services: tuple[str, ...]) -> tuple[str, dict[str, Any] | None]:
        name, stack = await self._project(project)
        check_services(stack, services)
        return name, None if stack is None else stack.model_dump(mode="json")

    async def down(self, project: ProjectOptions, options: DownOptions | None = None,
                   progress: Callable[[Event], None] = lambda _: None) -> Applied:
        opt = options or DownOptions()
        if opt.dry_run:
            return await self.local.down(project, opt, progress)
        name, stack = await self._target(project, ())
        body = {"stack": stack, "remove_orphans": opt.remove_orphans, "volumes": opt.volumes,
                "timeout": opt.timeout}
        return self._applied(name, await self._call("POST", project_path(name, "down"), body, progress))

    async def _verb(self, verb: str, project: ProjectOptions, body: dict[str, Any],
                    progress: Callable[[Event], None]) -> tuple[str, dict[str, Any]]:
        name, stack = await self._target(project, tuple(body.get("services", ())))
        return name, await self._call("POST", project_path(name, verb), {"stack": stack, **body}, progress)

    async def stop(self, project: ProjectOptions, options: StopOptions | None = None,
                   progress: Callable[[Event], None] = lambda _: None) -> Applied:
        opt = options or StopOptions()
        return self._applied(*await self._verb("stop", project, {"services": list(opt.services),
                                                                 "timeout": opt.timeout}, progress))

    async def start(self, project: ProjectOptions, options: StartOptions | None = None,
                    progress: Callable[[Event], None] = lambda _: None) -> Applied:
        opt = options or StartOptions()
        return self._applied(*await self._verb("start", project, {"services": list(opt.services)}, progress))

    async def restart(self, project: ProjectOptions, options: RestartOptions | None = None,
                      progress: Callable[[Event], None] = lambda _: None) -> Applied:
        opt = options or RestartOptions()
        return self._applied(*await self._verb("restart", project, {"services": list(opt.services),
                                                                    "timeout": opt.timeout}, progress))

    async def kill(self, project: ProjectOptions, options: KillOptions | None = None,
                   progress: Callable[[Event], None] = lambda _: None) -> Result:
        opt = options or KillOptions()
        _, data = await self._verb("kill", project, {"services": list(opt.services), "signal": opt.signal},
                                   progress)
        return _result(data)

    # ------------------------------------------------------------------ here

    async def records(self, project: str) -> list[ContainerRecord]:
        return await self.local.records(project)

    async def logs(self, project: ProjectOptions, options: LogsOptions | None = None,
                   emit: Callable[[LogEntry], None] = lambda _: None) -> None:
        await self.local.logs(project, options, emit)
