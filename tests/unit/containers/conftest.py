"""Fixtures of the per-container assembly unit tests: stacks loaded from YAML text (as the CLI
loads them, so short syntaxes are in their canonical form), image configs, container paths."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from stackd.drivers.containers.paths import ContainerPaths
from stackd.drivers.images.config import ImageConfig
from stackd.spec.loader import load
from stackd.spec.models import Stack
from stackd.spec.options import ProjectOptions

PROJECT = "demo"
LoadStack = Callable[[str], Stack]


@pytest.fixture
def load_stack(tmp_path: Path) -> LoadStack:
    def make(text: str) -> Stack:
        path = tmp_path / "stack.yaml"
        path.write_text(textwrap.dedent(text))
        options = ProjectOptions(files=(str(path),), project_name=PROJECT, environ={"HOME": "/root"},
                                 cwd=str(tmp_path))
        return load(options).stack
    return make


def image(**fields: object) -> ImageConfig:
    base: dict[str, object] = {"env": ("PATH=/usr/bin:/bin",), "cmd": ("sh",)}
    base.update(fields)
    return ImageConfig(**base)  # type: ignore[arg-type]


def paths(name: str = "demo-web-1") -> ContainerPaths:
    return ContainerPaths(Path("/data"), name)
