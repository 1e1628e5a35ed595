"""Text, Graphviz dot and Mermaid renderings of a dependency graph (``stack graph --format``).

All three are stable: services appear in start order (dependencies first, names sorted within a
generation) and each service's dependencies are listed by name. An edge is labelled only with
what is not the default: its condition when not ``service_started``, ``optional`` when
``required: false``, ``restart`` when ``restart: true``, and ``network_mode``/``volumes_from``
for links that are not (only) ``depends_on``. Pure string building; no I/O.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from stackd.graph.deps import start_order

_KIND_LABEL = {"network": "network_mode", "volumes_from": "volumes_from"}


def edge_label(data: dict[str, Any]) -> str:
    """The short label of an edge (empty for a plain ``depends_on`` with default settings)."""
    parts: list[str] = []
    kinds = data.get("kinds", (data.get("kind", "depends_on"),))
    parts.extend(_KIND_LABEL[k] for k in kinds if k in _KIND_LABEL)
    condition = data.get("condition", "service_started")
    if condition != "service_started":
        parts.append(str(condition))
    if not data.get("required", True):
        parts.append("optional")
    if data.get("restart", False):
        parts.append("restart")
    return ", ".join(parts)


def render_text(g: nx.DiGraph[str]) -> str:
    """One line per service in start order: ``web -> db (service_healthy), cache``."""
    lines: list[str] = []
    for name in _ordered(g):
        deps = []
        for dep in sorted(g.successors(name)):
            label = edge_label(g.edges[name, dep])
            deps.append(f"{dep} ({label})" if label else dep)
        lines.append(f"{name} -> {', '.join(deps)}" if deps else name)
    return "\n".join(lines) + "\n" if lines else "(no services)\n"


def render_dot(g: nx.DiGraph[str]) -> str:
    """A Graphviz digraph; optional dependencies are dashed."""
    title = _dot_quote(str(g.graph.get("name", "stack")))
    lines = [f"digraph {title} {{", "  rankdir=LR;", "  node [shape=box];"]
    order = _ordered(g)
    lines.extend(f"  {_dot_quote(name)};" for name in order)
    for name in order:
        for dep in sorted(g.successors(name)):
            data = g.edges[name, dep]
            attrs = []
            label = edge_label(data)
            if label:
                attrs.append(f"label={_dot_quote(label)}")
            if not data.get("required", True):
                attrs.append("style=dashed")
            suffix = f" [{', '.join(attrs)}]" if attrs else ""
            lines.append(f"  {_dot_quote(name)} -> {_dot_quote(dep)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_mermaid(g: nx.DiGraph[str]) -> str:
    """A Mermaid flowchart (``graph TD``); node ids ``s1, s2, ...`` follow start order, labelled
    with the service names; optional dependencies are dotted."""
    order = _ordered(g)
    ids = {name: f"s{i}" for i, name in enumerate(order, 1)}
    lines = ["graph TD"]
    lines.extend(f'  {ids[name]}["{_mermaid_text(name)}"]' for name in order)
    for name in order:
        for dep in sorted(g.successors(name)):
            label = edge_label(g.edges[name, dep])
            arrow = "-.->" if not g.edges[name, dep].get("required", True) else "-->"
            text = f"|{_mermaid_text(label)}|" if label else ""
            lines.append(f"  {ids[name]} {arrow}{text} {ids[dep]}")
    return "\n".join(lines) + "\n"


def _ordered(g: nx.DiGraph[str]) -> list[str]:
    return [name for generation in start_order(g) for name in generation]


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("|", "#124;")
