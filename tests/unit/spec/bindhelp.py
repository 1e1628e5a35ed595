"""Helpers for the binding tests: parse a stack text and bind it, or collect the problems it has."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from stackd.errors import Problem, SpecError, Warning_
from stackd.spec.models import Stack
from stackd.spec.tree import Map
from stackd.spec.validate import bind
from stackd.spec.yamlsrc import parse


def tree_of(text: str, file: str = "stack.yaml") -> Map:
    tree = parse(textwrap.dedent(text), file)
    assert isinstance(tree, Map)
    return tree


def problems(text: str, file: str = "stack.yaml", **kw: Any) -> list[Problem]:
    with pytest.raises(SpecError) as info:
        bind(tree_of(text, file), project="demo", **kw)
    return info.value.problems


def one(text: str, **kw: Any) -> Problem:
    found = problems(text, **kw)
    assert len(found) == 1, [p.render() for p in found]
    return found[0]


def bound(text: str) -> tuple[Stack, list[Warning_]]:
    return bind(tree_of(text), project="demo")


def with_service(body: str, extra: str = "") -> str:
    """A one-service stack whose service ``web`` has ``body`` (YAML lines, 4-space indented)."""
    return f"services:\n  web:\n    image: nginx\n{textwrap.indent(textwrap.dedent(body), '    ')}{extra}"
