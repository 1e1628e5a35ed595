"""The dependency graph of a stack's services, and the orders and subsets derived from it.

Nodes are service names; an edge points from a dependent to its dependency (``web -> db`` when
``web`` needs ``db``). Edges come from ``depends_on`` (attributes ``condition``, ``required``,
``restart``), from ``network_mode: service:X`` and from ``volumes_from: X`` (``container:``
references name containers outside the stack and make no edge). Every edge carries ``kind``
(the strongest reason: ``depends_on`` > ``network`` > ``volumes_from``) and ``kinds`` (all of them,
sorted), so that a service both listed in ``depends_on`` and used as ``network_mode`` keeps both
facts.

The graph is assumed acyclic: validation reports cycles (with positions) before anything is
planned; ``cycles`` gives it every cycle in a stable order. This module is pure: it reads the model only and
must not import anything that touches the host.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx

from stackd.errors import PlanError
from stackd.spec.models import Stack

_KIND_RANK = {"depends_on": 0, "network": 1, "volumes_from": 2}


def build(stack: Stack, *, strict: bool = True) -> nx.DiGraph[str]:
    """The dependency graph of ``stack`` (edges dependent → dependency).

    A required dependency that is not in the stack raises ``PlanError`` (with ``strict=False`` it
    is skipped, for tearing down what a broken file left behind); an optional one
    (``required: false``) is always skipped, as Compose does for a dependency in an inactive profile.
    """
    return _build(stack, strict=strict)


def cycles(stack: Stack) -> list[list[str]]:
    """Every elementary dependency cycle, each rotated to start at its smallest name, sorted.

    ``[["a", "b", "c"]]`` means a → b → c → a (a depends on b, ...); a self-dependency is ``[["a"]]``.
    References to services missing from the stack are ignored here (they are reported elsewhere).
    """
    g = build(stack, strict=False)
    found = {tuple(_rotate(list(c))) for c in nx.simple_cycles(g)}
    return [list(c) for c in sorted(found)]


def start_order(g: nx.DiGraph[str]) -> list[list[str]]:
    """Topological generations, dependencies first; names sorted within a generation.

    Raises ``PlanError`` naming a cycle if the graph has one.
    """
    try:
        generations = list(nx.topological_generations(g.reverse(copy=False)))
    except nx.NetworkXUnfeasible:
        cycle = [str(u) for u, _ in nx.find_cycle(g)]
        raise PlanError("dependency cycle detected: " + " -> ".join([*cycle, cycle[0]])) from None
    return [sorted(gen) for gen in generations]


def stop_order(g: nx.DiGraph[str]) -> list[list[str]]:
    """The reverse of ``start_order``: dependents first."""
    return list(reversed(start_order(g)))


def closure(g: nx.DiGraph[str], services: Iterable[str], *, deps: bool = True) -> set[str]:
    """The target services plus (with ``deps``) everything they depend on, transitively.

    An unknown target raises ``PlanError``.
    """
    targets = set(services)
    unknown = sorted(targets - set(g.nodes))
    if unknown:
        raise PlanError(f"no such service: {', '.join(unknown)}")
    out = set(targets)
    if deps:
        for name in targets:
            out |= nx.descendants(g, name)
    return out


def dependents(g: nx.DiGraph[str], service: str) -> list[str]:
    """Services that depend directly on ``service``, sorted."""
    return sorted(g.predecessors(service))


def _build(stack: Stack, *, strict: bool) -> nx.DiGraph[str]:
    g: nx.DiGraph[str] = nx.DiGraph(name=stack.name)
    g.add_nodes_from(sorted(stack.services))
    for name in sorted(stack.services):
        svc = stack.services[name]
        for dep in sorted(svc.depends_on):
            d = svc.depends_on[dep]
            if dep not in stack.services:
                if d.required and strict:
                    raise PlanError(f"service {name} depends on {dep}, which is not in the stack")
                continue
            _add(g, name, dep, "depends_on", condition=d.condition, required=d.required,
                 restart=d.restart)
        parent = _network_parent(svc.network_mode)
        if parent is not None:
            _link(g, stack, name, parent, "network", strict=strict)
        for ref in svc.volumes_from:
            parent = _volumes_parent(ref)
            if parent is not None:
                _link(g, stack, name, parent, "volumes_from", strict=strict)
    return g


def _link(g: nx.DiGraph[str], stack: Stack, name: str, parent: str, kind: str, *, strict: bool) -> None:
    if parent not in stack.services:
        if strict:
            what = "network_mode" if kind == "network" else "volumes_from"
            raise PlanError(f"service {name} uses {what} of {parent}, which is not in the stack")
        return
    _add(g, name, parent, kind, condition="service_started", required=True, restart=False)


def _add(g: nx.DiGraph[str], src: str, dst: str, kind: str, *, condition: str, required: bool,
         restart: bool) -> None:
    if g.has_edge(src, dst):
        data = g.edges[src, dst]
        kinds = sorted({*data["kinds"], kind}, key=_KIND_RANK.__getitem__)
        data["kinds"] = tuple(kinds)
        data["kind"] = kinds[0]
        if kind == "depends_on":
            data.update(condition=condition, required=required, restart=restart)
        return
    g.add_edge(src, dst, kind=kind, kinds=(kind,), condition=condition, required=required,
               restart=restart)


def _network_parent(mode: str | None) -> str | None:
    if mode and mode.startswith("service:"):
        return mode.removeprefix("service:")
    return None


def _volumes_parent(ref: str) -> str | None:
    if ref.startswith("container:"):
        return None
    return ref.split(":", 1)[0] or None


def _rotate(cycle: list[str]) -> list[str]:
    i = cycle.index(min(cycle))
    return cycle[i:] + cycle[:i]
