"""Checks across the merged tree that no single model can make: names used are declared, and more.

``cross_checks(tree)`` reads the merged, canonical tree (defensively: it runs even where the types
are wrong, so that a user sees these problems together with the schema errors) and returns the
problems and warnings it finds, each at its line: services, networks, volumes, secrets, configs
and groups that are used but not declared; unique container names; ``scale`` against
``deploy.replicas``; dependency cycles (through ``depends_on``, ``network_mode``/``ipc``/``pid``
``service:`` and ``volumes_from``); host ports published by two services (a warning: Compose
loads such a file, and the second container fails when it starts). Cycles are found with a plain
topological sort; networkx is imported only when there is a cycle to report in full. Pure: reads
the tree, changes nothing, prints nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackd.errors import Pos, Problem, Warning_
from stackd.spec.hints import did_you_mean
from stackd.spec.tree import Map, Seq, dotted

if TYPE_CHECKING:
    import networkx as nx

Path = tuple[str | int, ...]
Need = tuple[str, Pos | None, Path, bool]  # (service needed, where, YAML path, required)

_NO_MAP, _NO_SEQ = Map(), Seq()  # stand-ins for a missing or mistyped node; never changed


def _map(node: Any) -> Map:
    return node if isinstance(node, Map) else _NO_MAP


def _seq(node: Any) -> Seq:
    return node if isinstance(node, Seq) else _NO_SEQ


def _count(v: Any) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    return None


def _needs(name: str, svc: Map) -> list[Need]:
    """The services ``svc`` needs: (service, position, YAML path, required)."""
    out: list[Need] = []
    deps = _map(svc.get("depends_on"))
    for dep, spec in deps.items():
        required = not (isinstance(spec, dict) and spec.get("required") in (False, "false"))
        out.append((dep, deps.where(dep), ("services", name, "depends_on", dep), required))
    for key in ("network_mode", "ipc", "pid"):
        mode = svc.get(key)
        if isinstance(mode, str) and mode.startswith("service:"):
            out.append((mode.removeprefix("service:"), svc.where(key), ("services", name, key), True))
    for i, (ref, pos) in enumerate(_seq(svc.get("volumes_from")).with_pos()):
        if isinstance(ref, str) and not ref.startswith("container:"):
            out.append((ref.split(":", 1)[0], pos, ("services", name, "volumes_from", i), True))
    return out


def _edges(services: Map, needs: dict[str, list[Need]]) -> dict[str, dict[str, tuple[Pos | None, Path]]]:
    """service → {service it needs: (position, YAML path) of the first place that says so}, sorted."""
    out: dict[str, dict[str, tuple[Pos | None, Path]]] = {}
    for name in sorted(needs):
        targets: dict[str, tuple[Pos | None, Path]] = {}
        for dep, pos, path, _ in sorted(needs[name], key=lambda n: n[0]):
            if dep in services and dep not in targets:
                targets[dep] = (pos, path)
        out[name] = targets
    return out


def _acyclic(edges: dict[str, dict[str, Any]]) -> bool:
    """Kahn's topological sort: True when every service can be ordered after the ones it needs."""
    waiting = dict.fromkeys(edges, 0)
    for targets in edges.values():
        for dep in targets:
            waiting[dep] = waiting.get(dep, 0) + 1
    ready = [name for name, count in waiting.items() if count == 0]
    ordered = 0
    while ready:
        ordered += 1
        for dep in edges.get(ready.pop(), ()):
            waiting[dep] -= 1
            if waiting[dep] == 0:
                ready.append(dep)
    return ordered == len(waiting)


def _cycles(services: Map, needs: dict[str, list[Need]]) -> list[Problem]:
    """One problem per cycle of dependencies, from its smallest service, at the edge that starts it."""
    edges = _edges(services, needs)
    if _acyclic(edges):
        return []
    import networkx as nx  # only here: importing it costs more than checking a whole stack

    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(edges)
    for name, targets in edges.items():
        for dep, (pos, path) in targets.items():
            graph.add_edge(name, dep, pos=pos, path=path)
    out: list[Problem] = []
    for component in nx.strongly_connected_components(graph):
        start = min(component)
        if len(component) == 1 and not graph.has_edge(start, start):
            continue
        cycle = [start, start] if graph.has_edge(start, start) else _shortest_loop(graph, start, component)
        edge = graph.edges[cycle[0], cycle[1]]
        text = "dependency cycle detected: " + " -> ".join(cycle)
        out.append(Problem(text, edge["pos"], dotted(edge["path"]),
                           "a service cannot wait for itself, directly or through others"))
    return out


def _shortest_loop(graph: nx.DiGraph[str], start: str, component: set[str]) -> list[str]:
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            for succ in sorted(graph.successors(node)):
                if succ == start:
                    loop = [node]
                    while loop[-1] != start:
                        loop.append(parent[loop[-1]])
                    return [*reversed(loop), start]
                if succ in component and succ not in parent:
                    parent[succ] = node
                    nxt.append(succ)
        frontier = nxt
    raise AssertionError("a strongly connected component always has a loop")  # pragma: no cover


def _overlap(a: str, b: str) -> bool:
    if a == b or not a or not b:
        return True
    family_a, family_b = ":" in a, ":" in b
    return family_a == family_b and (a in ("0.0.0.0", "::", "[::]") or b in ("0.0.0.0", "::", "[::]"))


def _ports(name: str, svc: Map, taken: dict[tuple[str, int], list[tuple[str, str]]]) -> list[Warning_]:
    """Host ports another service already publishes: Compose loads the file; the second container fails."""
    out: list[Warning_] = []
    ports = _seq(svc.get("ports"))
    for i, port in enumerate(ports):
        if not isinstance(port, Map):
            continue
        number = _count(port.get("published"))
        if not number:
            continue
        proto, ip = str(port.get("protocol") or "tcp"), str(port.get("host_ip") or "")
        holders = taken.setdefault((proto, number), [])
        other = next((s for s, o in holders if s != name and _overlap(ip, o)), None)
        if other is not None:
            out.append(Warning_(f'host port {number}/{proto} is also published by service "{other}"; '
                                f'`stack up` will fail to start service "{name}"',
                                port.where("published") or ports.where(i),
                                dotted(("services", name, "ports", i))))
        holders.append((name, ip))
    return out


def _references(name: str, svc: Map, top: dict[str, Map]) -> list[Problem]:
    """Networks, volumes, secrets and configs a service uses must be declared at the top level."""
    out: list[Problem] = []
    base: Path = ("services", name)
    networks = top["networks"]
    given = svc.get("networks")
    attached = given.items() if isinstance(given, Map) else _seq(given).with_pos()
    if svc.get("network_mode") is not None and given:
        out.append(Problem("`network_mode` and `networks` cannot be used together", svc.where("networks"),
                           dotted((*base, "networks")), "remove one of them"))
    for i, (net, _) in enumerate(attached):
        if isinstance(net, str) and net not in networks and net != "default":
            key: str | int = net if isinstance(given, Map) else i
            where = given.where(net) if isinstance(given, Map) else _seq(given).where(i)
            out.append(Problem(f'service "{name}" refers to undefined network "{net}"', where,
                               dotted((*base, "networks", key)),
                               did_you_mean(net, networks) or "declare it under the top-level `networks`"))
    volumes, mounts = top["volumes"], _seq(svc.get("volumes"))
    for i, vol in enumerate(mounts):
        source = vol.get("source") if isinstance(vol, Map) and vol.get("type") == "volume" else None
        if isinstance(source, str) and source and source not in volumes:
            out.append(Problem(f'service "{name}" refers to undefined volume "{source}"', mounts.where(i),
                               dotted((*base, "volumes", i)),
                               did_you_mean(source, volumes) or "declare it under the top-level `volumes`"))
    uses = [("secret", (*base, "secrets"), svc.get("secrets")),
            ("config", (*base, "configs"), svc.get("configs")),
            ("secret", (*base, "build", "secrets"), _map(svc.get("build")).get("secrets"))]
    for kind, path, refs in uses:
        if not refs:
            continue
        declared = top[f"{kind}s"]
        for i, (ref, pos) in enumerate(_seq(refs).with_pos()):
            source = ref.get("source") if isinstance(ref, Map) else ref
            if isinstance(source, str) and source not in declared:
                hint = did_you_mean(source, declared) or f"declare it under the top-level `{kind}s`"
                out.append(Problem(f'service "{name}" refers to undefined {kind} "{source}"', pos,
                                   dotted((*path, i)), hint))
    return out


def _group(name: str, svc: Map, groups: set[str]) -> tuple[list[Problem], list[Warning_]]:
    parent = svc.get("cgroup_parent")
    if not isinstance(parent, str) or (parent in groups and "/" not in parent):
        return [], []
    path = dotted(("services", name, "cgroup_parent"))
    where = svc.where("cgroup_parent")
    if parent.startswith("/"):
        return [], [Warning_(f"cgroup path {parent!r} ignored: stackd places containers only in its own "
                             "groups (x-stackd.groups); this service runs in group `default`", where, path)]
    if "/" in parent or parent not in groups:
        hint = did_you_mean(parent, groups) or (
            "declare it under `x-stackd.groups`, or give an absolute cgroup path")
        return [Problem(f'service "{name}" uses undefined group "{parent}"', where, path, hint)], []
    return [], []


def cross_checks(tree: Map, *, references: bool = True) -> tuple[list[Problem], list[Warning_]]:
    """(problems, warnings) across the tree (defensive: runs even where the types are wrong).

    ``references=False`` skips the checks that names used are declared (and that a service has an
    image or a build), as ``config --no-consistency`` does for partial files; cycles, container
    names and replicas are always checked, and host ports published twice always warn.
    """
    problems: list[Problem] = []
    warnings: list[Warning_] = []
    services = _map(tree.get("services"))
    groups = set(_map(_map(tree.get("x-stackd")).get("groups"))) | {"default"}
    needs: dict[str, list[Need]] = {}
    names: dict[str, str] = {}
    taken: dict[tuple[str, int], list[tuple[str, str]]] = {}
    top = {section: _map(tree.get(section)) for section in ("networks", "volumes", "secrets", "configs")}
    for name, svc in services.items():
        if not isinstance(svc, Map):
            continue
        needs[name] = _needs(name, svc)
        for dep, pos, path, required in needs[name] if references else ():
            if required and dep not in services:
                problems.append(Problem(f'service "{name}" depends on undefined service "{dep}"', pos,
                                        dotted(path), did_you_mean(dep, services)))
        if references and not (svc.get("image") or svc.get("build") or svc.get("provider")):
            problems.append(Problem(f'service "{name}" has neither an image nor a build context specified',
                                    services.where(name), f"services.{name}", "add `image:` or `build:`"))
        found, warned = _group(name, svc, groups)
        warnings.extend(warned)
        if references:
            problems.extend(_references(name, svc, top))
            problems.extend(found)
        scale, replicas = _count(svc.get("scale")), _count(_map(svc.get("deploy")).get("replicas"))
        if scale is not None and replicas is not None and scale != replicas:
            problems.append(Problem(f"`scale` ({scale}) and `deploy.replicas` ({replicas}) disagree",
                                    svc.where("scale"), f"services.{name}.scale", "set only one of them"))
        container = svc.get("container_name")
        if isinstance(container, str):
            where, at = svc.where("container_name"), f"services.{name}.container_name"
            if container in names:
                problems.append(Problem(f'container name "{container}" is already used by service '
                                        f'"{names[container]}"', where, at, "container names must be unique"))
            names.setdefault(container, name)
            count = scale if scale is not None else replicas if replicas is not None else 1
            if count > 1:
                problems.append(Problem(f"`container_name` cannot be used with {count} replicas", where, at,
                                        "container names must be unique: remove it or run one replica"))
        warnings.extend(_ports(name, svc, taken))
    problems.extend(_cycles(services, needs))
    return problems, warnings


__all__ = ["cross_checks"]
