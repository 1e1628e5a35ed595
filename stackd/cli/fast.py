"""The verbs on the shortest path to the daemon. ``ps``, ``events`` and ``ls`` need only the
project's name (read from the stack files' YAML by ``spec.projectname``, no models) and one
request; ``up -d``/``up --wait`` and ``down`` send where the stack is (the daemon loads it and
sends its mistakes back with file and line) and stream the daemon's progress. Nothing here
imports the models, the planner, the executor, the host drivers or the service layer, so that
these commands cost little more than starting Python. The daemon checks service names.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from stackd.cli import client
from stackd.cli.client import Refused, project_path
from stackd.cli.progress import EventView, Progress, report, result_of
from stackd.errors import Problem, SpecError
from stackd.spec.options import ProjectOptions

UP_FIELDS = ("services", "remove_orphans", "force_recreate", "no_recreate", "no_deps", "scale", "build",
             "no_build", "wait", "wait_timeout")
"""The options of ``up`` the daemon takes (``api.UpBody``), by name."""


def scale_of(values: Sequence[str]) -> dict[str, int]:
    """``--scale SERVICE=N`` options as a mapping."""
    result: dict[str, int] = {}
    for item in values:
        name, sep, number = item.partition("=")
        if not sep or not number.isdigit():
            raise SpecError(Problem(f"--scale expects SERVICE=N, got {item!r}"))
        result[name] = int(number)
    return result


def up_body(fields: Mapping[str, Any], envs: Sequence[str]) -> dict[str, Any]:
    """The options of ``up`` as the daemon takes them (``api.UpBody``, without the stack)."""
    body: dict[str, Any] = {"envs": list(envs)}
    for key in UP_FIELDS:
        value = fields[key]
        body[key] = list(value) if key == "services" else dict(value) if key == "scale" else value
    return body


def stream(daemon: client.Daemon, path: str, body: Mapping[str, Any],
           progress: Callable[[EventView], None], warn: Callable[[str], None]) -> dict[str, Any]:
    """Send a changing verb; hand its progress lines on; its result (or its error, raised)."""
    final: dict[str, Any] | None = None
    for line in daemon.stream("POST", path, body):
        if "event" in line:
            progress(EventView(line["event"]))
        elif "warning" in line:
            warn(str(line["warning"]))
        elif "error" in line:
            raise Refused(str(line["error"]["message"]), int(line["error"]["exit_code"]))
        elif "result" in line:
            final = line["result"]
    if final is None:
        raise client.DaemonError("stackd ended the answer without a result (did it stop?); "
                                 "`stack ps` shows where the stack is")
    return final


def source_of(options: ProjectOptions) -> dict[str, Any]:
    """Where the stack is (``api.SourceBody``), for the daemon to load it."""
    return {"files": list(options.files), "project_name": options.project_name,
            "project_directory": options.project_directory, "env_files": list(options.env_files),
            "envs": list(options.envs), "profiles": list(options.profiles),
            "services": list(options.services), "environ": dict(options.environ),
            "cwd": os.path.abspath(options.cwd)}


def project_name(options: ProjectOptions) -> str:
    """``spec.projectname.project_name``, imported only when ``-p`` does not name the project
    (it reads the stack files' YAML)."""
    if options.project_name:
        from stackd.spec.discover import check_project_name

        return check_project_name(options.project_name, "-p")
    from stackd.spec.projectname import project_name as find

    return find(options)


def _warn(err: TextIO) -> Callable[[str], None]:
    return lambda text: print(f"warning: {text}", file=err)


def _target(verb: str, options: ProjectOptions, err: TextIO, services: Sequence[str] = ()
            ) -> tuple[client.Daemon, str, dict[str, Any]]:
    """The daemon, the project's name, and what to send of the stack. A running daemon is sent
    where the stack is (``source``) and loads it itself, so that this process imports no models.
    A daemon that is not running is started only after the stack was loaded here (it is sent
    whole): a mistake in it never starts one. ``down -p NAME`` needs no file."""
    daemon = client.running(options.environ, verb=verb)
    if daemon is not None:
        return daemon, project_name(options), {"source": source_of(options)}
    from stackd.spec.loader import check_services, load, load_project

    if verb == "up":
        loaded = load(options)
        name = loaded.stack.name
    else:
        name, found = load_project(options)
        if found is None:
            return client.connect(options.environ, verb=verb), name, {"stack": None}
        loaded = found
    for w in loaded.warnings:
        _warn(err)(w.render())
    check_services(loaded.stack, services)
    sent = {"stack": loaded.stack.model_dump(mode="json"), "files": list(loaded.discovered.files)}
    return client.connect(options.environ, verb=verb), name, sent


def up(args: argparse.Namespace, options: ProjectOptions, err: TextIO) -> int:
    """``up -d`` or ``up --wait`` through the daemon."""
    fields = {**vars(args), "services": tuple(args.service_names), "scale": scale_of(args.scale)}
    daemon, name, stack = _target("up", options, err, args.service_names)
    body = up_body(fields, options.envs) | stack
    final = stream(daemon, project_path(name, "up"), body, Progress(args.progress, err), _warn(err))
    if not final.get("changed", True):
        print(f"nothing to do: {name} is up to date", file=err)
    return report(result_of(final), err, final.get("wait_errors", ()))


def down(args: argparse.Namespace, options: ProjectOptions, err: TextIO) -> int:
    """``down`` through the daemon (the stack is sent when there is a file; ``-p`` alone works)."""
    daemon, name, stack = _target("down", options, err)
    body = {"remove_orphans": args.remove_orphans, "volumes": args.volumes, "timeout": args.timeout} | stack
    body.pop("files", None)
    final = stream(daemon, project_path(name, "down"), body, Progress(args.progress, err), _warn(err))
    return report(result_of(final), err)


def table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def ps(args: argparse.Namespace, options: ProjectOptions, out: TextIO) -> int:
    daemon = client.connect(options.environ, verb="ps")
    rows: list[dict[str, Any]] = daemon.get(project_path(project_name(options), "containers"), {
        "all": str(args.all).lower(), "service": list(args.service_names)})
    if args.format == "json":
        for r in rows:
            out.write(json.dumps({k: v for k, v in r.items() if k != "status"}) + "\n")
        return 0
    table([["NAME", "SERVICE", "STATUS", "PORTS"]] +
          [[r["name"], r["service"], r["status"], ", ".join(r["ports"])] for r in rows], out)
    return 0


def _event_line(e: Mapping[str, Any]) -> str:
    data = e.get("data") or {}
    name = data.get("name") or e["resource"]
    return f"{e['time']}  {e['project']}  {name}  {e['kind']}  {e['message']}"


def events(args: argparse.Namespace, options: ProjectOptions, out: TextIO) -> int:
    """Stream the daemon's journal (this project's, or every project's with --all-projects):
    new events as they come, or (``--no-follow``) every kept one."""
    query: dict[str, Any] = {"follow": str(args.follow).lower()}
    if not args.all_projects:
        query["project"] = project_name(options)
    since = args.since if args.since is not None or args.follow else 0
    if since is not None:
        query["since"] = since
    try:
        for e in client.connect(options.environ, verb="events").stream("GET", "/v1/events", query=query):
            out.write((json.dumps(e) if args.json else _event_line(e)) + "\n")
            out.flush()
    except KeyboardInterrupt:
        return 130
    return 0


def ls(options: ProjectOptions, out: TextIO) -> int:
    """The stacks the daemon keeps, with their revision and files."""
    info = client.connect(options.environ, verb="ls").get("/v1/info")
    table([["NAME", "REVISION", "APPLIED", "FILES"]] + [
        [p["project"], str(p["revision"]), p["applied_at"], ",".join(p["files"])] for p in info["projects"]],
        out)
    return 0


FAST = frozenset({"ps", "events", "ls", "up", "down"})


def takes(args: argparse.Namespace) -> bool:
    """Whether this command goes the short way (``up`` only detached and not a dry run)."""
    if args.command == "up":
        return bool((args.detach or args.wait) and not args.dry_run)
    if args.command == "down":
        return not args.dry_run
    return args.command in FAST


def dispatch(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO) -> int:
    if args.command == "up":
        return up(args, options, err)
    if args.command == "down":
        return down(args, options, err)
    if args.command == "ps":
        return ps(args, options, out)
    if args.command == "events":
        return events(args, options, out)
    return ls(options, out)
