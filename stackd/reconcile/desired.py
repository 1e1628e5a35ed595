"""The desired state of a project as the reconciler keeps it: the stack of the latest revision
``up`` applied, and the options of ``up`` that shape it (which services, how many replicas).

Options that only steer one ``up`` (``--force-recreate``, ``--build``, ``--remove-orphans``...)
are not kept: a pass must never recreate or rebuild because of how the user once called ``up``.
Successive ``up`` calls with targets widen the set of services kept running (``up web`` then
``up cache`` keeps both); ``up`` without targets keeps every service. Pure: JSON in and out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from stackd.plan.options import UpOptions
from stackd.spec.models import Stack


@dataclass(frozen=True)
class Desired:
    """What the reconciler keeps ``project`` at: ``stack`` with ``options`` (revision ``revision``)."""

    project: str
    revision: int
    stack: Stack
    options: UpOptions


def options_json(options: UpOptions) -> str:
    """The kept options of ``options`` as a JSON object."""
    data: dict[str, Any] = {}
    if options.services:
        data["services"] = list(options.services)
    if options.no_deps:
        data["no_deps"] = True
    if options.scale:
        data["scale"] = dict(sorted(options.scale.items()))
    return json.dumps(data, sort_keys=True)


def options_of(text: str) -> UpOptions:
    """The options ``options_json`` wrote (unknown keys are ignored: a newer stackd wrote them)."""
    data = json.loads(text or "{}")
    if not isinstance(data, dict):
        raise ValueError(f"kept up options are not a JSON object: {text[:60]!r}")
    return UpOptions(services=tuple(str(s) for s in data.get("services", ())),
                     no_deps=bool(data.get("no_deps", False)),
                     scale={str(k): int(v) for k, v in dict(data.get("scale", {})).items()})


def widen(previous: UpOptions | None, new: UpOptions) -> UpOptions:
    """The options to keep after ``up`` with ``new`` over a project kept with ``previous``:
    the targets of both (none, i.e. every service, when either has none), the replica counts of
    both (``new`` wins per service), ``no_deps`` only while every call asked for it."""
    if previous is None:
        return UpOptions(services=new.services, no_deps=new.no_deps, scale=dict(new.scale))
    services: tuple[str, ...] = ()
    if previous.services and new.services:
        services = tuple(dict.fromkeys((*previous.services, *new.services)))
    return UpOptions(services=services, no_deps=previous.no_deps and new.no_deps and bool(services),
                     scale={**previous.scale, **new.scale})


def desired_of(project: str, revision: int, stack_json: str, options_text: str) -> Desired:
    """The desired state a store revision holds."""
    return Desired(project, revision, Stack.model_validate_json(stack_json), options_of(options_text))
