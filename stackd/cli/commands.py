"""What each ``stack`` verb does, given parsed arguments: load, compute, print.

Verbs share their name with their options class (``up`` / ``UpOptions``). Printing happens here
and nowhere below this layer.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, TextIO

import yaml

from stackd.errors import Problem, SpecError
from stackd.spec.discover import available_envs, discover
from stackd.spec.loader import Loaded, load
from stackd.spec.options import ProjectOptions
from stackd.spec.validate import to_compose_dict

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


def _scale(values: list[str]) -> dict[str, int]:
    result: dict[str, int] = {}
    for item in values:
        name, sep, number = item.partition("=")
        if not sep or not number.isdigit():
            raise SpecError(Problem(f"--scale expects SERVICE=N, got {item!r}"))
        result[name] = int(number)
    return result


def up(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO) -> int:
    from stackd.plan import Observed, UpOptions, plan

    stack = _load(options, err).stack
    up_options = UpOptions(services=tuple(args.service_names), remove_orphans=args.remove_orphans,
                           force_recreate=args.force_recreate, no_recreate=args.no_recreate,
                           no_deps=args.no_deps, scale=_scale(args.scale), build=args.build,
                           no_build=args.no_build)
    unknown = [s for s in args.service_names if s not in stack.services]
    if unknown:
        raise SpecError([Problem(f"no such service: {n}") for n in unknown])
    result = plan(stack, Observed.empty(stack.name), up_options)
    if not args.dry_run:
        print("error: this build of stackd cannot run containers yet; `stack up --dry-run` prints the plan",
              file=err)
        return 1
    out.write(json.dumps(result.to_dict(), indent=2) + "\n" if args.format == "json" else result.render())
    return 0


def down(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO) -> int:
    from stackd.plan import DownOptions, Observed, plan_down

    stack = _load(options, err).stack
    down_options = DownOptions(remove_orphans=args.remove_orphans, volumes=args.volumes, timeout=args.timeout)
    result = plan_down(stack, Observed.empty(stack.name), down_options)
    if not args.dry_run:
        print("error: this build of stackd cannot run containers yet; `stack down --dry-run` prints the plan",
              file=err)
        return 1
    out.write(result.render())
    return 0


_VERBS = {"config": config, "envs": envs, "graph": graph, "up": up, "down": down}


def dispatch(args: argparse.Namespace, options: ProjectOptions, out: TextIO, err: TextIO) -> int:
    return _VERBS[args.command](args, options, out, err)
