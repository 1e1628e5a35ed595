"""The daemon's JSON API (FastAPI, served by uvicorn on a root-only unix socket).

Verbs that change the host answer with a stream of JSON lines (``application/x-ndjson``): one
``{"event": {...}}`` per progress event, ``{"warning": "..."}`` lines, and one last line,
``{"result": {...}}`` or ``{"error": {"message": ..., "exit_code": ...}}``. The verb goes on in
the daemon when the client goes away (the desired state is recorded; the reconciler finishes
it). ``GET /v1/events`` streams journaled events the same way. ``up`` and ``down`` take either
the stack the client loaded or where it is (``source``: the client's files, options, working
directory and environment), which the daemon loads as the client would have: a mistake comes
back as an error with its file, line and key and exit code 2, before anything is changed.
``openapi()`` is the document kept in docs/api/openapi.json.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import anyio
import anyio.abc
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from stackd import __version__
from stackd.daemon import options as opts
from stackd.daemon.manager import Manager, Source
from stackd.errors import Problem, SpecError, StackdError
from stackd.execute import Event, Result
from stackd.spec.loader import check_services, load
from stackd.spec.models import Stack
from stackd.spec.options import ProjectOptions

NDJSON = "application/x-ndjson"

# ---------------------------------------------------------------------------------------- bodies


class SourceBody(BaseModel):
    """Where the client was told the stack is (``-f``, ``-p``, ``--project-directory``,
    ``--env-file``, ``--env``, ``--profile``), its working directory and its environment: the
    daemon loads the stack itself, as ``stack config`` would there."""

    files: list[str] = []
    project_name: str | None = None
    project_directory: str | None = None
    env_files: list[str] = []
    envs: list[str] = []
    profiles: list[str] = []
    services: list[str] = []
    environ: dict[str, str] = {}
    cwd: str

    def options(self) -> ProjectOptions:
        return ProjectOptions(
            files=tuple(self.files), project_name=self.project_name, project_directory=self.project_directory,
            env_files=tuple(self.env_files), envs=tuple(self.envs), profiles=tuple(self.profiles),
            services=tuple(self.services), environ=dict(self.environ), cwd=self.cwd)


_STACK_DOC = "the loaded stack (`stack config --format json` model); or give `source`"
_SOURCE_DOC = "where the stack is, for the daemon to load it (instead of `stack`)"


class UpBody(BaseModel):
    stack: dict[str, Any] | None = Field(None, description=_STACK_DOC)
    source: SourceBody | None = Field(None, description=_SOURCE_DOC)
    files: list[str] = []
    envs: list[str] = []
    services: list[str] = []
    remove_orphans: bool = False
    force_recreate: bool = False
    no_recreate: bool = False
    no_deps: bool = False
    scale: dict[str, int] = {}
    build: bool = False
    no_build: bool = False
    wait: bool = False
    wait_timeout: float | None = None


class DownBody(BaseModel):
    stack: dict[str, Any] | None = Field(None, description=_STACK_DOC)
    source: SourceBody | None = Field(None, description=_SOURCE_DOC)
    remove_orphans: bool = False
    volumes: bool = False
    timeout: float | None = None


class VerbBody(BaseModel):
    """``stop``, ``start``, ``restart`` and ``kill``."""

    stack: dict[str, Any] | None = None
    services: list[str] = []
    timeout: float | None = None
    signal: str = "SIGKILL"


class ContainerRow(BaseModel):
    """One row of ``stack ps``; ``status`` is the text the table shows (``running (healthy)``)."""

    name: str
    service: str
    number: int
    state: str
    health: str
    pid: int | None
    exit_code: int | None
    restarts: int
    started_at: str | None
    ports: list[str]
    status: str


class Info(BaseModel):
    version: str
    pid: int
    projects: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------- helpers


def result_dict(result: Result | None, *, changed: bool = True, wait_errors: tuple[str, ...] = ()
                ) -> dict[str, Any]:
    outcomes = [] if result is None else [
        {"op": o.op, "status": o.status, "message": o.message} for o in result.outcomes]
    return {"changed": changed, "outcomes": outcomes,
            "warnings": [] if result is None else list(result.warnings), "wait_errors": list(wait_errors)}


def _stack(data: dict[str, Any] | None) -> Stack | None:
    return None if data is None else Stack.model_validate(data)


async def _up_stack(body: UpBody, warn: Callable[[str], None]) -> tuple[Stack, Source]:
    """The stack ``up`` is asked for: the one sent, or the one at ``source``, loaded here (its
    mistakes go back to the client as errors with exit code 2, before anything is changed)."""
    if body.source is None:
        if body.stack is None:
            raise SpecError(Problem("up needs the stack or where it is (`stack` or `source`)"))
        return Stack.model_validate(body.stack), Source(tuple(body.files), tuple(body.envs))
    loaded = await anyio.to_thread.run_sync(load, body.source.options())
    for w in loaded.warnings:
        warn(w.render())
    check_services(loaded.stack, body.services)
    return loaded.stack, Source(tuple(loaded.discovered.files), tuple(body.source.envs))


def _stream(work: Callable[[Callable[[Event], None], Callable[[str], None]], Awaitable[dict[str, Any]]]
            ) -> StreamingResponse:
    """Run ``work(progress, warn)`` in the daemon and stream what it says, then its result. The
    work is shielded: a client that goes away does not cancel it."""
    send, receive = anyio.create_memory_object_stream[str](1000)

    def line(obj: dict[str, Any]) -> None:
        # a slow or gone client loses progress lines, never the work
        with contextlib.suppress(anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            send.send_nowait(json.dumps(obj) + "\n")

    async def run() -> None:
        with anyio.CancelScope(shield=True):
            try:
                final = await work(lambda e: line({"event": e.to_dict()}), lambda w: line({"warning": w}))
                line({"result": final})
            except StackdError as exc:
                line({"error": {"message": str(exc), "exit_code": exc.exit_code}})
            except BaseExceptionGroup as group:
                errors = [e for e in group.exceptions if isinstance(e, StackdError)]
                if not errors:
                    raise
                line({"error": {"message": "\n".join(str(e) for e in errors),
                                "exit_code": max(e.exit_code for e in errors)}})
            finally:
                send.close()

    async def body() -> AsyncIterator[str]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            async with receive:
                async for text in receive:
                    yield text

    return StreamingResponse(body(), media_type=NDJSON)


# ---------------------------------------------------------------------------------------- the app


def make_app(manager: Manager) -> FastAPI:
    app = FastAPI(title="stackd", version=__version__,
                  description="Keeps Compose-compatible stacks in their declared state on one host.")

    @app.exception_handler(StackdError)
    async def refused(_: Request, exc: StackdError) -> JSONResponse:
        """A verb that answers at once refuses with 400 and the error the CLI prints."""
        return JSONResponse({"error": {"message": str(exc), "exit_code": exc.exit_code}}, status_code=400)

    @app.get("/v1/ping")
    async def ping() -> dict[str, Any]:
        """Whether the daemon answers (what ``stack`` asks before every verb)."""
        return {"version": __version__, "pid": os.getpid()}

    @app.get("/v1/info", response_model=Info)
    async def info() -> Info:
        return Info(version=__version__, pid=os.getpid(), projects=await manager.projects())

    @app.post("/v1/projects/{project}/up", response_class=StreamingResponse,
              responses={200: {"content": {NDJSON: {}}, "description": "progress lines, then the result"}})
    async def up(project: str, body: UpBody) -> StreamingResponse:
        options = opts.UpOptions(services=tuple(body.services), remove_orphans=body.remove_orphans,
                                 force_recreate=body.force_recreate, no_recreate=body.no_recreate,
                                 no_deps=body.no_deps, scale=dict(body.scale), build=body.build,
                                 no_build=body.no_build, wait=body.wait, wait_timeout=body.wait_timeout)

        async def work(progress: Callable[[Event], None], warn: Callable[[str], None]) -> dict[str, Any]:
            stack, source = await _up_stack(body, warn)
            if stack.name != project:
                stack = stack.model_copy(update={"name": project})
            applied = await manager.up(stack, options, source, progress, warn)
            return result_dict(applied.result, changed=applied.changed, wait_errors=applied.wait_errors)

        return _stream(work)

    @app.post("/v1/projects/{project}/down", response_class=StreamingResponse,
              responses={200: {"content": {NDJSON: {}}, "description": "progress lines, then the result"}})
    async def down(project: str, body: DownBody) -> StreamingResponse:
        options = opts.DownOptions(remove_orphans=body.remove_orphans, volumes=body.volumes,
                                   timeout=body.timeout)

        async def work(progress: Callable[[Event], None], warn: Callable[[str], None]) -> dict[str, Any]:
            stack = _stack(body.stack)
            if body.source is not None:
                _, loaded = await manager.service(warn).loaded(body.source.options())
                stack = None if loaded is None else loaded.stack
            applied = await manager.down(project, stack, options, progress, warn)
            return result_dict(applied.result, changed=applied.changed)

        return _stream(work)

    @app.post("/v1/projects/{project}/{verb}", response_class=StreamingResponse,
              responses={200: {"content": {NDJSON: {}}, "description": "progress lines, then the result"}})
    async def lifecycle(project: str, verb: opts.Verb, body: VerbBody) -> StreamingResponse:
        stack, services = _stack(body.stack), tuple(body.services)

        async def work(progress: Callable[[Event], None], _: Callable[[str], None]) -> dict[str, Any]:
            if verb == "kill":
                return result_dict(await manager.kill(project, stack, opts.KillOptions(
                    services=services, signal=body.signal), progress))
            if verb == "stop":
                applied = await manager.stop(project, stack, opts.StopOptions(
                    services=services, timeout=body.timeout), progress)
            elif verb == "start":
                applied = await manager.start(project, stack, opts.StartOptions(services=services), progress)
            else:
                applied = await manager.restart(project, stack, opts.RestartOptions(
                    services=services, timeout=body.timeout), progress)
            return result_dict(applied.result)

        return _stream(work)

    @app.get("/v1/projects/{project}/containers", response_model=list[ContainerRow])
    async def containers(project: str, all: bool = False,
                         service: Annotated[list[str] | None, Query()] = None) -> list[ContainerRow]:
        rows = await manager.ps(project, None, opts.PsOptions(services=tuple(service or ()), all=all))
        return [ContainerRow.model_validate({**r.to_dict(), "status": r.status}) for r in rows]

    @app.get("/v1/events", response_class=StreamingResponse,
             responses={200: {"content": {NDJSON: {}}, "description": "one journaled event per line"}})
    async def events(since: int | None = None, project: str | None = None, follow: bool = False
                     ) -> StreamingResponse:
        journal = manager.reconciler.journal
        store = manager.store

        async def body() -> AsyncIterator[str]:
            last = since if since is not None else (await anyio.to_thread.run_sync(
                store.last_event_id) if follow else 0)
            while True:
                changed = journal.next_event()
                found = await anyio.to_thread.run_sync(functools.partial(store.events_since, last,
                                                                         project=project))
                for e in found:
                    last = e.id
                    yield json.dumps({"id": e.id, "time": e.ts.isoformat(), "project": e.project,
                                      "resource": e.resource, "kind": e.kind, "message": e.message,
                                      "data": dict(e.data)}) + "\n"
                if not follow:
                    return
                await changed.wait()

        return StreamingResponse(body(), media_type=NDJSON)

    return app


def openapi(app: FastAPI) -> str:
    """The OpenAPI document of ``app``, as kept in docs/api/openapi.json."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
