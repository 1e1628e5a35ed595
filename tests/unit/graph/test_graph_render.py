"""``stack graph`` renderings: exact text for a small stack, and stability under reordering."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stackd.graph import build, edge_label, render_dot, render_mermaid, render_text
from stackd.spec.models import Stack


def _services() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("db", {"name": "db", "image": "postgres"}),
        ("cache", {"name": "cache", "image": "redis"}),
        ("web", {"name": "web", "image": "web", "depends_on": {
            "db": {"condition": "service_healthy", "restart": True}, "cache": {}}}),
        ("vpn", {"name": "vpn", "image": "vpn"}),
        ("app", {"name": "app", "image": "app", "network_mode": "service:vpn",
                 "depends_on": {"web": {"condition": "service_completed_successfully", "required": False}}}),
    ]


def _stack(order: list[tuple[str, dict[str, Any]]] | None = None) -> Stack:
    return Stack.model_validate({"name": "shop", "services": dict(order or _services())})


def test_text() -> None:
    assert render_text(build(_stack())) == (
        "cache\n"
        "db\n"
        "vpn\n"
        "web -> cache, db (service_healthy, restart)\n"
        "app -> vpn (network_mode), web (service_completed_successfully, optional)\n")


def test_dot() -> None:
    assert render_dot(build(_stack())) == (
        'digraph "shop" {\n'
        "  rankdir=LR;\n"
        "  node [shape=box];\n"
        '  "cache";\n'
        '  "db";\n'
        '  "vpn";\n'
        '  "web";\n'
        '  "app";\n'
        '  "web" -> "cache";\n'
        '  "web" -> "db" [label="service_healthy, restart"];\n'
        '  "app" -> "vpn" [label="network_mode"];\n'
        '  "app" -> "web" [label="service_completed_successfully, optional", style=dashed];\n'
        "}\n")


def test_mermaid() -> None:
    assert render_mermaid(build(_stack())) == (
        "graph TD\n"
        '  s1["cache"]\n'
        '  s2["db"]\n'
        '  s3["vpn"]\n'
        '  s4["web"]\n'
        '  s5["app"]\n'
        "  s4 --> s1\n"
        "  s4 -->|service_healthy, restart| s2\n"
        "  s5 -->|network_mode| s3\n"
        "  s5 -.->|service_completed_successfully, optional| s4\n")


@pytest.mark.parametrize("render", [render_text, render_dot, render_mermaid])
def test_renderings_do_not_depend_on_declaration_order(render: Any) -> None:
    want = render(build(_stack()))
    rng = random.Random(3)
    for _ in range(5):
        order = _services()
        rng.shuffle(order)
        assert render(build(_stack(order))) == want


def test_plain_started_dependency_has_no_label() -> None:
    assert edge_label({"kind": "depends_on", "kinds": ("depends_on",), "condition": "service_started",
                       "required": True, "restart": False}) == ""


def test_empty_stack_text() -> None:
    assert render_text(build(Stack.model_validate({"name": "x"}))) == "(no services)\n"
