"""Turn the per-service decisions of ``stack up`` into container operations and their ``after`` links.

- recreate: stop (after the dependents' stops and the new image) → remove → create → start;
- restart: stop → start; start: start; create: create → start; remove: stop → remove;
- a create waits for the service's group, networks, volumes and image operations and for the
  creates of its dependencies (containers are made before they are started, as Compose does, so
  a dependent is made while its dependencies start), or for their starts when it shares a
  dependency's network namespace or volumes (``network_mode: service:``, ``volumes_from``);
  a start waits for the dependencies' starts and carries the conditions to wait for
  (``WaitFor``), naming the dependency's containers after the plan.

Stops and removes of a container that is not running skip the stop. Pure: decisions in, ops out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from stackd.plan import names
from stackd.plan.decide import STARTS, Context, Decisions, Step, container_parts
from stackd.plan.model import CreateContainer, Op, RemoveContainer, StartContainer, StopContainer, WaitFor
from stackd.spec.models import Service


def after(*groups: Iterable[str]) -> tuple[str, ...]:
    """Sorted, unique, non-empty op ids."""
    return tuple(sorted({i for g in groups for i in g if i}))


def container_ops(ctx: Context, decisions: Decisions, resource_ops: Mapping[str, str]) -> list[Op]:
    """The container operations of every decided service, in start order.

    ``resource_ops`` maps ``network:KEY``/``volume:KEY``/``group:KEY``/``image:SERVICE`` to the id of
    the operation that makes that resource ready, when the plan has one.
    """
    emitter = _Emitter(ctx, decisions, resource_ops)
    for name in ctx.order:
        emitter.service(name)
    return emitter.ops


class _Emitter:
    def __init__(self, ctx: Context, decisions: Decisions, resource_ops: Mapping[str, str]) -> None:
        self.ctx, self.steps, self.resource_ops = ctx, decisions.steps, resource_ops
        self.hashes = decisions.hashes
        self.project = ctx.stack.name
        self.ops: list[Op] = []

    def service(self, name: str) -> None:
        svc = self.ctx.stack.services[name]
        deps = self._dependency_starts(name)
        made = self._dependency_creates(name)
        waits = self._waits(name)
        dependents_stopped = tuple(
            f"stop service:{d}:{s.number}" for d in sorted(self.ctx.graph.predecessors(name))
            for s in self.steps.get(d, []) if s.stops)
        image = after((self.resource_ops.get(f"image:{name}", ""),))
        resources = self._resources(svc)
        for step in self.steps.get(name, []):
            if step.action == "keep":
                continue
            old = step.old.name if step.old is not None else ""
            if step.action == "start":
                self._start(name, step, old, after(deps, resources), waits)
                continue
            stop_id = ""
            if step.stops:
                gate = dependents_stopped + (image if step.action == "recreate" else ())
                stop_id = self._add(StopContainer(resource=_rid(name, step), cause=step.cause, service=name,
                                                  number=step.number, name=old, after=after(gate)))
            if step.action == "restart":
                self._start(name, step, old, after(deps, (stop_id,)), waits)
                continue
            removed = ""
            if step.old is not None:
                gate = (stop_id,) if stop_id else dependents_stopped + image
                removed = self._add(RemoveContainer(resource=_rid(name, step), cause=step.cause,
                                                    service=name, number=step.number, name=old,
                                                    after=after(gate)))
            if step.action == "remove":
                continue
            config_hash, parts = self._hashes(name)
            new_name = names.container_name(self.project, svc, step.number)
            created = self._add(CreateContainer(
                resource=_rid(name, step), cause=step.cause, service=name, number=step.number,
                name=new_name, image=names.image_ref(self.project, svc), config_hash=config_hash,
                config_parts=parts, group=names.service_group(svc),
                networks=tuple(names.network_name(self.ctx.stack, k) for k in names.service_networks(svc)),
                after=after((removed,), resources, image, made)))
            self._start(name, step, new_name, after(deps, (created,)), waits)

    def _start(self, name: str, step: Step, container: str, waits_for: tuple[str, ...],
               conditions: tuple[WaitFor, ...]) -> None:
        self._add(StartContainer(resource=_rid(name, step), cause=step.cause, service=name,
                                 number=step.number, name=container, wait=conditions, after=waits_for,
                                 watch_exit=self.ctx.options.restartable is None))

    def _hashes(self, name: str) -> tuple[str, dict[str, str]]:
        if name not in self.hashes:
            self.hashes[name] = container_parts(self.ctx.stack, name)
        return self.hashes[name]

    def _resources(self, svc: Service) -> tuple[str, ...]:
        keys = [f"network:{k}" for k in names.service_networks(svc)]
        keys += [f"volume:{k}" for k in names.service_volumes(svc)]
        group = names.service_group(svc)
        keys += [f"group:{group}"] if group else []
        return tuple(self.resource_ops[k] for k in keys if k in self.resource_ops)

    def _dependency_starts(self, name: str) -> tuple[str, ...]:
        return tuple(f"start service:{dep}:{s.number}" for dep in sorted(self.ctx.graph.successors(name))
                     for s in self.steps.get(dep, []) if s.action in STARTS)

    def _dependency_creates(self, name: str) -> tuple[str, ...]:
        """What a create of ``name`` waits for of its dependencies (see the module docstring)."""
        out: list[str] = []
        for dep in sorted(self.ctx.graph.successors(name)):
            shares = set(self.ctx.graph.edges[name, dep]["kinds"]) - {"depends_on"}
            for s in self.steps.get(dep, []):
                if shares and s.action in STARTS:
                    out.append(f"start service:{dep}:{s.number}")
                elif s.action in ("create", "recreate"):
                    out.append(f"create service:{dep}:{s.number}")
        return tuple(out)

    def _waits(self, name: str) -> tuple[WaitFor, ...]:
        g = self.ctx.graph
        return tuple(
            WaitFor(service=dep, condition=g.edges[name, dep]["condition"],
                    required=g.edges[name, dep]["required"], containers=self._final_names(dep))
            for dep in sorted(g.successors(name)))

    def _final_names(self, name: str) -> tuple[str, ...]:
        """Names of the containers of ``name`` once the plan is carried out."""
        if name not in self.steps:
            return tuple(c.name for c in self.ctx.by_service.get(name, ()))
        svc = self.ctx.stack.services[name]
        out = []
        for s in self.steps[name]:
            if s.action in {"keep", "start", "restart"} and s.old is not None:
                out.append(s.old.name)
            elif s.action in {"create", "recreate"}:
                out.append(names.container_name(self.project, svc, s.number))
        return tuple(sorted(out))

    def _add(self, op: Op) -> str:
        self.ops.append(op)
        return op.id


def _rid(service: str, step: Step) -> str:
    return f"service:{service}:{step.number}"
