"""The project's name without loading the stack is the name the loader gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackd.errors import SpecError
from stackd.spec.loader import load
from stackd.spec.options import ProjectOptions
from stackd.spec.projectname import project_name


@pytest.mark.parametrize(("text", "environ", "name", "expected"), [
    ("name: ${PN:-fromfile}\nservices: {a: {image: x}}\n", {}, None, "fromfile"),
    ("name: ${PN:-fromfile}\nservices: {a: {image: x}}\n", {"PN": "fromvar"}, None, "fromvar"),
    ("services: {a: {image: x}}\n", {}, None, "mydir"),  # the directory "My Dir", normalized
    ("services: {a: {image: x}}\n", {"COMPOSE_PROJECT_NAME": "env"}, None, "env"),
    ("name: file\nservices: {a: {image: x}}\n", {"STACK_PROJECT_NAME": "stackenv"}, "flag", "flag"),
])
def test_the_name_is_the_loaders(tmp_path: Path, text: str, environ: dict[str, str], name: str | None,
                                 expected: str) -> None:
    d = tmp_path / "My Dir"
    d.mkdir()
    (d / "stack.yaml").write_text(text)
    options = ProjectOptions(cwd=str(d), environ=environ, project_name=name)
    assert project_name(options) == expected == load(options).stack.name


def test_no_file_is_the_loaders_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no stack file found"):
        project_name(ProjectOptions(cwd=str(tmp_path), environ={}))
