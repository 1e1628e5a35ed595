"""Which services are active: Compose profiles.

A service without ``profiles`` is always active; one with profiles is active when one of them is
enabled (``*`` enables all) or when it is named on the command line, in which case the services
it depends on are enabled too (``up foo`` starts foo and its dependencies, not foo's profile
siblings). Inactive services are dropped from the tree before validation. Naming a service the
stack does not define is an error. Pure: tree in, new tree out.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from stackd.errors import Problem, SpecError
from stackd.spec.tree import Map


def _deps(svc: Any) -> list[str]:
    if not isinstance(svc, dict):
        return []
    out: list[str] = []
    deps = svc.get("depends_on")
    if isinstance(deps, dict):
        out.extend(k for k, v in deps.items() if not (isinstance(v, dict) and v.get("required") is False))
    mode = svc.get("network_mode")
    if isinstance(mode, str) and mode.startswith("service:"):
        out.append(mode.split(":", 1)[1])
    for ref in svc.get("volumes_from") or []:
        if isinstance(ref, str) and not ref.startswith("container:"):
            out.append(ref.split(":", 1)[0])
    return out


def active_services(services: Map, profiles: Iterable[str], targets: Iterable[str]) -> set[str]:
    enabled = set(profiles)
    active = {name for name, svc in services.items()
              if not (isinstance(svc, dict) and svc.get("profiles"))
              or "*" in enabled or enabled & set(svc.get("profiles") or [])}
    stack = [t for t in targets if t in services]
    while stack:
        name = stack.pop()
        if name in active and name not in targets:
            continue
        active.add(name)
        stack.extend(d for d in _deps(services.get(name)) if d in services and d not in active)
    return active


def apply_profiles(tree: Map, profiles: Iterable[str], targets: Iterable[str]) -> Map:
    services = tree.get("services")
    wanted = list(targets)
    unknown = [t for t in wanted if not isinstance(services, Map) or t not in services]
    if unknown:
        problems = []
        for name in unknown:
            names = list(services) if isinstance(services, Map) else []
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = f"did you mean `{close[0]}`?" if close else f"services: {', '.join(names) or 'none'}"
            problems.append(Problem(f"no such service: {name}", hint=hint))
        raise SpecError(problems)
    if not isinstance(services, Map):
        return tree
    active = active_services(services, profiles, wanted)
    out = tree.derive(tree.items())
    out["services"] = services.derive((n, s) for n, s in services.items() if n in active)
    return out
