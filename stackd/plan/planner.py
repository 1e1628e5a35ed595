"""``plan(stack, observed, options)``: what ``stack up`` must do to make the host match the stack.

Pure and deterministic: the same inputs give the same plan, whatever the order of dicts in the
file or of containers in the snapshot. The rules (after docker compose's convergence):

- groups, networks and volumes that are missing are created; a group whose limits changed is
  updated in place; a network whose definition changed is removed and created again, together
  with every container on it (``--no-recreate`` turns that into a warning). Volumes are never
  recreated. External networks and volumes are never created or removed; networks and volumes
  on the host that the stack no longer declares are left alone (``down`` removes them).
- each service in scope (the targets and, without ``--no-deps``, their dependencies; every
  service when there are no targets) gets its number of replicas: missing numbers are created
  after the highest existing one; on scale down the highest numbers go first.
- an existing container is recreated (stop, remove, create, start) when its config hash
  differs (the cause names the changed keys), its image was replaced, it is dead, or
  ``--force-recreate`` targets it; a stopped (``created``/``exited``) container is started, as
  ``up`` does in Compose (for the reconciler, ``UpOptions.restartable`` names the exited ones its
  restart policy starts now; the others stay exited); a paused one is left paused (with a warning).
- recreating a service also recreates the containers that share its network namespace or its
  volumes (``network_mode: service:X``, ``volumes_from: X``) and restarts (stop, start) the
  running dependents that declare ``restart: true`` on it.
- a container of a service that is no longer in the stack is an orphan: removed with
  ``--remove-orphans``, otherwise a warning line in the plan.

Ordering (``after``): a container is created after its group, networks, volumes and image are
ready and after its dependencies are started; its start op carries the conditions to wait for
(``WaitFor``). Containers are stopped after the containers that depend on them. ``down`` is in
``plan.down``. The per-service decisions are in ``plan.decide``, the container operations they
become in ``plan.emit``; this module adds the resources (groups, networks, volumes, images),
orphans, and puts it all in order. It decides; it performs nothing and must not import
anything that does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from stackd.plan import names
from stackd.plan.assemble import assemble
from stackd.plan.decide import RUNNING, Context, Decisions, container_parts, decide
from stackd.plan.down import plan_down
from stackd.plan.emit import after, container_ops
from stackd.plan.hashing import group_hash, network_hash
from stackd.plan.model import (
    CreateGroup,
    CreateNetwork,
    CreateVolume,
    EnsureImage,
    Op,
    Plan,
    RemoveContainer,
    RemoveGroup,
    RemoveNetwork,
    StopContainer,
    UpdateGroup,
)
from stackd.plan.observed import Observed
from stackd.plan.options import DownOptions, UpOptions
from stackd.spec.models import Stack

__all__ = ["DownOptions", "UpOptions", "container_parts", "plan", "plan_down"]


def plan(stack: Stack, observed: Observed, options: UpOptions | None = None) -> Plan:
    """The plan that brings ``observed`` to ``stack`` (see the module docstring for the rules)."""
    return _Up(Context.of(stack, observed, options or UpOptions())).run()


class _Up:
    def __init__(self, ctx: Context) -> None:
        self.ctx, self.stack, self.observed, self.opt = ctx, ctx.stack, ctx.observed, ctx.options
        self.ops: list[Op] = []
        self.warnings: list[str] = []
        self.resource_ops: dict[str, str] = {}  # "network:x" / "volume:x" / "group:x" / "image:svc" -> op id
        self.recreated_networks: set[str] = set()

    def run(self) -> Plan:
        self._groups()
        self._networks()
        self._volumes()
        decisions = decide(self.ctx, frozenset(self.recreated_networks))
        self.warnings.extend(decisions.warnings)
        self._images(decisions)
        self._orphans()
        self.ops.extend(container_ops(self.ctx, decisions, self.resource_ops))
        self._network_removals(decisions)
        self._stale_groups()
        return assemble(self.stack.name, self.ops, self.warnings)

    def _wanted(self, kind: Literal["networks", "volumes", "groups"]) -> set[str]:
        """Resource keys the plan's scope needs (every declared one when there are no targets)."""
        used: set[str] = set()
        for name in self.ctx.scope:
            svc = self.stack.services[name]
            if kind == "networks":
                used.update(names.service_networks(svc))
            elif kind == "volumes":
                used.update(names.service_volumes(svc))
            else:
                group = names.service_group(svc)
                used.update([group] if group else [])
        if not self.opt.services:
            declared = {"networks": names.stack_networks(self.stack), "volumes": self.stack.volumes,
                        "groups": self.stack.groups}[kind]
            used.update(declared)
        return used

    def _groups(self) -> None:
        seen = {g.name: g for g in self.observed.groups}
        for key in sorted(self._wanted("groups") & set(self.stack.groups)):
            wanted = group_hash(self.stack, key)
            config = self.stack.groups[key].model_dump(mode="json", exclude_defaults=True)
            have = seen.get(key)
            if have is None:
                op: Op = CreateGroup(resource=f"group:{key}", cause="not found", group=key,
                                     config=config, config_hash=wanted)
            elif have.config_hash and have.config_hash != wanted:
                op = UpdateGroup(resource=f"group:{key}", cause="config hash changed", group=key,
                                 config=config, config_hash=wanted)
            else:
                continue
            self.resource_ops[f"group:{key}"] = self._add(op)

    def _networks(self) -> None:
        declared = names.stack_networks(self.stack)
        seen = {n.name: n for n in self.observed.networks}
        for key in sorted(self._wanted("networks") & set(declared)):
            defn = declared[key]
            if names.is_external(defn):
                continue
            host = names.network_name(self.stack, key)
            wanted = network_hash(self.stack, key)
            have = seen.get(host)
            cause = "not found"
            if have is not None:
                if not have.config_hash or have.config_hash == wanted:
                    continue
                if self.opt.no_recreate:
                    self.warnings.append(f"network {host} differs from the stack (not recreated: "
                                         "--no-recreate)")
                    continue
                self.recreated_networks.add(key)
                cause = "config hash changed"
            create = CreateNetwork(resource=f"network:{key}", cause=cause, network=key, name=host,
                                   config=_plain_config(defn), config_hash=wanted,
                                   after=(f"remove network:{key}",) if have is not None else ())
            self.resource_ops[f"network:{key}"] = self._add(create)

    def _volumes(self) -> None:
        seen = {v.name for v in self.observed.volumes}
        for key in sorted(self._wanted("volumes") & set(self.stack.volumes)):
            defn = self.stack.volumes[key]
            host = names.volume_name(self.stack, key)
            if names.is_external(defn) or host in seen:
                continue
            op = CreateVolume(resource=f"volume:{key}", cause="not found", volume=key, name=host,
                              config=_plain_config(defn))
            self.resource_ops[f"volume:{key}"] = self._add(op)

    def _images(self, decisions: Decisions) -> None:
        """Build or check the image of every service that gets new containers (or all, with --build)."""
        for name in self.ctx.order:
            svc = self.stack.services[name]
            creates = any(s.action in {"create", "recreate"} for s in decisions.steps.get(name, []))
            forced = self.opt.build and svc.build is not None and name in self.ctx.scope
            if not (creates or forced):
                continue
            ref = names.image_ref(self.stack.name, svc)
            known = ref in self.observed.images
            if svc.build is not None and not self.opt.no_build and (self.opt.build or not known):
                cause = "--build" if self.opt.build else "image not found"
                op = EnsureImage(resource=f"image:{name}", cause=cause, service=name, image=ref,
                                 action="build")
            elif known:
                continue
            else:
                op = EnsureImage(resource=f"image:{name}", cause="needed by new containers",
                                 service=name, image=ref, action="check")
            self.resource_ops[f"image:{name}"] = self._add(op)

    def _orphans(self) -> None:
        for service in sorted(set(self.ctx.by_service) - set(self.stack.services)):
            for c in self.ctx.by_service[service]:
                if not self.opt.remove_orphans:
                    self.warnings.append(f"orphan container {c.name} (use --remove-orphans)")
                    continue
                resource = f"service:{service}:{c.number}"
                cause = f"orphan: service {service} is not in the stack"
                stop: tuple[str, ...] = ()
                if c.state in RUNNING:
                    stop = (self._add(StopContainer(resource=resource, cause=cause, service=service,
                                                    number=c.number, name=c.name)),)
                self._add(RemoveContainer(resource=resource, cause=cause, service=service,
                                          number=c.number, name=c.name, after=stop))

    def _network_removals(self, decisions: Decisions) -> None:
        """A recreated network goes once every container on it is removed."""
        for key in sorted(self.recreated_networks):
            removes = [f"remove service:{svc}:{s.number}" for svc in self.ctx.order
                       if key in names.service_networks(self.stack.services[svc])
                       for s in decisions.steps.get(svc, [])
                       if s.old is not None and s.action in {"recreate", "remove"}]
            self._add(RemoveNetwork(resource=f"network:{key}", cause="config hash changed", network=key,
                                    name=names.network_name(self.stack, key), after=after(removes)))

    def _stale_groups(self) -> None:
        """Groups on the host that the stack no longer declares (removed with --remove-orphans)."""
        removed = {op.resource: op.id for op in self.ops if isinstance(op, RemoveContainer)}
        for group in sorted({g.name for g in self.observed.groups} - set(self.stack.groups)):
            members = [f"service:{c.service}:{c.number}" for c in self.observed.containers
                       if c.group == group]
            gone = [removed[m] for m in members if m in removed]
            if not self.opt.remove_orphans or len(gone) < len(members):
                self.warnings.append(f"group {group} is no longer declared (use --remove-orphans)")
                continue
            self._add(RemoveGroup(resource=f"group:{group}", cause="no longer declared", group=group,
                                  after=after(gone)))

    def _add(self, op: Op) -> str:
        self.ops.append(op)
        return op.id


def _plain_config(defn: Any) -> dict[str, Any]:
    """A network/volume definition as plain data for the executor (None → empty)."""
    if isinstance(defn, BaseModel):
        return defn.model_dump(mode="json", exclude_defaults=True)
    return dict(defn) if isinstance(defn, dict) else {}
