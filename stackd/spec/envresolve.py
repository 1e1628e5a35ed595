"""Fold each service's ``env_file`` contents into its ``environment``, as Compose does.

Precedence: ``environment`` > later ``env_file`` > earlier ``env_file``. A key written without a
value (``QIX:`` or ``- QIX``) takes its value from the project's variables, or stays unset.
``${VAR}`` inside an env file sees the project's variables first, then the service's
``environment``, then values from earlier env files. After folding, ``env_file`` is dropped from
the tree: its contents now live in ``environment`` and so in the service's config hash.
Works on the merged canonical tree; reads the env files; changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from stackd.errors import Problem, SpecError
from stackd.spec.dotenv import read_dotenv
from stackd.spec.tree import Map, dotted


def _fold_service(name: str, svc: Map, env: Mapping[str, str], base_dir: str,
                  problems: list[Problem]) -> Map:
    files = svc.get("env_file") or []
    declared = svc.get("environment") or Map()
    from_files: dict[str, str | None] = {}

    def lookup(var: str) -> str | None:
        if var in env:
            return env[var]
        value = declared.get(var)
        if isinstance(value, str):
            return value
        return from_files.get(var)

    for i, entry in enumerate(files):
        spec = entry if isinstance(entry, dict) else {"path": entry}
        path = os.path.join(base_dir, os.path.expanduser(str(spec.get("path", ""))))
        required = spec.get("required", True) is not False
        if not os.path.isfile(path):
            if required:
                where = files.where(i) if hasattr(files, "where") else svc.where("env_file")
                problems.append(Problem(f"env file {path} not found", where,
                                        dotted(("services", name, "env_file", i)),
                                        hint="create it or mark it `required: false`"))
            continue
        try:
            values = read_dotenv(path, lookup=lookup)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        for key, value in values.items():
            from_files[key] = value
    out = svc.derive((k, v) for k, v in svc.items() if k != "env_file")
    if not files and not any(v is None for v in declared.values()):
        return out
    merged: dict[str, Any] = dict(from_files)
    for key, value in declared.items():
        merged[key] = env.get(key) if value is None else value
    environment = declared.derive(merged.items()) if isinstance(declared, Map) else Map(merged.items())
    for key in merged:
        if key not in environment.key_pos:
            environment.key_pos[key] = svc.where("env_file") or svc.pos  # type: ignore[assignment]
    out["environment"] = environment
    out.key_pos.setdefault("environment", svc.where("env_file") or svc.pos)  # type: ignore[arg-type]
    return out


def fold_env_files(tree: Map, env: Mapping[str, str], base_dir: str) -> Map:
    """Return a tree whose services carry their env files inside ``environment``."""
    services = tree.get("services")
    if not isinstance(services, Map):
        return tree
    problems: list[Problem] = []
    new_services = services.derive(
        (name, _fold_service(name, svc, env, base_dir, problems) if isinstance(svc, Map) else svc)
        for name, svc in services.items())
    if problems:
        raise SpecError(problems)
    out = tree.derive(tree.items())
    out["services"] = new_services
    return out
