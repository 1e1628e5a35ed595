"""Fold each service's ``env_file`` into ``environment`` and ``label_file`` into ``labels``, as Compose does.

Precedence: ``environment`` > later ``env_file`` > earlier ``env_file``. A key written without a
value (``QIX:`` or ``- QIX``) takes its value from the project's variables, or stays unset.
``${VAR}`` inside an env file sees the project's variables first, then the service's
``environment``, then values from earlier env files. Labels work the same way: ``labels`` >
later ``label_file`` > earlier one. After folding, ``env_file`` and ``label_file`` are dropped
from the tree: their contents now live in ``environment``/``labels`` and so in the service's
config hash. ``build.args`` without a value are taken from the project's variables likewise.
Relative file paths are read from ``base_dir`` (the project directory).
Works on the merged canonical tree; reads the files; changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from stackd.errors import Pos, Problem, SpecError
from stackd.spec.dotenv import read_dotenv_files
from stackd.spec.tree import Map, Seq, dotted

Lookup = Callable[[str], "str | None"]


def _entries(value: Any) -> list[tuple[str, bool, int]]:
    """``(path, required, index)`` of an ``env_file``/``label_file`` value in any of its forms."""
    items = [value] if isinstance(value, str | Map) else list(value or [])
    out: list[tuple[str, bool, int]] = []
    for i, entry in enumerate(items):
        if isinstance(entry, Mapping):
            out.append((str(entry.get("path", "")), entry.get("required", True) is not False, i))
        else:
            out.append((str(entry), True, i))
    return out


def _read_files(name: str, key: str, svc: Map, *, lookup: Lookup, base_dir: str,
                problems: list[Problem]) -> dict[str, str | None]:
    """The merged contents of the files listed under ``svc[key]`` (later files win).

    ``${VAR}`` in a file sees ``lookup`` first, then the earlier lines of its own file, then the
    earlier files.
    """
    value = svc.get(key)
    existing: list[str] = []
    for path, required, i in _entries(value):
        full = os.path.join(base_dir, os.path.expanduser(path))
        if os.path.isfile(full):
            existing.append(full)
        elif required:
            where: Pos | None = value.where(i) if isinstance(value, Seq) else svc.where(key)
            hint = "create it or mark it `required: false`" if key == "env_file" else ""
            problems.append(Problem(f"{key.replace('_', ' ')} {full} not found", where,
                                    dotted(("services", name, key, i)), hint))
    try:
        return read_dotenv_files(existing, lookup=lookup)
    except SpecError as exc:
        problems.extend(exc.problems)
        return {}


def _fold_environment(name: str, svc: Map, out: Map, *, env: Mapping[str, str], base_dir: str,
                      problems: list[Problem]) -> None:
    declared = svc.get("environment")
    declared = declared if isinstance(declared, Map) else Map()

    def first(var: str) -> str | None:
        if var in env:
            return env[var]
        value = declared.get(var)
        return value if isinstance(value, str) else None

    has_files = "env_file" in svc
    from_files = _read_files(name, "env_file", svc, lookup=first, base_dir=base_dir,
                             problems=problems) if has_files else {}
    if not has_files and not any(v is None for v in declared.values()):
        return
    merged: dict[str, Any] = {k: v for k, v in from_files.items() if v is not None}
    for key, value in declared.items():
        merged[key] = env.get(key) if value is None else value
    _put(out, "environment", declared, merged, svc.where("env_file") or svc.pos)


def _fold_labels(name: str, svc: Map, out: Map, *, env: Mapping[str, str], base_dir: str,
                 problems: list[Problem]) -> None:
    if "label_file" not in svc:
        return
    declared = svc.get("labels")
    declared = declared if isinstance(declared, Map) else Map()
    from_files = _read_files(name, "label_file", svc, lookup=env.get, base_dir=base_dir, problems=problems)
    merged: dict[str, Any] = {k: v for k, v in from_files.items() if v is not None}
    merged.update(declared)
    _put(out, "labels", declared, merged, svc.where("label_file") or svc.pos)


def _put(out: Map, key: str, declared: Map, values: dict[str, Any], pos: Pos | None) -> None:
    folded = declared.derive(values.items())
    for k in values:
        if k not in folded.key_pos and pos is not None:
            folded.key_pos[k] = pos
    out[key] = folded
    if key not in out.key_pos and pos is not None:
        out.key_pos[key] = pos


def _fold_service(name: str, svc: Map, env: Mapping[str, str], base_dir: str, problems: list[Problem]) -> Map:
    out = svc.derive((k, v) for k, v in svc.items() if k not in ("env_file", "label_file"))
    _fold_environment(name, svc, out, env=env, base_dir=base_dir, problems=problems)
    _fold_labels(name, svc, out, env=env, base_dir=base_dir, problems=problems)
    _resolve_build_args(svc, out, env=env)
    return out


def _resolve_build_args(svc: Map, out: Map, *, env: Mapping[str, str]) -> None:
    """``build.args`` written without a value take it from the project's variables, as Compose
    does; one that is not set anywhere stays without a value (the Dockerfile's ARG default applies)."""
    build = svc.get("build")
    args = build.get("args") if isinstance(build, Map) else None
    if not isinstance(build, Map) or not isinstance(args, Map) or all(v is not None for v in args.values()):
        return
    resolved = args.derive((k, env.get(k) if v is None else v) for k, v in args.items())
    new_build = build.derive(build.items())
    new_build["args"] = resolved
    out["build"] = new_build


def fold_env_files(tree: Map, env: Mapping[str, str], base_dir: str,
                   problems: list[Problem] | None = None) -> Map:
    """A tree whose services carry their env files in ``environment`` and label files in ``labels``.

    With ``problems`` given, a missing or broken file is appended there instead of raised.
    """
    services = tree.get("services")
    if not isinstance(services, Map):
        return tree
    found: list[Problem] = []
    new_services = services.derive(
        (name, _fold_service(name, svc, env, base_dir, found) if isinstance(svc, Map) else svc)
        for name, svc in services.items())
    if found:
        if problems is None:
            raise SpecError(found)
        problems.extend(found)
    out = tree.derive(tree.items())
    out["services"] = new_services
    return out


__all__ = ["fold_env_files"]
