"""Per-service decisions of ``stack up``: for each replica number, keep, start, restart, recreate,
create or remove, and why.

Services are decided in start order (dependencies first), so that a recreated dependency is
known when its dependents are decided (``network_mode: service:X`` and ``volumes_from: X``
dependents are recreated with it; ``restart: true`` dependents are restarted). The rules are
listed in ``stackd.plan.planner``. Pure: reads the model and the snapshot, returns data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import networkx as nx

from stackd.errors import PlanError
from stackd.graph import build, closure, start_order
from stackd.plan import names
from stackd.plan.hashing import changed_keys, digest, hash_parts
from stackd.plan.observed import Observed, ObservedContainer
from stackd.plan.options import UpOptions
from stackd.spec.models import Service, Stack

Action = Literal["keep", "start", "restart", "recreate", "create", "remove"]
STARTS = frozenset({"start", "restart", "recreate", "create"})
RUNNING = frozenset({"running", "paused"})


@dataclass(frozen=True)
class Step:
    """What happens to one replica number of a service (``old``: the container there now)."""

    number: int
    action: Action
    cause: str
    old: ObservedContainer | None = None

    @property
    def stops(self) -> bool:
        """Whether the step stops a running (or paused) container first."""
        return self.old is not None and self.old.state in RUNNING and self.action in {
            "restart", "recreate", "remove"}


@dataclass(frozen=True)
class Context:
    """The inputs of one ``up`` plan and what is derived from them once."""

    stack: Stack
    observed: Observed
    options: UpOptions
    graph: nx.DiGraph[str]
    order: tuple[str, ...]  # every service, in start order
    scope: frozenset[str]  # the services ``up`` brings to their desired state
    targets: frozenset[str]  # what --force-recreate applies to
    by_service: Mapping[str, tuple[ObservedContainer, ...]]  # sorted by number, then name

    @classmethod
    def of(cls, stack: Stack, observed: Observed, options: UpOptions) -> Context:
        if observed.project != stack.name:
            raise PlanError(f"observed state is for project {observed.project}, not {stack.name}")
        unknown = sorted(set(options.scale) - set(stack.services))
        if unknown:
            raise PlanError(f"--scale names no such service: {', '.join(unknown)}")
        g = build(stack)
        grouped: dict[str, list[ObservedContainer]] = {}
        for c in sorted(observed.containers, key=lambda c: (c.service, c.number, c.name)):
            grouped.setdefault(c.service, []).append(c)
        scope = (closure(g, options.services, deps=not options.no_deps) if options.services
                 else set(stack.services))
        return cls(stack=stack, observed=observed, options=options, graph=g,
                   order=tuple(n for gen in start_order(g) for n in gen), scope=frozenset(scope),
                   targets=frozenset(options.services or stack.services),
                   by_service={k: tuple(v) for k, v in grouped.items()})


@dataclass
class Decisions:
    steps: dict[str, list[Step]] = field(default_factory=dict)  # services with anything to say
    warnings: list[str] = field(default_factory=list)
    hashes: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)  # service -> (hash, parts)


def container_parts(stack: Stack, service: str) -> tuple[str, dict[str, str]]:
    """(config hash, per-key hashes) a new container of ``service`` records: the values of
    ``hashing.service_hash`` and ``hashing.hash_parts``, computed once."""
    parts = hash_parts(stack, service)
    return digest(parts), parts


def decide(ctx: Context, recreated_networks: frozenset[str]) -> Decisions:
    """The steps of every service that is in scope or has containers."""
    return _Decider(ctx, recreated_networks).run()


class _Decider:
    def __init__(self, ctx: Context, recreated_networks: frozenset[str]) -> None:
        self.ctx, self.opt, self.g = ctx, ctx.options, ctx.graph
        self.recreated_networks = recreated_networks
        self.out = Decisions()
        self.recreated: set[str] = set()
        self.restarted: set[str] = set()

    def run(self) -> Decisions:
        for name in self.ctx.order:
            steps = self._service(name)
            if steps:
                self.out.steps[name] = steps
                if any(s.action == "recreate" for s in steps):
                    self.recreated.add(name)
                if any(s.action == "restart" for s in steps):
                    self.restarted.add(name)
        return self.out

    def hashes(self, name: str) -> tuple[str, dict[str, str]]:
        if name not in self.out.hashes:
            self.out.hashes[name] = container_parts(self.ctx.stack, name)
        return self.out.hashes[name]

    def _service(self, name: str) -> list[Step]:
        svc = self.ctx.stack.services[name]
        existing = self.ctx.by_service.get(name, ())
        in_scope = name in self.ctx.scope
        if not in_scope and not existing:
            return []
        count = names.replicas(svc, self.opt.scale) if in_scope else len(existing)
        if count > 1 and names.get(svc, "container_name"):
            raise PlanError(f"service {name} sets container_name and cannot have {count} replicas")
        kept: list[ObservedContainer] = []
        numbers: set[int] = set()
        extra: list[Step] = []
        for c in existing:
            if c.number in numbers:
                extra.append(Step(c.number, "remove", f"duplicate replica number {c.number}", c))
            elif len(kept) < count:
                numbers.add(c.number)
                kept.append(c)
            else:
                extra.append(Step(c.number, "remove", f"scale down to {count}", c))
        steps = sorted(extra, key=lambda s: (-s.number, s.old.name if s.old else ""))
        steps.extend(self._existing(name, svc, c, in_scope=in_scope) for c in kept)
        if in_scope and len(kept) < count:
            first = max((c.number for c in existing), default=0) + 1
            cause = f"scale up to {count}" if existing else "no container"
            steps.extend(Step(n, "create", cause) for n in range(first, first + count - len(kept)))
        return steps

    def _existing(self, name: str, svc: Service, c: ObservedContainer, *, in_scope: bool) -> Step:
        reason = self._recreate_reason(name, svc, c, in_scope=in_scope)
        if reason:
            return Step(c.number, "recreate", reason, c)
        if c.state == "running":
            trigger = self._restart_trigger(name)
            if trigger:
                return Step(c.number, "restart", trigger, c)
        if in_scope and c.state == "exited" and self.opt.restartable is not None \
                and c.name not in self.opt.restartable:
            return Step(c.number, "keep", "", c)  # the restart policy keeps it exited (for now)
        if in_scope and c.state in {"created", "exited", "dead"}:
            exited = f"exited (code {c.exit_code})" if c.exit_code is not None else "exited"
            cause = {"created": "created, not started", "dead": "container dead", "exited": exited}[c.state]
            return Step(c.number, "start", cause, c)
        if in_scope and c.state == "paused":
            self.out.warnings.append(f"container {c.name} is paused (left paused)")
        return Step(c.number, "keep", "", c)

    def _recreate_reason(self, name: str, svc: Service, c: ObservedContainer, *, in_scope: bool) -> str:
        if self.opt.no_recreate:
            return ""
        if in_scope:
            if self.opt.force_recreate and name in self.ctx.targets:
                return "forced (--force-recreate)"
            if c.state == "dead":
                return "container dead"
            wanted, parts = self.hashes(name)
            if c.config_hash != wanted:
                keys = changed_keys(c.config_parts, parts) if c.config_parts else []
                return "config hash changed" + (f": {', '.join(keys)}" if keys else "")
            current = self.ctx.observed.images.get(names.image_ref(self.ctx.stack.name, svc))
            if current and c.image_id and c.image_id != current:
                return "image changed"
        for key in names.service_networks(svc):
            if key in self.recreated_networks:
                return f"network {key} recreated"
        for dep in sorted(self.g.successors(name)):
            kinds = self.g.edges[name, dep]["kinds"]
            if dep in self.recreated and "network" in kinds:
                return f"{dep} recreated (network_mode service:{dep})"
            if dep in self.recreated and "volumes_from" in kinds:
                return f"{dep} recreated (volumes_from {dep})"
        return ""

    def _restart_trigger(self, name: str) -> str:
        for dep in sorted(self.g.successors(name)):
            if not self.g.edges[name, dep]["restart"]:
                continue
            if dep in self.recreated:
                return f"{dep} recreated (depends_on restart: true)"
            if dep in self.restarted:
                return f"{dep} restarted (depends_on restart: true)"
        return ""
