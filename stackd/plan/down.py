"""``plan_down(stack, observed, options)``: what ``stack down`` must do to take a project off the host.

Containers are stopped in reverse dependency order (a container after the ones that depend on
it) and removed; then networks and groups go, and volumes only with ``volumes=True``. External
networks and volumes are never removed.

With a stack, only what the stack declares is taken down: containers of services no longer
in it are orphans (removed with ``remove_orphans``, otherwise a warning), and only declared
networks, groups and volumes are removed. Without a stack (``stack down -p NAME`` with no file),
everything the project has on the host goes. Pure and deterministic; decides, performs nothing.
"""

from __future__ import annotations

import networkx as nx

from stackd.errors import PlanError
from stackd.graph import build
from stackd.plan import names
from stackd.plan.assemble import assemble
from stackd.plan.model import (
    Op,
    Plan,
    RemoveContainer,
    RemoveGroup,
    RemoveNetwork,
    RemoveVolume,
    StopContainer,
)
from stackd.plan.observed import Observed, ObservedContainer
from stackd.plan.options import DownOptions
from stackd.spec.models import Stack

_CAUSE = "stack down"


def plan_down(stack: Stack | None, observed: Observed, options: DownOptions | None = None) -> Plan:
    """The plan that removes the project (see the module docstring for what is kept)."""
    opt = options or DownOptions()
    project = observed.project
    if stack is not None and stack.name != project:
        raise PlanError(f"observed state is for project {observed.project}, not {stack.name}")
    g: nx.DiGraph[str] = build(stack, strict=False) if stack is not None else nx.DiGraph()
    everything = stack is None or opt.remove_orphans
    ops: list[Op] = []
    warnings: list[str] = []

    doomed: list[ObservedContainer] = []
    for c in sorted(observed.containers, key=lambda c: (c.service, c.number, c.name)):
        if c.service in g or everything:
            doomed.append(c)
        else:
            warnings.append(f"orphan container {c.name} (use --remove-orphans)")
    stopping = {c.service for c in doomed if c.state in {"running", "paused"}}
    stops_of = {s: [f"stop service:{c.service}:{c.number}" for c in doomed
                    if c.service == s and c.state in {"running", "paused"}] for s in stopping}
    removes: list[str] = []
    for c in doomed:
        resource = f"service:{c.service}:{c.number}"
        orphan = stack is not None and c.service not in g
        cause = f"orphan: service {c.service} is not in the stack" if orphan else _CAUSE
        after: tuple[str, ...] = ()
        if c.state in {"running", "paused"}:
            first = sorted({i for d in (g.predecessors(c.service) if c.service in g else ())
                            for i in stops_of.get(d, [])})
            stop = StopContainer(resource=resource, cause=cause, service=c.service, number=c.number,
                                 name=c.name, timeout=opt.timeout, after=tuple(first))
            ops.append(stop)
            after = (stop.id,)
        remove = RemoveContainer(resource=resource, cause=cause, service=c.service, number=c.number,
                                 name=c.name, volumes=opt.volumes, after=after)
        ops.append(remove)
        removes.append(remove.id)
    gate = tuple(sorted(removes))

    net_names = _declared_networks(stack)
    for n in sorted(observed.networks, key=lambda n: n.name):
        key = net_names.get(n.name)
        if key is None and not everything:
            continue
        if key is not None and stack is not None and names.is_external(names.stack_networks(stack)[key]):
            continue
        key = key or n.name.removeprefix(f"{project}_")
        ops.append(RemoveNetwork(resource=f"network:{key}", cause=_CAUSE, network=key, name=n.name,
                                 after=gate))

    declared_groups = set(stack.groups) if stack is not None else set()
    for grp in sorted(observed.groups, key=lambda x: x.name):
        if grp.name in declared_groups or everything:
            ops.append(RemoveGroup(resource=f"group:{grp.name}", cause=_CAUSE, group=grp.name, after=gate))

    if opt.volumes:
        vol_names = _declared_volumes(stack)
        for v in sorted(observed.volumes, key=lambda x: x.name):
            vkey = vol_names.get(v.name)
            if (vkey is None and not everything) or vkey == "":
                continue
            vkey = vkey or v.name.removeprefix(f"{project}_")
            ops.append(RemoveVolume(resource=f"volume:{vkey}", cause=f"{_CAUSE} --volumes", volume=vkey,
                                    name=v.name, after=gate))
    return assemble(project, ops, warnings)


def _declared_networks(stack: Stack | None) -> dict[str, str]:
    """Host name → key of every network the stack declares (or joins implicitly)."""
    if stack is None:
        return {}
    return {names.network_name(stack, key): key for key in names.stack_networks(stack)}


def _declared_volumes(stack: Stack | None) -> dict[str, str]:
    """Host name → key of declared volumes; external ones map to "" (never removed)."""
    if stack is None:
        return {}
    return {names.volume_name(stack, key): "" if names.is_external(defn) else key
            for key, defn in stack.volumes.items()}
