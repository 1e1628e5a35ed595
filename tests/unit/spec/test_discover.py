"""Finding files, .env files, overlays and profiles the way Compose users expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackd.errors import SpecError
from stackd.spec.discover import available_envs, discover, normalize_project_name
from stackd.spec.options import ProjectOptions


def _write(path: Path, text: str = "services: {}\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_default_file_order_prefers_stack_yaml(tmp_path: Path) -> None:
    _write(tmp_path / "compose.yaml")
    _write(tmp_path / "stack.yaml")
    d = discover(ProjectOptions(cwd=str(tmp_path)))
    assert d.files == (str(tmp_path / "stack.yaml"),)


@pytest.mark.parametrize("name", ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"])
def test_compose_names_are_found(tmp_path: Path, name: str) -> None:
    _write(tmp_path / name)
    assert discover(ProjectOptions(cwd=str(tmp_path))).files == (str(tmp_path / name),)


def test_search_walks_up_and_project_dir_is_the_files_dir(tmp_path: Path) -> None:
    _write(tmp_path / "compose.yaml")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    d = discover(ProjectOptions(cwd=str(sub)))
    assert d.files == (str(tmp_path / "compose.yaml"),)
    assert d.project_dir == str(tmp_path)


def test_override_companion_only_without_named_files(tmp_path: Path) -> None:
    _write(tmp_path / "compose.yaml")
    _write(tmp_path / "compose.override.yaml")
    assert len(discover(ProjectOptions(cwd=str(tmp_path))).files) == 2
    d = discover(ProjectOptions(cwd=str(tmp_path), files=("compose.yaml",)))
    assert d.files == (str(tmp_path / "compose.yaml"),)


def test_no_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no stack file found"):
        discover(ProjectOptions(cwd=str(tmp_path)))


def test_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="stack file not found"):
        discover(ProjectOptions(cwd=str(tmp_path), files=("nope.yaml",)))


def test_file_from_variables_stack_before_compose(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml")
    _write(tmp_path / "b.yaml")
    env = {"STACK_FILE": "a.yaml", "COMPOSE_FILE": "b.yaml"}
    d = discover(ProjectOptions(cwd=str(tmp_path), environ=env))
    assert d.files == (str(tmp_path / "a.yaml"),)
    d = discover(ProjectOptions(cwd=str(tmp_path), environ={"COMPOSE_FILE": "a.yaml:b.yaml"}))
    assert d.files == (str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))


def test_dotenv_caller_wins_and_env_file_flag_replaces_dotenv(tmp_path: Path) -> None:
    _write(tmp_path / "stack.yaml")
    _write(tmp_path / ".env", "A=from_dotenv\nB=from_dotenv\n")
    _write(tmp_path / "other.env", "A=from_other\n")
    d = discover(ProjectOptions(cwd=str(tmp_path), environ={"B": "from_shell"}))
    assert d.environ["A"] == "from_dotenv"
    assert d.environ["B"] == "from_shell"
    d = discover(ProjectOptions(cwd=str(tmp_path), env_files=("other.env",)))
    assert d.environ["A"] == "from_other"
    assert "B" not in d.environ


def test_env_overlay_files_in_order(tmp_path: Path) -> None:
    _write(tmp_path / "stack.yaml")
    _write(tmp_path / "stack.prod.yaml")
    _write(tmp_path / "stack.eu.yaml")
    _write(tmp_path / ".env", "A=base\nB=base\nC=base\n")
    _write(tmp_path / ".env.prod", "A=prod\nB=prod\n")
    _write(tmp_path / ".env.eu", "A=eu\n")
    d = discover(ProjectOptions(cwd=str(tmp_path), envs=("prod", "eu"), environ={"C": "shell"}))
    assert d.files == tuple(str(tmp_path / n) for n in ("stack.yaml", "stack.prod.yaml", "stack.eu.yaml"))
    assert (d.environ["A"], d.environ["B"], d.environ["C"]) == ("eu", "prod", "shell")
    assert d.envs == ("prod", "eu")


def test_stack_env_variable_selects_overlay(tmp_path: Path) -> None:
    _write(tmp_path / "stack.yaml")
    _write(tmp_path / "stack.prod.yaml")
    d = discover(ProjectOptions(cwd=str(tmp_path), environ={"STACK_ENV": "prod"}))
    assert d.overlay_files == (str(tmp_path / "stack.prod.yaml"),)


def test_overlay_follows_base_file_stem(tmp_path: Path) -> None:
    _write(tmp_path / "compose.yaml")
    _write(tmp_path / "compose.prod.yaml")
    d = discover(ProjectOptions(cwd=str(tmp_path), envs=("prod",)))
    assert d.overlay_files == (str(tmp_path / "compose.prod.yaml"),)


def test_env_with_only_a_dotenv_file_exists(tmp_path: Path) -> None:
    _write(tmp_path / "stack.yaml")
    _write(tmp_path / ".env.staging", "A=staging\n")
    d = discover(ProjectOptions(cwd=str(tmp_path), envs=("staging",)))
    assert d.overlay_files == ()
    assert d.environ["A"] == "staging"


def test_unknown_env_lists_the_ones_found(tmp_path: Path) -> None:
    _write(tmp_path / "stack.yaml")
    _write(tmp_path / "stack.prod.yaml")
    _write(tmp_path / ".env.dev", "")
    with pytest.raises(SpecError) as info:
        discover(ProjectOptions(cwd=str(tmp_path), envs=("prdo",)))
    message = info.value.problems[0].message
    assert "prdo" in message and "dev, prod" in message


def test_available_envs_ignores_override_companion(tmp_path: Path) -> None:
    for name in ("stack.yaml", "stack.override.yaml", "stack.prod.yaml", ".env", ".env.test"):
        _write(tmp_path / name)
    assert available_envs(str(tmp_path), "stack") == ["prod", "test"]


def test_profiles_from_flag_or_variables(tmp_path: Path) -> None:
    _write(tmp_path / "stack.yaml")
    base = ProjectOptions(cwd=str(tmp_path), environ={"COMPOSE_PROFILES": "a,b"})
    assert discover(base).profiles == ("a", "b")
    env = {"STACK_PROFILES": "x", "COMPOSE_PROFILES": "a"}
    assert discover(ProjectOptions(cwd=str(tmp_path), environ=env)).profiles == ("x",)
    flagged = ProjectOptions(cwd=str(tmp_path), profiles=("p",), environ={"COMPOSE_PROFILES": "a"})
    assert discover(flagged).profiles == ("p",)


@pytest.mark.parametrize(("raw", "name"), [("My Project", "myproject"),
                                           ("UNNORMALIZED PATH", "unnormalizedpath"), ("_x.y-z", "xy-z")])
def test_directory_names_become_project_names(raw: str, name: str) -> None:
    assert normalize_project_name(raw) == name
