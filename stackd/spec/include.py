"""Compose ``include``: pull the resources of other projects into the file that names them.

Each ``include`` entry (``- path`` or ``{path, project_directory, env_file}``) names one or more
files loaded as a project of their own:

- its project directory is ``project_directory`` (relative to the including project's directory)
  or the directory of its first file, and its relative paths are read from there (they are
  re-rooted into the including project's directory before they are imported, so that they keep
  pointing at the same files);
- its variables are the including project's variables over those of its ``env_file`` entries
  (relative to the including project's directory), or over its own ``.env`` when no
  ``env_file`` is given: what the caller set always wins;
- it may include further files; a file that includes itself, directly or not, is an error.

The included services, networks, volumes, secrets, configs and models are then imported. Two
included files may define the same resource only identically. The including file's own
definition of an imported resource is merged over it with the usual merge rules (so
``!override``/``!reset`` apply), as compose-go does.

The loading itself is the loader's: this module gets it as a function, reads only env files and
changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stackd.errors import Pos, Problem, SpecError
from stackd.spec.dotenv import read_dotenv_files
from stackd.spec.merge import merge
from stackd.spec.paths import rebase_paths
from stackd.spec.tree import Map, Seq, dotted, plain

RESOURCES = ("services", "networks", "volumes", "secrets", "configs", "models")
_KEYS = ("path", "project_directory", "env_file")


@dataclass(frozen=True)
class Include:
    """One ``include`` entry, its paths made absolute."""

    files: tuple[str, ...]
    project_dir: str
    env_files: tuple[str, ...]
    pos: Pos | None
    path: str
    """The entry's YAML path, e.g. ``include[0]``."""


LoadProject = Callable[[Include, Mapping[str, str], tuple[str, ...]], Map]
"""Load an included project (files, project directory, variables, include chain) → merged tree."""


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def parse_includes(tree: Map, project_dir: str, show: Callable[[str], str] = str) -> list[Include]:
    """The ``include`` entries of ``tree``, checked (files exist, known keys); every mistake reported."""
    entries = tree.get("include")
    if entries is None:
        return []
    if not isinstance(entries, Seq):
        raise SpecError(Problem("`include` must be a list", tree.where("include"), "include"))
    problems: list[Problem] = []
    out: list[Include] = []
    for i, (entry, pos) in enumerate(entries.with_pos()):
        where = f"include[{i}]"
        spec: Mapping[str, Any] = {"path": entry} if isinstance(entry, str) else entry
        if not isinstance(spec, Mapping):
            problems.append(Problem("an include entry is a path or a mapping with `path`", pos, where))
            continue
        for key in spec:
            if key not in _KEYS:
                problems.append(Problem(f"unknown key `{key}` in include", pos, dotted((where, key)),
                                        "include entries have path, project_directory and env_file"))
        paths = _strings(spec.get("path"))
        if not paths:
            problems.append(Problem("include entry needs a `path` (a string or a list of strings)", pos,
                                    where))
            continue
        files = tuple(os.path.normpath(os.path.join(project_dir, os.path.expanduser(p))) for p in paths)
        problems.extend(Problem(f"included file not found: {show(f)}", pos, where) for f in files
                        if not os.path.isfile(f))
        sub_dir = spec.get("project_directory")
        if sub_dir is not None and not isinstance(sub_dir, str):
            problems.append(Problem("`project_directory` must be a string", pos,
                                    f"{where}.project_directory"))
            continue
        env_list = _strings(spec.get("env_file")) if spec.get("env_file") is not None else []
        if env_list is None:
            problems.append(Problem("`env_file` must be a string or a list of strings", pos,
                                    f"{where}.env_file"))
            continue
        env_files = tuple(os.path.normpath(os.path.join(project_dir, p))
                          for p in env_list if p != "/dev/null")
        problems.extend(Problem(f"include env file not found: {show(f)}", pos, f"{where}.env_file")
                        for f in env_files if not os.path.isfile(f))
        root = os.path.normpath(os.path.join(project_dir, sub_dir)) if sub_dir else os.path.dirname(files[0])
        out.append(Include(files=files, project_dir=root, env_files=env_files, pos=pos, path=where))
    if problems:
        raise SpecError(problems)
    return out


def include_env(inc: Include, parent: Mapping[str, str]) -> dict[str, str]:
    """The variables of an included project: the parent's over its env files (or its own ``.env``)."""
    files = list(inc.env_files)
    if not files:
        own = os.path.join(inc.project_dir, ".env")
        files = [own] if os.path.isfile(own) else []
    values = read_dotenv_files(files, lookup=parent.get) if files else {}
    return {**{k: v for k, v in values.items() if v is not None}, **parent}


def apply_includes(tree: Map, *, file: str, project_dir: str, env: Mapping[str, str], chain: tuple[str, ...],
                   load_project: LoadProject, show: Callable[[str], str] = str) -> Map:
    """``tree`` (one file, canonical, markers kept) with its includes imported and ``include`` removed."""
    includes = parse_includes(tree, project_dir, show)
    if not includes and "include" not in tree:
        return tree
    here = (*chain, os.path.normpath(file))
    for inc in includes:
        for f in inc.files:
            if f in here:
                cycle = " -> ".join(show(c) for c in (*here, f))
                raise SpecError(Problem(f"include cycle detected: {cycle}", inc.pos, inc.path,
                                        "a file cannot include itself, directly or through other files"))
    imported = Map((), tree.where("include"))
    origin: dict[tuple[str, str], Include] = {}
    problems: list[Problem] = []
    for inc in includes:
        sub = load_project(inc, include_env(inc, env), here)
        sub = rebase_paths(sub, inc.project_dir, project_dir)
        for section in RESOURCES:
            incoming = sub.get(section)
            if not isinstance(incoming, Map):
                continue
            target = imported.get(section)
            if target is None:
                target = imported[section] = Map((), inc.pos)
                imported.key_pos[section] = inc.pos  # type: ignore[assignment]
            for name, value in incoming.items():
                first = origin.get((section, name))
                if first is not None and plain(target[name]) != plain(value):
                    problems.append(Problem(
                        f"{section}.{name} from {show(inc.files[0])} conflicts with the one imported from "
                        f"{show(first.files[0])}", inc.pos, dotted((inc.path, "path")),
                        "an included resource may be defined by several included files only identically; "
                        "redefine it in the including file instead"))
                    continue
                origin.setdefault((section, name), inc)
                target[name] = value
                target.key_pos[name] = incoming.key_pos.get(name, inc.pos)  # type: ignore[assignment]
    if problems:
        raise SpecError(problems)
    local = tree.derive((k, v) for k, v in tree.items() if k != "include")
    return merge(imported, local) if imported else local


__all__ = ["RESOURCES", "Include", "LoadProject", "apply_includes", "include_env", "parse_includes"]
