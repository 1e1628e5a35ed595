"""The ``stack`` command line: parse argv, call the service functions, print, exit.

This is the only layer that prints, reads argv or exits the process. Every user mistake ends as
a message on stderr with exit code 2 and no traceback; the commands' work lives in
``stackd.cli.commands``.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from stackd import __version__
from stackd.errors import StackdError
from stackd.spec.options import ProjectOptions


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

    u = sub.add_parser("up", help="create and start the stack")
    u.add_argument("service_names", nargs="*", metavar="SERVICE")
    u.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    u.add_argument("-d", "--detach", action="store_true", help="return once everything has started")
    u.add_argument("--remove-orphans", action="store_true")
    u.add_argument("--force-recreate", action="store_true")
    u.add_argument("--no-recreate", action="store_true")
    u.add_argument("--no-deps", action="store_true")
    u.add_argument("--build", action="store_true")
    u.add_argument("--no-build", action="store_true")
    u.add_argument("--scale", action="append", default=[], metavar="SERVICE=N")
    u.add_argument("--format", choices=("text", "json"), default="text", help="plan format with --dry-run")

    d = sub.add_parser("down", help="stop and remove the stack")
    d.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    d.add_argument("--remove-orphans", action="store_true")
    d.add_argument("-v", "--volumes", action="store_true", help="also remove named volumes")
    d.add_argument("-t", "--timeout", type=int, default=None)
    return p


def project_options(args: argparse.Namespace, environ: dict[str, str], cwd: str) -> ProjectOptions:
    services = tuple(getattr(args, "service_names", []) or [])
    return ProjectOptions(
        files=tuple(args.files), project_name=args.project_name, project_directory=args.project_directory,
        env_files=tuple(args.env_files), envs=tuple(args.envs), profiles=tuple(args.profiles),
        services=services, environ=environ, cwd=cwd)


def run(argv: Sequence[str], environ: dict[str, str] | None = None, cwd: str | None = None,
        out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; return its exit code. ``out``/``err`` default to stdout/stderr."""
    from stackd.cli import commands

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
        return commands.dispatch(args, options, stdout, stderr)
    except StackdError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0


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
