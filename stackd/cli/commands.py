"""What each ``stack`` verb does, given parsed arguments: load, compute, print.

Verbs share their name with their options class (``up`` / ``UpOptions``). The verbs that look at
or change the host call ``stackd.daemon.service.StackService`` over the host driver ``run`` was
given (this machine's by default, which needs root: one line says so before anything else) and
render what it returns: progress events, tables, JSON lines, logs. ``up`` without ``-d`` follows
the logs until interrupted (``attached``). Printing happens here and nowhere below this layer.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import yaml

from stackd.cli import attached, fast, images
from stackd.cli.progress import Progress
from stackd.cli.progress import report as _report
from stackd.errors import Problem, SpecError, StackdError
from stackd.spec.discover import available_envs, discover
from stackd.spec.loader import Loaded, load
from stackd.spec.options import ProjectOptions
from stackd.spec.validate import to_compose_dict

if TYPE_CHECKING:
    from stackd.cli.remote import RemoteService
    from stackd.daemon.service import Applied, HostDriver, StackService
    from stackd.execute import Clock

_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    """libyaml's emitter; block style, multi-line strings as literal blocks, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: Any, data: str) -> Any:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _load(options: ProjectOptions, err: TextIO) -> Loaded:
    loaded = load(options)
    for w in loaded.warnings:
        print(f"warning: {w.render()}", file=err)
    return loaded


def config(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO) -> int:
    loaded = _load(options, err)
    stack = loaded.stack
    if args.quiet:
        return 0
    lines: list[str] | None = None
    if args.services:
        lines = list(stack.services)
    elif args.volumes:
        lines = list(stack.volumes)
    elif args.networks:
        lines = list(stack.networks)
    elif args.list_profiles:
        lines = sorted({p for s in stack.services.values() for p in s.profiles})
    elif args.hash:
        names = list(stack.services) if args.hash == "*" else [n.strip() for n in args.hash.split(",")]
        unknown = [n for n in names if n not in stack.services]
        if unknown:
            raise SpecError([Problem(f"no such service: {n}", hint=f"services: {', '.join(stack.services)}")
                             for n in unknown])
        from stackd.plan.hashing import service_hash

        lines = [f"{n} {service_hash(stack, n)}" for n in names]
    if lines is not None:
        text = "".join(f"{line}\n" for line in lines)
    else:
        data = to_compose_dict(stack)
        if args.service_names:
            data["services"] = {k: v for k, v in data.get("services", {}).items() if k in args.service_names}
        text = json.dumps(data, indent=2) + "\n" if args.format == "json" else to_yaml(data)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        out.write(text)
    return 0


def envs(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO) -> int:
    d = discover(ProjectOptions(**{**options.__dict__, "envs": ()}))
    stem = os.path.basename(d.files[0]).split(".")[0]
    found = available_envs(d.project_dir, stem)
    if not found:
        print(f"no environments in {d.project_dir} (add {stem}.NAME.yaml or .env.NAME)", file=err)
        return 0
    for name in found:
        parts = [p for p in (f"{stem}.{name}.yaml", f"{stem}.{name}.yml", f".env.{name}")
                 if os.path.isfile(os.path.join(d.project_dir, p))]
        out.write(f"{name}\t{' '.join(parts)}\n")
    return 0


def graph(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO) -> int:
    from stackd.graph import build as build_graph
    from stackd.graph import render_dot, render_mermaid, render_text

    g = build_graph(_load(options, err).stack)
    render = {"text": render_text, "dot": render_dot, "mermaid": render_mermaid}[args.format]
    out.write(render(g))
    return 0


# ---------------------------------------------------------------------------- runtime verbs

DAEMON_VERBS = frozenset({"up", "down", "stop", "start", "restart", "kill"})
"""The verbs ``service`` sends to the daemon when it keeps the host (``ps``, ``events`` and ``ls``
go through ``fast``; the others run here either way)."""


@dataclass(frozen=True)
class Runtime:
    """What the runtime verbs run on: a host driver (default: this machine's, from
    ``stackd.daemon.service.default_host``), a clock (default: the real one), and whether to go
    through the daemon (on this machine's host unless ``no_daemon``)."""

    host: HostDriver | None = None
    clock: Clock | None = None
    no_daemon: bool = False

    @property
    def via_daemon(self) -> bool:
        return self.host is None and not self.no_daemon

    def local(self, err: TextIO, verb: str) -> StackService:
        """The service in this process, over the host (this machine's needs root for ``stack
        <verb>``)."""
        from stackd.daemon.service import StackService, default_host
        from stackd.execute.executor import EXIT_WATCH

        return StackService(default_host(verb) if self.host is None else self.host, clock=self.clock,
                            warn=lambda text: print(f"warning: {text}", file=err),
                            exit_watch=EXIT_WATCH if self.host is None else None)

    def service(self, err: TextIO, verb: str) -> StackService | RemoteService:
        """``local``, or through the daemon (started when not running) for the verbs it serves."""
        if not (self.via_daemon and verb in DAEMON_VERBS):
            return self.local(err, verb)
        from stackd.cli.client import connect
        from stackd.cli.remote import RemoteService

        return RemoteService(lambda: self.local(err, verb), connect(verb=verb),
                             warn=lambda text: print(f"warning: {text}", file=err))


def up(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
       rt: Runtime) -> int:
    from stackd.daemon.options import UpOptions

    services = tuple(args.service_names)
    up_options = UpOptions(services=services, remove_orphans=args.remove_orphans,
                           force_recreate=args.force_recreate, no_recreate=args.no_recreate,
                           no_deps=args.no_deps, scale=fast.scale_of(args.scale), build=args.build,
                           no_build=args.no_build, dry_run=args.dry_run, wait=args.wait,
                           wait_timeout=args.wait_timeout)
    service = rt.service(err, "up")
    progress = Progress(args.progress, err)

    def report(applied: Applied) -> int:
        if not applied.changed:
            print(f"nothing to do: {applied.project} is up to date", file=err)
        return _report(applied.result, err, applied.wait_errors)

    if not (args.detach or args.wait or args.dry_run):
        return anyio.run(lambda: attached.up_attached(
            service, options, up_options, out=out, err=err, progress=progress, report=report,
            report_stop=lambda stopped: _report(stopped.result, err)))
    applied = anyio.run(service.up, options, up_options, progress)
    if args.dry_run:
        the_plan = applied.plan
        json_text = json.dumps(the_plan.to_dict(), indent=2) + "\n"
        out.write(json_text if args.format == "json" else the_plan.render())
        return 0
    return report(applied)


def down(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
         rt: Runtime) -> int:
    from stackd.daemon.options import DownOptions

    down_options = DownOptions(remove_orphans=args.remove_orphans, volumes=args.volumes, timeout=args.timeout,
                               dry_run=args.dry_run)
    applied = anyio.run(rt.service(err, "down").down, options, down_options, Progress(args.progress, err))
    if args.dry_run:
        out.write(applied.plan.render())
        return 0
    return _report(applied.result, err)


def lifecycle(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
              rt: Runtime) -> int:
    """``stop``, ``start``, ``restart`` and ``kill``."""
    from stackd.daemon import options as svc

    services = tuple(args.service_names)
    s = rt.service(err, args.command)
    progress = Progress(args.progress, err)
    if args.command == "kill":
        return _report(anyio.run(s.kill, options, svc.KillOptions(services=services, signal=args.signal),
                                 progress), err)
    if args.command == "stop":
        applied = anyio.run(s.stop, options, svc.StopOptions(services=services, timeout=args.timeout),
                            progress)
    elif args.command == "start":
        applied = anyio.run(s.start, options, svc.StartOptions(services=services), progress)
    else:
        applied = anyio.run(s.restart, options, svc.RestartOptions(services=services, timeout=args.timeout),
                            progress)
    return _report(applied.result, err)


def _table(rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def ps(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
       rt: Runtime) -> int:
    if rt.via_daemon:
        return fast.ps(args, options, out)
    from stackd.daemon.options import PsOptions

    rows = anyio.run(rt.local(err, "ps").ps, options,
                     PsOptions(services=tuple(args.service_names), all=args.all))
    if args.format == "json":
        for r in rows:
            out.write(json.dumps(r.to_dict()) + "\n")
        return 0
    _table([["NAME", "SERVICE", "STATUS", "PORTS"]] +
           [[r.name, r.service, r.status, ", ".join(r.ports)] for r in rows], out)
    return 0


def logs(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
         rt: Runtime) -> int:
    from stackd.daemon.options import LogsOptions

    if args.tail != "all" and not args.tail.isdigit():
        raise SpecError(Problem(f"--tail expects a number or `all`, got {args.tail!r}"))
    tail = None if args.tail == "all" else int(args.tail)
    opts = LogsOptions(services=tuple(args.service_names), follow=args.follow, timestamps=args.timestamps,
                       tail=tail)
    try:
        anyio.run(rt.local(err, "logs").logs, options, opts, attached.printer(out))
    except KeyboardInterrupt:
        return 130
    return 0


def exec_(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
          rt: Runtime) -> int:
    from stackd.daemon.options import ExecOptions

    if not args.argv:
        raise SpecError(Problem("exec needs a command to run", hint="stack exec SERVICE COMMAND [ARG...]"))
    env = dict(item.partition("=")[::2] for item in args.exec_env)
    result = anyio.run(rt.local(err, "exec").exec, options,
                       ExecOptions(service=args.service, command=tuple(args.argv), index=args.index,
                                   env=env, user=args.user))
    out.write(result.stdout.decode("utf-8", errors="replace"))
    err.write(result.stderr.decode("utf-8", errors="replace"))
    return result.exit_code


def port(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
         rt: Runtime) -> int:
    from stackd.daemon.options import PortOptions

    number, _, protocol = args.port.partition("/")
    if not number.isdigit():
        raise SpecError(Problem(f"PRIVATE_PORT must be a port number, got {args.port!r}"))
    opts = PortOptions(service=args.service, port=int(number), protocol=protocol or args.protocol,
                       index=args.index)
    out.write(anyio.run(rt.local(err, "port").port, options, opts) + "\n")
    return 0


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value = value / 1024  # type: ignore[assignment]
    return str(value)


def stats(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
          rt: Runtime) -> int:
    from stackd.daemon.options import StatsOptions

    opts = StatsOptions(services=tuple(args.service_names))
    rows = anyio.run(rt.local(err, "stats").stats, options, opts)
    if args.format == "json":
        for r in rows:
            out.write(json.dumps(r.to_dict()) + "\n")
        return 0
    _table([["NAME", "SERVICE", "CPU %", "MEM USAGE / LIMIT", "PIDS"]] + [
        [r.name, r.service or f"({r.kind})", "-" if r.cpu_percent is None else f"{r.cpu_percent:.2f}%",
         f"{_size(r.memory_bytes)} / {_size(r.memory_limit)}", "-" if r.pids is None else str(r.pids)]
        for r in rows], out)
    return 0


def _needs_daemon(rt: Runtime, verb: str) -> None:
    if not rt.via_daemon:
        raise StackdError(f"`stack {verb}` needs the stackd daemon (it is what keeps stacks and their "
                          "events); drop --no-daemon")


def events(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
           rt: Runtime) -> int:
    _needs_daemon(rt, "events")
    return fast.events(args, options, out)


def ls(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO, rt: Runtime) -> int:
    _needs_daemon(rt, "ls")
    return fast.ls(options, out)


_VERBS = {"config": config, "envs": envs, "graph": graph, **images.VERBS}
_RUNTIME_VERBS = {"up": up, "down": down, "ps": ps, "logs": logs, "exec": exec_, "port": port, "stats": stats,
                  "stop": lifecycle, "start": lifecycle, "restart": lifecycle, "kill": lifecycle,
                  "events": events, "ls": ls}


def dispatch(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO,
             rt: Runtime | None = None) -> int:
    rt = rt or Runtime()
    if args.command in _VERBS:
        return _VERBS[args.command](args, options, out, err)
    return _RUNTIME_VERBS[args.command](args, options, out, err, rt)
