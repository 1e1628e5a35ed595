"""The verbs on the shortest path to the daemon. ``ps``, ``events`` and ``ls`` need only the
project's name (read from the stack files' YAML by ``spec.projectname``, no models) and one
request; ``up -d``/``up --wait`` and ``down`` load the stack (the client shows its mistakes with
file and line) and stream the daemon's progress. Nothing here imports the planner, the executor,
the host drivers or the service layer, so that these commands cost little more than starting
Python and loading the stack. The daemon checks service names for ``ps``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from stackd.cli import client
from stackd.cli.client import Refused, project_path
from stackd.cli.progress import EventView, Progress, report, result_of
from stackd.errors import Problem, SpecError
from stackd.spec.options import ProjectOptions
from stackd.spec.projectname import project_name

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


def up_body(stack: Any, files: Sequence[str], envs: Sequence[str],
            fields: Mapping[str, Any]) -> dict[str, Any]:
    """The request of ``up``: the loaded stack, where it came from, and the options."""
    body = {"stack": stack.model_dump(mode="json"), "files": list(files), "envs": list(envs)}
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


def up(args: argparse.Namespace, options: ProjectOptions, err: TextIO) -> int:
    """``up -d`` or ``up --wait`` through the daemon."""
    from stackd.spec.loader import check_services, load

    def warn(text: str) -> None:
        print(f"warning: {text}", file=err)

    loaded = load(options)
    for w in loaded.warnings:
        warn(w.render())
    check_services(loaded.stack, args.service_names)
    fields = {**vars(args), "services": tuple(args.service_names), "scale": scale_of(args.scale)}
    body = up_body(loaded.stack, loaded.discovered.files, options.envs, fields)
    daemon = client.connect(options.environ, verb="up")
    final = stream(daemon, project_path(loaded.stack.name, "up"), body, Progress(args.progress, err), warn)
    if not final.get("changed", True):
        print(f"nothing to do: {loaded.stack.name} is up to date", file=err)
    return report(result_of(final), err, final.get("wait_errors", ()))


def down(args: argparse.Namespace, options: ProjectOptions, err: TextIO) -> int:
    """``down`` through the daemon (the stack is sent when there is a file; ``-p`` alone works)."""
    from stackd.spec.loader import load

    try:
        loaded = load(options)
    except SpecError as exc:
        no_file = all(p.message.startswith("no stack file found") for p in exc.problems)
        if not (no_file and options.project_name and not options.files):
            raise
        name, stack = project_name(options), None
    else:
        name, stack = loaded.stack.name, loaded.stack.model_dump(mode="json")
    body = {"stack": stack, "remove_orphans": args.remove_orphans, "volumes": args.volumes,
            "timeout": args.timeout}
    daemon = client.connect(options.environ, verb="down")
    final = stream(daemon, project_path(name, "down"), body, Progress(args.progress, err),
                   lambda text: print(f"warning: {text}", file=err))
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
