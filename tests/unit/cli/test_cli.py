"""The `stack` command line, run in-process through `stackd.cli.main.run`."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
import yaml

from stackd.cli.main import run
from stackd.drivers.fakehost import FakeHost
from tests.conftest import REPO


def stack(args: list[str], cwd: Path, environ: dict[str, str] | None = None,
          host: FakeHost | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(args, environ=environ or {}, cwd=str(cwd), out=out, err=err, host=host)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A copy of the repository's example stack (stack.yaml, overlays, examples/)."""
    for name in ("stack.yaml", "stack.prod.yaml", ".env", ".env.prod"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    return tmp_path


def test_config_quiet_validates(example: Path) -> None:
    assert stack(["config", "-q"], example) == (0, "", "")


def test_config_prints_long_form_yaml(example: Path) -> None:
    code, out, err = stack(["config"], example)
    assert code == 0, err
    data = yaml.safe_load(out)
    assert data["name"] == "demo"
    assert data["services"]["web"]["ports"] == [
        {"target": 80, "published": "8080", "protocol": "tcp", "mode": "ingress"}]
    assert data["services"]["db"]["environment"]["POSTGRES_USER"] == "app"  # from the env_file
    assert data["x-stackd"]["groups"]["foreground"]["cpu_weight"] == 300


def test_config_json_and_services(example: Path) -> None:
    code, out, _ = stack(["config", "--format", "json"], example)
    assert code == 0
    assert set(json.loads(out)["services"]) == {"web", "db", "cache"}
    assert stack(["config", "--services"], example)[1].split() == ["web", "db", "cache"]


def test_env_overlay_changes_what_it_says(example: Path) -> None:
    code, out, err = stack(["--env", "prod", "config", "--format", "json"], example)
    assert code == 0, err
    data = json.loads(out)
    web = data["services"]["web"]
    assert [p["published"] for p in web["ports"]] == ["8088"]  # !override replaced the list
    assert web["restart"] == "always"
    assert web["environment"]["APP_ENV"] == "prod"
    assert data["services"]["cache"]["command"][-1] == "256mb"
    assert data["x-stackd"]["groups"]["foreground"]["cpu_weight"] == 500


def test_stack_env_variable_is_the_same_as_the_flag(example: Path) -> None:
    assert stack(["config"], example, {"STACK_ENV": "prod"}) == stack(["--env", "prod", "config"], example)


def test_envs_lists_environments(example: Path) -> None:
    code, out, _ = stack(["envs"], example)
    assert code == 0
    assert out.split("\t")[0] == "prod"
    assert "stack.prod.yaml" in out and ".env.prod" in out


def test_unknown_env_is_exit_2_and_lists_known(example: Path) -> None:
    code, out, err = stack(["--env", "prdo", "config"], example)
    assert code == 2
    assert "prdo" in err and "prod" in err
    assert "Traceback" not in err and out == ""


def test_hash_is_stable_and_follows_env_file_content(example: Path) -> None:
    def hashes() -> dict[str, str]:
        code, out, err = stack(["config", "--hash", "*"], example)
        assert code == 0, err
        return dict(line.split() for line in out.splitlines())

    first = hashes()
    assert set(first) == {"web", "db", "cache"}
    assert hashes() == first
    (example / "examples" / "db.env").write_text("POSTGRES_USER=app\nPOSTGRES_DB=other\n")
    second = hashes()
    assert second["db"] != first["db"]
    assert second["web"] == first["web"] and second["cache"] == first["cache"]


def test_hash_follows_secret_file_content(example: Path) -> None:
    before = stack(["config", "--hash", "db"], example)[1]
    (example / "examples" / "secrets" / "db_password.txt").write_text("changed\n")
    after = stack(["config", "--hash", "db"], example)[1]
    assert before.split()[0] == "db" and before != after


def test_hash_of_unknown_service_is_exit_2(example: Path) -> None:
    code, _, err = stack(["config", "--hash", "nope"], example)
    assert code == 2 and "nope" in err


def test_bad_file_reports_every_problem_with_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "services:\n"
        "  web:\n"
        "    image: nginx\n"
        "    enviroment:\n"
        "      A: b\n"
        "    depends_on: [dbb]\n"
        "  db:\n"
        "    image: postgres\n"
        "    mem_limit: lots\n"
        "    ports: ['1:2:3:4']\n"
        "    command: ${UNCLOSED\n")
    code, out, err = stack(["config"], tmp_path)
    assert code == 2 and out == ""
    assert "Traceback" not in err
    assert "stack.yaml:4" in err and "environment" in err  # unknown key with a suggestion
    assert "stack.yaml:6" in err and "dbb" in err          # dangling depends_on
    assert "stack.yaml:9" in err and "mem_limit" in err    # bad byte size
    assert "stack.yaml:10" in err and "ports[0]" in err    # a short syntax that does not parse
    assert "stack.yaml:11" in err and "command" in err     # a broken ${...}
    assert len(err.splitlines()) == 5  # each mistake once, from whichever stage found it


def test_cycle_is_exit_2_with_the_whole_cycle(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "services:\n"
        "  a: {image: x, depends_on: [b]}\n"
        "  b: {image: x, depends_on: [c]}\n"
        "  c: {image: x, depends_on: [a]}\n")
    code, _, err = stack(["config", "-q"], tmp_path)
    assert code == 2
    assert "a -> b -> c -> a" in err


def test_graph_formats(example: Path) -> None:
    code, text, _ = stack(["graph"], example)
    assert code == 0 and "web" in text and "db" in text
    code, dot, _ = stack(["graph", "--format", "dot"], example)
    assert code == 0 and dot.startswith("digraph") and '"web" -> "db"' in dot
    code, mermaid, _ = stack(["graph", "--format", "mermaid"], example)
    assert code == 0 and mermaid.startswith("graph") and "web" in mermaid


def test_up_dry_run_prints_the_plan_and_changes_nothing(example: Path) -> None:
    host = FakeHost()
    code, out, err = stack(["up", "--dry-run"], example, host=host)
    assert code == 0, err
    for resource in ("service:web:1", "service:db:1", "service:cache:1", "volume:dbdata", "group:background"):
        assert resource in out
    assert {m for m, _ in host.calls} <= {"list_containers", "list_networks", "list_volumes", "list_groups",
                                          "image_id"}


def test_without_a_host_driver_the_runtime_verbs_say_so(example: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from stackd.daemon import service

    monkeypatch.setattr(service, "REALHOST_MODULE", "stackd.drivers.no_such_module_here")
    for verb in (["up", "--dry-run"], ["ps"], ["down"]):
        code, out, err = stack(verb, example, environ={"STACK_NO_DAEMON": "1"})
        assert code == 1 and out == ""
        assert "no host driver" in err and "Traceback" not in err


def test_unknown_command_line_option_is_exit_2(example: Path) -> None:
    assert stack(["config", "--nope"], example)[0] == 2
