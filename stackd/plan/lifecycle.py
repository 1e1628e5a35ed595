"""Plans of ``stack stop``, ``start`` and ``restart``: which existing containers to act on, in
which order, and which ``depends_on`` conditions a start waits for.

- stop: every running (or paused) container of the services, each after the containers that
  depend on it;
- start: every container of the services that is not running, each after its dependencies'
  starts, waiting for their conditions (as ``up`` does);
- restart: stop what runs, then start every container of the services, in the same orders.

Pure and deterministic, over the planner's ``Observed`` model and the dependency graph (the
same rules as the rest of ``stackd.plan``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import networkx as nx

from stackd.graph import build
from stackd.plan.assemble import assemble
from stackd.plan.model import Op, Plan, StartContainer, StopContainer, WaitFor
from stackd.plan.observed import Observed, ObservedContainer
from stackd.spec.models import Stack

LIVE = frozenset({"running", "paused"})


def _graph(stack: Stack | None) -> nx.DiGraph[str]:
    return build(stack, strict=False) if stack is not None else nx.DiGraph()


def _chosen(observed: Observed, services: Sequence[str]) -> list[ObservedContainer]:
    return sorted((c for c in observed.containers if not services or c.service in services),
                  key=lambda c: (c.service, c.number, c.name))


def _rid(c: ObservedContainer) -> str:
    return f"service:{c.service}:{c.number}"


def _stops(g: nx.DiGraph[str], targets: Iterable[ObservedContainer], cause: str,
           timeout: float | None) -> list[StopContainer]:
    live = [c for c in targets if c.state in LIVE]
    ids: dict[str, list[str]] = {}
    for c in live:
        ids.setdefault(c.service, []).append(f"stop {_rid(c)}")
    ops = []
    for c in live:
        dependents = g.predecessors(c.service) if c.service in g else ()
        first = sorted(i for d in dependents for i in ids.get(d, []))
        ops.append(StopContainer(resource=_rid(c), cause=cause, service=c.service, number=c.number,
                                 name=c.name, timeout=timeout, after=tuple(first)))
    return ops


def _starts(g: nx.DiGraph[str], observed: Observed, targets: Sequence[ObservedContainer], cause: str,
            stopped_first: dict[str, str]) -> list[StartContainer]:
    ids: dict[str, list[str]] = {}
    for c in targets:
        ids.setdefault(c.service, []).append(f"start {_rid(c)}")
    ops = []
    for c in targets:
        deps = sorted(g.successors(c.service)) if c.service in g else []
        after = sorted({i for d in deps for i in ids.get(d, [])} | (
            {stopped_first[c.name]} if c.name in stopped_first else set()))
        waits = tuple(
            WaitFor(service=d, condition=g.edges[c.service, d]["condition"],
                    required=g.edges[c.service, d]["required"],
                    containers=tuple(sorted(o.name for o in observed.containers if o.service == d)))
            for d in deps)
        ops.append(StartContainer(resource=_rid(c), cause=cause, service=c.service, number=c.number,
                                  name=c.name, wait=waits, after=tuple(after)))
    return ops


def plan_stop(stack: Stack | None, observed: Observed, services: Sequence[str] = (),
              timeout: float | None = None) -> Plan:
    ops: list[Op] = list(_stops(_graph(stack), _chosen(observed, services), "stack stop", timeout))
    return assemble(observed.project, ops)


def plan_start(stack: Stack | None, observed: Observed, services: Sequence[str] = ()) -> Plan:
    targets = [c for c in _chosen(observed, services) if c.state not in LIVE]
    ops: list[Op] = list(_starts(_graph(stack), observed, targets, "stack start", {}))
    return assemble(observed.project, ops)


def plan_restart(stack: Stack | None, observed: Observed, services: Sequence[str] = (),
                 timeout: float | None = None) -> Plan:
    g = _graph(stack)
    targets = [c for c in _chosen(observed, services) if c.state != "paused"]
    stops = _stops(g, targets, "stack restart", timeout)
    first = {op.name: op.id for op in stops}
    ops: list[Op] = [*stops, *_starts(g, observed, targets, "stack restart", first)]
    return assemble(observed.project, ops)
