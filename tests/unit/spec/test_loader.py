"""What the loader itself decides: project name, include, overlays, env/label files, paths, profiles, digests.

Every test builds a small project in a temporary directory and loads it with a clean environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stackd.errors import SpecError
from stackd.spec.loader import Loaded, load
from stackd.spec.options import ProjectOptions
from stackd.spec.validate import to_compose_dict


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_in(root: Path, *files: str, **options: Any) -> Loaded:
    options.setdefault("environ", {})
    return load(ProjectOptions(files=files, cwd=str(root), **options))


def error_in(root: Path, *files: str, **options: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_in(root, *files, **options)
    return info.value


def service(loaded: Loaded, name: str) -> dict[str, Any]:
    data: dict[str, Any] = to_compose_dict(loaded.stack)["services"][name]
    return data


WEB = "services:\n  web:\n    image: nginx\n"


# ---- project name -------------------------------------------------------------------------------

@pytest.fixture
def named(tmp_path: Path) -> Path:
    root = tmp_path / "My Project.d"
    write(root, "compose.yaml", "name: from-first\n" + WEB)
    write(root, "second.yaml", "name: from-second\n")
    write(root, "third.yaml",
          "services:\n  web:\n    container_name: ${COMPOSE_PROJECT_NAME}-${STACK_PROJECT_NAME}\n")
    return root


def test_project_name_flag_wins_over_everything(named: Path) -> None:
    env = {"STACK_PROJECT_NAME": "stack-env", "COMPOSE_PROJECT_NAME": "compose-env"}
    loaded = load_in(named, "compose.yaml", "second.yaml", project_name="flag", environ=env)
    assert loaded.stack.name == "flag"


def test_project_name_stack_variable_then_compose_variable(named: Path) -> None:
    env = {"STACK_PROJECT_NAME": "stack-env", "COMPOSE_PROJECT_NAME": "compose-env"}
    assert load_in(named, "compose.yaml", environ=env).stack.name == "stack-env"
    loaded = load_in(named, "compose.yaml", environ={"COMPOSE_PROJECT_NAME": "compose-env"})
    assert loaded.stack.name == "compose-env"


def test_project_name_last_name_key_then_directory(named: Path) -> None:
    assert load_in(named, "compose.yaml", "second.yaml", "third.yaml").stack.name == "from-second"
    write(named, "compose.yaml", WEB)
    assert load_in(named, "compose.yaml").stack.name == "myprojectd"


def test_project_name_variables_in_files_see_the_final_name(named: Path) -> None:
    loaded = load_in(named, "compose.yaml", "second.yaml", "third.yaml")
    assert service(loaded, "web")["container_name"] == "from-second-from-second"
    loaded = load_in(named, "compose.yaml", "third.yaml", project_name="flag")
    assert service(loaded, "web")["container_name"] == "flag-flag"


def test_project_name_key_is_interpolated(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "name: app-${STAGE:-dev}\n" + WEB)
    assert load_in(tmp_path, "compose.yaml").stack.name == "app-dev"
    assert load_in(tmp_path, "compose.yaml", environ={"STAGE": "prod"}).stack.name == "app-prod"


@pytest.mark.parametrize("bad", ["MY_PROJECT", "-app", "_app", "www.my.app", "a b"])
def test_invalid_project_names_are_errors_wherever_they_come_from(tmp_path: Path, bad: str) -> None:
    write(tmp_path, "compose.yaml", WEB)
    assert "invalid project name" in str(error_in(tmp_path, "compose.yaml", project_name=bad))
    from_env = error_in(tmp_path, "compose.yaml", environ={"COMPOSE_PROJECT_NAME": bad})
    assert "invalid project name" in str(from_env)
    write(tmp_path, "named.yaml", f"name: '{bad}'\n" + WEB)
    assert "invalid project name" in str(error_in(tmp_path, "named.yaml"))


def test_a_directory_without_usable_characters_needs_a_name(tmp_path: Path) -> None:
    root = tmp_path / "___"
    write(root, "compose.yaml", WEB)
    assert "cannot derive a project name" in str(error_in(root, "compose.yaml"))
    assert load_in(root, "compose.yaml", project_name="ok").stack.name == "ok"


# ---- files --------------------------------------------------------------------------------------

def test_empty_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "# nothing here\n")
    err = error_in(tmp_path, "compose.yaml")
    assert err.problems[0].message.startswith("empty compose file")
    assert err.problems[0].pos is not None and err.problems[0].pos.file == "compose.yaml"


def test_a_file_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "- a\n- b\n")
    assert "must be a mapping" in str(error_in(tmp_path, "compose.yaml"))


def test_later_files_merge_over_earlier_ones(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", WEB + "    environment: {A: '1', B: '1'}\n")
    write(tmp_path, "override.yaml", "services:\n  web:\n    environment: {B: '2'}\n")
    web = service(load_in(tmp_path, "compose.yaml", "override.yaml"), "web")
    assert web["environment"] == {"A": "1", "B": "2"}


def test_consistency_off_accepts_undeclared_resources(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", WEB + "    volumes: ['data:/data']\n")
    assert "undefined volume" in str(error_in(tmp_path, "compose.yaml"))
    web = service(load_in(tmp_path, "compose.yaml", consistency=False), "web")
    assert web["volumes"][0]["source"] == "data"


def test_variables_may_stand_for_numbers_and_booleans(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", WEB + "    scale: ${N}\n    privileged: ${P}\n")
    web = service(load_in(tmp_path, "compose.yaml", environ={"N": "3", "P": "true"}), "web")
    assert web["scale"] == 3 and web["privileged"] is True


# ---- overlays ------------------------------------------------------------------------------------

def test_env_overlay_file_and_dotenv_apply_in_order(tmp_path: Path) -> None:
    write(tmp_path, "stack.yaml", WEB + "    environment: {TIER: $TIER, HOST: $HOST, KEEP: $KEEP}\n")
    write(tmp_path, ".env", "TIER=base\nHOST=base\nKEEP=base\n")
    write(tmp_path, ".env.prod", "TIER=prod\nHOST=prod\n")
    write(tmp_path, "stack.prod.yaml", "services:\n  web:\n    image: nginx:prod\n")
    loaded = load(ProjectOptions(cwd=str(tmp_path), envs=("prod",), environ={"HOST": "shell"}))
    web = service(loaded, "web")
    assert web["image"] == "nginx:prod"
    assert web["environment"] == {"TIER": "prod", "HOST": "shell", "KEEP": "base"}
    by_variable = load(ProjectOptions(cwd=str(tmp_path), environ={"STACK_ENV": "prod"}))
    assert by_variable.stack.services["web"].image == "nginx:prod"


def test_unknown_env_overlay_lists_the_ones_found(tmp_path: Path) -> None:
    write(tmp_path, "stack.yaml", WEB)
    write(tmp_path, "stack.prod.yaml", WEB)
    with pytest.raises(SpecError, match=r"environments found in .*: prod"):
        load(ProjectOptions(cwd=str(tmp_path), envs=("prdo",), environ={}))


# ---- env_file and label_file ---------------------------------------------------------------------

def test_env_file_precedence_and_interpolation(tmp_path: Path) -> None:
    write(tmp_path, "a.env", "A=from_a\nB=from_a\nC=from_a\nREF=${A}-${SHELL_ONLY}\n")
    write(tmp_path, "b.env", "B=from_b\nC=from_b\nSAME=${B}\n")
    write(tmp_path, "compose.yaml", WEB + "    env_file: [a.env, b.env]\n"
          "    environment:\n      C: declared\n      FROM_SHELL:\n      UNSET:\n")
    env = service(load_in(tmp_path, "compose.yaml", environ={"FROM_SHELL": "shell", "SHELL_ONLY": "s"}),
                  "web")
    assert env["environment"] == {"A": "from_a", "B": "from_b", "C": "declared", "REF": "from_a-s",
                                  "SAME": "from_b", "FROM_SHELL": "shell", "UNSET": None}
    assert "env_file" not in env


def test_missing_env_file_is_an_error_unless_optional(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", WEB + "    env_file:\n      - path: gone.env\n        required: false\n"
          "      - missing.env\n")
    err = error_in(tmp_path, "compose.yaml")
    assert len(err.problems) == 1
    problem = err.problems[0]
    assert "missing.env not found" in problem.message and problem.path == "services.web.env_file[1]"
    assert problem.pos is not None and problem.pos.line == 7


def test_env_files_are_read_from_the_project_directory_when_paths_stay_as_written(tmp_path: Path) -> None:
    write(tmp_path, "conf/app.env", "X=1\n")
    write(tmp_path, "compose.yaml", WEB + "    env_file: conf/app.env\n")
    assert service(load_in(tmp_path / "conf", "../compose.yaml", resolve_paths=False), "web")["environment"] \
        == {"X": "1"}


def test_label_file_folds_into_labels(tmp_path: Path) -> None:
    write(tmp_path, "a.labels", "A=1\nB=1\n")
    write(tmp_path, "b.labels", "B=2\nC=2\n")
    write(tmp_path, "compose.yaml", WEB + "    label_file: [a.labels, b.labels]\n    labels: {C: mine}\n")
    web = service(load_in(tmp_path, "compose.yaml"), "web")
    assert web["labels"] == {"A": "1", "B": "2", "C": "mine"}
    assert "label_file" not in web


# ---- paths ---------------------------------------------------------------------------------------

def test_relative_paths_become_absolute_against_the_project_directory(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    write(root, "s.txt", "secret")
    write(root, "compose.yaml", "services:\n  web:\n    build: ./app\n"
          "    volumes: ['./data:/data', '~/cache:/cache', 'named:/n']\n    secrets: [s]\n"
          "volumes: {named: {}}\nsecrets:\n  s: {file: s.txt}\n")
    loaded = load_in(tmp_path, "proj/compose.yaml", environ={"HOME": "/home/me"})
    web = service(loaded, "web")
    assert web["build"]["context"] == str(root / "app")
    assert [v.get("source") for v in web["volumes"]] == [str(root / "data"), "/home/me/cache", "named"]
    assert loaded.stack.secrets["s"].file == str(root / "s.txt")


def test_paths_stay_as_written_when_asked(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "services:\n  web:\n    build: ./app\n    volumes: ['./data:/data']\n")
    web = service(load_in(tmp_path, "compose.yaml", resolve_paths=False), "web")
    assert web["build"]["context"] == "./app"
    assert web["volumes"][0]["source"] == "./data"


def test_remote_build_context_is_not_a_path(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "services:\n  web:\n    build: https://github.com/x/y.git#main\n")
    assert service(load_in(tmp_path, "compose.yaml"), "web")["build"]["context"] == "https://github.com/x/y.git#main"


# ---- include -------------------------------------------------------------------------------------

DB_VW = "services:\n  db:\n    image: db\n    environment: {V: '${V}', W: '${W}'}\n"


def test_include_reads_paths_from_its_own_directory(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "include:\n  - lib/compose.yaml\n" + WEB)
    write(tmp_path, "lib/vars.env", "V=1\n")
    write(tmp_path, "lib/compose.yaml", "services:\n  db:\n    build: .\n    env_file: vars.env\n"
          "    volumes: ['./data:/data']\n")
    db = service(load_in(tmp_path, "compose.yaml"), "db")
    assert db["build"]["context"] == str(tmp_path / "lib")
    assert db["volumes"][0]["source"] == str(tmp_path / "lib" / "data")
    assert db["environment"] == {"V": "1"}
    db = service(load_in(tmp_path, "compose.yaml", resolve_paths=False), "db")
    assert db["build"]["context"] == "lib"  # re-rooted into the including project, still relative
    assert db["volumes"][0]["source"] == "lib/data"


def test_include_project_directory_re_roots_the_included_file(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "include:\n  - path: defs/db.yaml\n    project_directory: srv\n" + WEB)
    write(tmp_path, "defs/db.yaml", "services:\n  db:\n    build: .\n")
    assert service(load_in(tmp_path, "compose.yaml"), "db")["build"]["context"] == str(tmp_path / "srv")


def test_include_uses_its_own_dotenv_and_the_caller_wins(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "include: [lib/compose.yaml]\n" + WEB + "    environment: {V: '${V-}'}\n")
    write(tmp_path, "lib/.env", "V=lib\nW=lib\n")
    write(tmp_path, "lib/compose.yaml", DB_VW)
    loaded = load_in(tmp_path, "compose.yaml")
    assert service(loaded, "web")["environment"] == {"V": ""}  # the included .env stays in its project
    assert service(loaded, "db")["environment"] == {"V": "lib", "W": "lib"}
    loaded = load_in(tmp_path, "compose.yaml", environ={"V": "shell"})
    assert service(loaded, "db")["environment"] == {"V": "shell", "W": "lib"}


def test_include_env_file_is_relative_to_the_including_project(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "include:\n  - path: lib/compose.yaml\n    env_file: [a.env, b.env]\n")
    write(tmp_path, "a.env", "V=a\nW=a\n")
    write(tmp_path, "b.env", "W=b\n")
    write(tmp_path, "lib/.env", "V=ignored\n")
    write(tmp_path, "lib/compose.yaml", DB_VW)
    assert service(load_in(tmp_path, "compose.yaml"), "db")["environment"] == {"V": "a", "W": "b"}


def test_include_conflicts_between_included_files(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "include: [a.yaml, b.yaml]\n" + WEB)
    write(tmp_path, "a.yaml", "services:\n  db:\n    image: db:1\n")
    write(tmp_path, "b.yaml", "services:\n  db:\n    image: db:2\n")
    err = error_in(tmp_path, "compose.yaml")
    assert "services.db from b.yaml conflicts with the one imported from a.yaml" in str(err)
    assert err.problems[0].pos is not None and err.problems[0].pos.line == 1
    write(tmp_path, "b.yaml", "services:\n  db:\n    image: db:1\n")
    assert load_in(tmp_path, "compose.yaml").stack.services["db"].image == "db:1"  # identical: fine


def test_the_including_file_merges_over_an_included_resource(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "include: [lib.yaml]\nservices:\n  db:\n    image: mine\n"
          "    environment: !override {ONLY: me}\n")
    write(tmp_path, "lib.yaml", "services:\n  db:\n    image: theirs\n    environment: {A: '1'}\n"
          "    user: db\n")
    db = service(load_in(tmp_path, "compose.yaml"), "db")
    assert (db["image"], db["environment"], db["user"]) == ("mine", {"ONLY": "me"}, "db")


def test_a_later_file_overrides_an_included_service(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "include: [lib.yaml]\n")
    write(tmp_path, "lib.yaml", "services:\n  db:\n    image: theirs\n")
    write(tmp_path, "override.yaml", "services:\n  db:\n    image: mine\n")
    assert load_in(tmp_path, "compose.yaml", "override.yaml").stack.services["db"].image == "mine"


def test_include_cycles_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "include: [a.yaml]\n" + WEB)
    write(tmp_path, "a.yaml", "include: [b/b.yaml]\n")
    write(tmp_path, "b/b.yaml", "include: [../a.yaml]\n")
    err = error_in(tmp_path, "compose.yaml")
    assert "include cycle detected: compose.yaml -> a.yaml -> b/b.yaml -> a.yaml" in str(err)
    write(tmp_path, "self.yaml", "include: [self.yaml]\n" + WEB)
    assert "include cycle detected: self.yaml -> self.yaml" in str(error_in(tmp_path, "self.yaml"))


def test_include_mistakes_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", "include:\n  - nope.yaml\n  - path: lib.yaml\n    env_file: gone.env\n"
          "    extra: 1\n" + WEB)
    write(tmp_path, "lib.yaml", WEB)
    messages = [p.message for p in error_in(tmp_path, "compose.yaml").problems]
    assert len(messages) == 3
    assert any("included file not found: nope.yaml" in m for m in messages)
    assert any("include env file not found: gone.env" in m for m in messages)
    assert any("unknown key `extra`" in m for m in messages)
    write(tmp_path, "compose.yaml", "include: lib.yaml\n" + WEB)
    assert "`include` must be a list" in str(error_in(tmp_path, "compose.yaml"))


# ---- profiles and targets ------------------------------------------------------------------------

PROFILED = ("services:\n  web:\n    image: nginx\n  debug:\n    image: busybox\n    profiles: [debug]\n"
            "    depends_on: [tools]\n  tools:\n    image: busybox\n    profiles: [tools]\n")


def test_profiles_select_services(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", PROFILED)
    assert set(load_in(tmp_path, "compose.yaml").stack.services) == {"web"}
    both = load_in(tmp_path, "compose.yaml", profiles=("debug", "tools"))
    assert set(both.stack.services) == {"web", "debug", "tools"}
    env = {"COMPOSE_PROFILES": "tools"}
    assert set(load_in(tmp_path, "compose.yaml", environ=env).stack.services) == {"web", "tools"}


def test_a_named_service_is_enabled_with_its_dependencies(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", PROFILED)
    loaded = load_in(tmp_path, "compose.yaml", services=("debug",))
    assert set(loaded.stack.services) == {"web", "debug", "tools"}


def test_naming_an_unknown_service_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", PROFILED)
    err = error_in(tmp_path, "compose.yaml", services=("debgu",))
    assert err.problems[0].message == "no such service: debgu"
    assert err.problems[0].hint == "did you mean `debug`?"


# ---- secret and config digests -------------------------------------------------------------------

def test_secret_and_config_digests_follow_the_content(tmp_path: Path) -> None:
    write(tmp_path, "s.txt", "one")
    write(tmp_path, "compose.yaml", WEB + "    secrets: [s]\n    configs: [c, e]\n"
          "secrets:\n  s: {file: s.txt}\nconfigs:\n  c: {content: 'v1'}\n  e: {environment: TOKEN}\n")
    first = load_in(tmp_path, "compose.yaml", environ={"TOKEN": "a"}).stack
    assert first.secrets["s"].digest and first.configs["c"].digest and first.configs["e"].digest
    write(tmp_path, "s.txt", "two")
    second = load_in(tmp_path, "compose.yaml", environ={"TOKEN": "b"}).stack
    assert second.secrets["s"].digest != first.secrets["s"].digest
    assert second.configs["c"].digest == first.configs["c"].digest
    assert second.configs["e"].digest != first.configs["e"].digest
    as_written = load_in(tmp_path, "compose.yaml", environ={"TOKEN": "b"}, resolve_paths=False).stack
    assert as_written.secrets["s"].digest == second.secrets["s"].digest


def test_missing_secret_file_is_an_error_at_its_line(tmp_path: Path) -> None:
    write(tmp_path, "compose.yaml", WEB + "    secrets: [s]\nsecrets:\n  s:\n    file: gone.txt\n")
    problem = error_in(tmp_path, "compose.yaml").problems[0]
    assert problem.message == "secret file not found: " + str(tmp_path / "gone.txt")
    assert problem.path == "secrets.s.file" and problem.pos is not None and problem.pos.line == 7


def test_build_args_without_value_come_from_the_project_variables(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "services:\n  app:\n    build:\n      context: .\n"
        "      args: [FROM_DOTENV, FROM_SHELL, UNSET, SET=x]\n")
    (tmp_path / ".env").write_text("FROM_DOTENV=d\n")
    loaded = load(ProjectOptions(cwd=str(tmp_path), environ={"FROM_SHELL": "s"}))
    build = loaded.stack.services["app"].build
    assert build is not None
    assert dict(build.args) == {"FROM_DOTENV": "d", "FROM_SHELL": "s", "UNSET": None, "SET": "x"}


def test_a_secret_from_a_variable_carries_the_value_the_loader_saw(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "services:\n  app:\n    image: x\n    secrets: [token]\n"
        "secrets:\n  token:\n    environment: TOKEN\n")
    (tmp_path / ".env").write_text("TOKEN=from-dotenv\n")
    loaded = load(ProjectOptions(cwd=str(tmp_path), environ={}))
    secret = loaded.stack.secrets["token"]
    assert secret.value == "from-dotenv" and secret.digest
    assert "from-dotenv" not in repr(secret) and "value" not in secret.model_dump()
    assert "from-dotenv" not in str(to_compose_dict(loaded.stack))
