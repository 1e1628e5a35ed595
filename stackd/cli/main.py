"""The ``stack`` command line: parse argv, call the service functions, print, exit.

This is the only layer that prints, reads argv or exits the process. Every user mistake ends as
a message on stderr with exit code 2 and no traceback; a problem at run time (also one raised in
tasks that ran side by side) as its message with exit code 1. The commands' work lives in
``stackd.cli.commands``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from stackd import __version__
from stackd.cli import images
from stackd.errors import StackdError
from stackd.spec.options import ProjectOptions

if TYPE_CHECKING:
    from stackd.daemon.service import HostDriver
    from stackd.execute import Clock


def _global_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stack",
        description="Declarative multi-container stacks on one Linux host (Compose-compatible).")
    p.add_argument("--version", action="version", version=f"stack {__version__}")
    p.add_argument("-f", "--file", dest="files", action="append", default=[], metavar="FILE",
                   help="stack file (repeatable; default: stack.yaml or compose.yaml, or $STACK_FILE)")
    p.add_argument("-p", "--project-name", help="project name (default: name: in the file, or the directory)")
    p.add_argument("--project-directory",
                   help="base directory for relative paths (default: the first file's)")
    p.add_argument("--env-file", dest="env_files", action="append", default=[], metavar="PATH",
                   help="variables for interpolation (repeatable; replaces .env)")
    p.add_argument("--env", dest="envs", action="append", default=[], metavar="NAME",
                   help="apply the NAME overlay: stack.NAME.yaml and .env.NAME (repeatable; or $STACK_ENV)")
    p.add_argument("--profile", dest="profiles", action="append", default=[], metavar="PROFILE",
                   help="enable a profile (repeatable; or $STACK_PROFILES)")
    p.add_argument("--no-daemon", action="store_true",
                   help="do the work in this process, without the stackd daemon (or $STACK_NO_DAEMON=1): "
                        "nothing keeps the stack running afterwards, as with Compose")
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _global_parser()
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    c = sub.add_parser("config", help="validate and print the merged stack")
    c.add_argument("service_names", nargs="*", metavar="SERVICE")
    c.add_argument("-q", "--quiet", action="store_true", help="only validate (exit 0 or 2)")
    c.add_argument("--format", choices=("yaml", "json"), default="yaml")
    c.add_argument("--services", action="store_true", help="print the service names, one per line")
    c.add_argument("--volumes", action="store_true", help="print the volume names, one per line")
    c.add_argument("--networks", action="store_true", help="print the network names, one per line")
    c.add_argument("--profiles", dest="list_profiles", action="store_true",
                   help="print the profile names, one per line")
    c.add_argument("--hash", metavar="SERVICE", help="print the config hash of SERVICE (or '*' for all)")
    c.add_argument("-o", "--output", metavar="PATH", help="write to PATH instead of stdout")

    sub.add_parser("envs", help="list the environments (overlays) the project offers")

    g = sub.add_parser("graph", help="print the dependency graph")
    g.add_argument("--format", choices=("text", "dot", "mermaid"), default="text")

    progress = argparse.ArgumentParser(add_help=False)
    progress.add_argument("--progress", choices=("auto", "tty", "plain", "json", "quiet"), default="auto",
                          help="how to show progress (auto: tty on a terminal, else plain)")

    u = sub.add_parser("up", parents=[progress], help="create and start the stack")
    u.add_argument("service_names", nargs="*", metavar="SERVICE")
    u.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    u.add_argument("-d", "--detach", action="store_true", help="return once everything has started")
    u.add_argument("--wait", action="store_true",
                   help="wait until the containers run and are healthy (implies --detach)")
    u.add_argument("--wait-timeout", type=float, default=None, metavar="SECONDS")
    u.add_argument("--remove-orphans", action="store_true")
    u.add_argument("--force-recreate", action="store_true")
    u.add_argument("--no-recreate", action="store_true")
    u.add_argument("--no-deps", action="store_true")
    u.add_argument("--build", action="store_true")
    u.add_argument("--no-build", action="store_true")
    u.add_argument("--scale", action="append", default=[], metavar="SERVICE=N")
    u.add_argument("--format", choices=("text", "json"), default="text", help="plan format with --dry-run")
    u.add_argument("--no-daemon", dest="up_no_daemon", action="store_true",
                   help="converge once in this process, without the daemon (as Compose does)")

    d = sub.add_parser("down", parents=[progress], help="stop and remove the stack")
    d.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    d.add_argument("--remove-orphans", action="store_true")
    d.add_argument("-v", "--volumes", action="store_true", help="also remove named volumes")
    d.add_argument("-t", "--timeout", type=int, default=None)

    ps = sub.add_parser("ps", help="list the containers")
    ps.add_argument("service_names", nargs="*", metavar="SERVICE")
    ps.add_argument("-a", "--all", action="store_true", help="also containers that are not running")
    ps.add_argument("--format", choices=("table", "json"), default="table")

    lg = sub.add_parser("logs", help="show the containers' output")
    lg.add_argument("service_names", nargs="*", metavar="SERVICE")
    lg.add_argument("-f", "--follow", action="store_true")
    lg.add_argument("-t", "--timestamps", action="store_true")
    lg.add_argument("--tail", default="all", metavar="N", help="the last N lines of each container")

    ex = sub.add_parser("exec", help="run a command in a running container")
    ex.add_argument("service", metavar="SERVICE")
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND")
    ex.add_argument("--index", type=int, default=1, help="which replica (default 1)")
    ex.add_argument("-e", "--env", dest="exec_env", action="append", default=[], metavar="KEY=VAL")
    ex.add_argument("-u", "--user")
    ex.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true",
                    help="accepted; no TTY is ever given")

    for verb, text in (("stop", "stop containers"), ("start", "start stopped containers"),
                       ("restart", "restart containers"), ("kill", "send a signal to containers")):
        v = sub.add_parser(verb, parents=[progress], help=text)
        v.add_argument("service_names", nargs="*", metavar="SERVICE")
        if verb in ("stop", "restart"):
            v.add_argument("-t", "--timeout", type=int, default=None, help="seconds before killing")
        if verb == "kill":
            v.add_argument("-s", "--signal", default="SIGKILL")

    pt = sub.add_parser("port", help="print where a container port is published")
    pt.add_argument("service", metavar="SERVICE")
    pt.add_argument("port", metavar="PRIVATE_PORT")
    pt.add_argument("--protocol", choices=("tcp", "udp"), default="tcp")
    pt.add_argument("--index", type=int, default=1)

    st = sub.add_parser("stats", help="show the containers' resource use")
    st.add_argument("service_names", nargs="*", metavar="SERVICE")
    st.add_argument("--format", choices=("table", "json"), default="table")
    st.add_argument("--no-stream", action="store_true", help="accepted; stats are always one sample")

    ev = sub.add_parser("events", help="stream what the daemon does (created, died, restarted, drift...)")
    ev.add_argument("--json", action="store_true", help="one JSON object per line")
    ev.add_argument("--all-projects", action="store_true", help="events of every project, not just this one")
    ev.add_argument("--since", type=int, default=None, metavar="ID",
                    help="start after event ID (default: only new events; 0: from the first kept)")
    ev.add_argument("--no-follow", dest="follow", action="store_false",
                    help="print what is kept and return")

    sub.add_parser("ls", help="list the stacks the daemon keeps")

    images.add_parsers(sub)
    return p


def project_options(args: argparse.Namespace, environ: dict[str, str], cwd: str) -> ProjectOptions:
    services = tuple(getattr(args, "service_names", []) or [])
    if getattr(args, "service", None):
        services += (args.service,)
    return ProjectOptions(
        files=tuple(args.files), project_name=args.project_name, project_directory=args.project_directory,
        env_files=tuple(args.env_files), envs=tuple(args.envs), profiles=tuple(args.profiles),
        services=services, environ=environ, cwd=cwd)


def run(argv: Sequence[str], environ: dict[str, str] | None = None, cwd: str | None = None,
        out: TextIO | None = None, err: TextIO | None = None, *, host: HostDriver | None = None,
        clock: Clock | None = None) -> int:
    """Run one command; return its exit code. ``out``/``err`` default to stdout/stderr; ``host``
    defaults to this machine's (``stackd.daemon.service.default_host``), ``clock`` to the real one."""
    stdout = out if out is not None else sys.stdout
    stderr = err if err is not None else sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse already printed usage
        return int(exc.code or 0)
    env = dict(os.environ if environ is None else environ)
    options = project_options(args, env, cwd or os.getcwd())
    try:
        no_daemon = args.no_daemon or getattr(args, "up_no_daemon", False) or env.get(
            "STACK_NO_DAEMON", "") not in ("", "0")
        if host is None and not no_daemon:
            from stackd.cli import fast  # the short path: no planner, no executor, no drivers

            if fast.takes(args):
                return fast.dispatch(args, options, stdout, stderr)
        from stackd.cli import commands  # after parsing: --help and usage errors need none of it

        runtime = commands.Runtime(host, clock, no_daemon=no_daemon)
        return commands.dispatch(args, options, stdout, stderr, runtime)
    except StackdError as exc:
        return _say(exc, stderr)
    except BaseExceptionGroup as group:  # errors of tasks that ran side by side
        errors = _leaves(group)
        if not all(isinstance(e, StackdError) for e in errors):
            raise
        return max(_say(e, stderr) for e in errors if isinstance(e, StackdError))
    except BrokenPipeError:
        return 0


def _say(exc: StackdError, err: TextIO) -> int:
    for line in str(exc).splitlines() or [type(exc).__name__]:
        print(f"error: {line}", file=err)
    return exc.exit_code


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


def main() -> None:
    # A `stack` process is short-lived and builds many small objects at once (a 1000-service
    # file is ~100k nodes): the cyclic garbage collector would run full passes over them for
    # nothing. Reference counting still frees everything that is not in a cycle.
    gc.disable()
    try:
        code = run(sys.argv[1:])
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
