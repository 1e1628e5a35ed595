"""The dependency graph of a stack: build it, order it, subset it, draw it.

Pure functions over ``stackd.spec.models.Stack``; this package imports ``stackd.spec`` (and the
error tree) only and never touches the host.
"""

from stackd.graph.deps import build, closure, cycles, dependents, start_order, stop_order
from stackd.graph.render import edge_label, render_dot, render_mermaid, render_text

__all__ = [
    "build",
    "closure",
    "cycles",
    "dependents",
    "edge_label",
    "render_dot",
    "render_mermaid",
    "render_text",
    "start_order",
    "stop_order",
]
