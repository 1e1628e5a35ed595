"""The verbs the daemon answers at once (``ps``, ``events``, ``ls``), on the shortest path: the
project's name from the stack files' YAML (``spec.projectname``, no models), one request, the
rows printed. Nothing here imports the models, the host drivers or the service layer, so that
``stack ps`` costs little more than starting Python. The daemon checks service names.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from stackd.cli import client
from stackd.cli.client import project_path
from stackd.spec.options import ProjectOptions
from stackd.spec.projectname import project_name


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


def dispatch(args: argparse.Namespace, options: ProjectOptions, out: TextIO) -> int:
    if args.command == "ps":
        return ps(args, options, out)
    if args.command == "events":
        return events(args, options, out)
    return ls(options, out)
