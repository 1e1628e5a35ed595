"""The runtime verbs of `stack` on a FakeHost: progress formats, tables, JSON, exit codes."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackd.cli.main import run
from stackd.cli.progress import Progress
from stackd.drivers.cgroups.usage import CgroupUsage
from stackd.drivers.fakehost import FakeHost
from stackd.drivers.host import ExecResult
from stackd.execute import Event, ManualClock

STACK = """\
name: demo
services:
  db:
    image: db:1
    volumes: [data:/var/lib/db]
  web:
    image: web:1
    environment: {MODE: "${MODE:-dev}"}
    ports: ["8080:80"]
    depends_on: [db]
volumes:
  data: {}
"""


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        (tmp_path / "stack.yaml").write_text(STACK)
        self.host = FakeHost(images={"db:1": "i-db", "web:1": "i-web", "job:1": "i-job"}, log_dir=tmp_path)
        self.clock = ManualClock(datetime.now(UTC))

    def __call__(self, *args: str, **environ: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run(list(args), environ=environ, cwd=str(self.dir), out=out, err=err, host=self.host,
                   clock=self.clock)
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def stack(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_up_plain_progress_then_nothing_to_do(stack: Cli) -> None:
    code, out, err = stack("up", "-d")
    assert code == 0 and out == ""
    lines = err.splitlines()
    assert "Network demo_default  Creating" in lines and "Network demo_default  Created" in lines
    assert "Volume demo_data  Created" in lines
    assert lines.index("Container demo-db-1  Started") < lines.index("Container demo-web-1  Starting")
    assert lines[-1] == "Container demo-web-1  Started"
    code, out, err = stack("up", "-d")
    assert (code, out, err) == (0, "", "nothing to do: demo is up to date\n")


def test_up_tty_progress_shows_outcomes_with_marks(stack: Cli) -> None:
    code, _, err = stack("up", "-d", "--progress", "tty")
    assert code == 0
    assert " ✔ Container demo-web-1  Started" in err.splitlines()
    assert "Starting" not in err
    assert " ⠿ Container demo-db-1  Waiting" in err.splitlines()  # web waits for db to have started


def test_up_json_progress_is_one_object_per_line(stack: Cli) -> None:
    code, _, err = stack("up", "-d", "--progress", "json")
    assert code == 0
    events = [json.loads(line) for line in err.splitlines()]
    assert set(events[0]) == {"time", "resource", "kind", "name", "action", "status", "message"}
    assert {"resource": "service:web:1", "action": "start", "status": "done"}.items() <= events[-1].items()


def test_up_failure_is_exit_1_with_the_op_and_what_was_skipped(stack: Cli) -> None:
    stack.host.fail("create_container", "demo-db-1")
    code, _, err = stack("up", "-d", "--progress", "tty")
    assert code == 1
    assert " ✘ Container demo-db-1  Error  injected failure: create_container demo-db-1" in err.splitlines()
    assert " ✘ Container demo-web-1  Skipped  create service:db:1 failed" in err.splitlines()
    assert "error: create service:db:1: injected failure: create_container demo-db-1" in err
    assert "error: 3 operation(s) not done because of the errors above" in err


def test_dry_run_shows_the_plan_against_the_observed_host(stack: Cli) -> None:
    stack("up", "-d")
    code, out, _ = stack("up", "--dry-run", MODE="prod")
    assert code == 0
    assert out.splitlines()[0] == "plan for demo: 4 operations"
    assert "config hash changed: environment" in out and "service:db" not in out
    code, out, _ = stack("up", "--dry-run", "--format", "json")
    assert json.loads(out)["operations"] == []
    assert stack.host.containers["demo-web-1"].state == "running"


def test_down_and_down_volumes(stack: Cli) -> None:
    stack("up", "-d")
    code, out, err = stack("down", "--dry-run")
    assert code == 0 and "remove service:web:1" in out and "volume" not in out
    code, _, err = stack("down")
    assert code == 0 and "Container demo-web-1  Removed" in err
    assert stack.host.containers == {} and stack.host.volumes
    stack("up", "-d")
    code, _, err = stack("down", "-v")
    assert code == 0 and "Volume demo_data  Removed" in err and not stack.host.volumes


def test_ps_table_and_json(stack: Cli) -> None:
    stack("up", "-d")
    stack.host.set_health("demo-db-1", "healthy")
    code, out, _ = stack("ps")
    assert code == 0
    assert out.splitlines() == [
        "NAME         SERVICE   STATUS              PORTS",
        "demo-db-1    db        running (healthy)",
        "demo-web-1   web       running             0.0.0.0:8080->80/tcp",
    ]
    stack.host.kill_container("demo-web-1", "SIGKILL")
    assert len(stack("ps")[1].splitlines()) == 2
    code, out, _ = stack("ps", "-a", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["name"] for r in rows] == ["demo-db-1", "demo-web-1"]
    for key in ("name", "service", "state", "health", "pid", "exit_code", "restarts", "started_at", "ports"):
        assert key in rows[1]
    assert (rows[1]["state"], rows[1]["exit_code"], rows[1]["pid"]) == ("exited", 137, None)
    assert rows[0]["health"] == "healthy" and isinstance(rows[0]["pid"], int)


def test_logs_with_prefixes_tail_and_services(stack: Cli) -> None:
    stack("up", "-d")
    lines = [("demo-db-1", "ready"), ("demo-web-1", "GET /"), ("demo-web-1", "GET /x")]
    for i, (name, text) in enumerate(lines):
        stack.host.write_log(name, text, when=datetime(2024, 1, 1, 0, 0, i, tzinfo=UTC))
    assert stack("logs")[1].splitlines() == [
        "demo-db-1  | ready", "demo-web-1  | GET /", "demo-web-1  | GET /x"]
    assert stack("logs", "--tail", "1", "web")[1] == "demo-web-1  | GET /x\n"
    assert stack("logs", "-t", "db")[1] == "demo-db-1  | 2024-01-01T00:00:00.000000Z ready\n"
    code, _, err = stack("logs", "--tail", "x")
    assert code == 2 and "--tail" in err


def test_up_attached_follows_logs_until_the_containers_stop(stack: Cli) -> None:
    (stack.dir / "stack.yaml").write_text("name: demo\nservices:\n  job:\n    image: job:1\n")

    def on_start(method: str, target: str) -> None:
        if method == "start_container":
            stack.host.write_log(target, "hello from the job")

    stack.host.hook = on_start
    stack.host.exits_on_start("job", 0)
    code, out, _ = stack("up")
    assert code == 0 and out == "demo-job-1  | hello from the job\n"


def test_exec_passes_output_and_exit_code(stack: Cli) -> None:
    stack("up", "-d")
    stack.host.script_exec("demo-web-1", ExecResult(4, b"some out\n", b"some err\n"))
    code, out, err = stack("exec", "-T", "-e", "A=1", "web", "cat", "/etc/hosts")
    assert (code, out, err) == (4, "some out\n", "some err\n")
    assert stack.host.execs[-1] == ("demo-web-1", ("cat", "/etc/hosts"))
    code, _, err = stack("exec", "nope", "ls")
    assert code == 2 and "no such service: nope" in err
    code, _, err = stack("exec", "web")
    assert code == 2 and "needs a command" in err


def test_stop_start_restart_kill(stack: Cli) -> None:
    stack("up", "-d")
    code, _, err = stack("stop", "-t", "3")
    assert code == 0 and err.splitlines()[-1] == "Container demo-db-1  Stopped"
    assert stack.host.stopped_with["demo-web-1"] == (3, None)  # the container's own signal
    code, _, err = stack("start", "db")
    assert code == 0 and "Container demo-db-1  Started" in err
    assert stack.host.containers["demo-web-1"].state == "exited"
    assert stack("restart")[0] == 0
    assert {c.state for c in stack.host.containers.values()} == {"running"}
    code, _, err = stack("kill", "-s", "SIGTERM", "web")
    assert code == 0 and "Container demo-web-1  Killed" in err
    assert stack.host.containers["demo-web-1"].exit_code == 143
    code, _, err = stack("start", "nope")
    assert code == 2


def test_port_and_stats(stack: Cli) -> None:
    stack("up", "-d")
    assert stack("port", "web", "80") == (0, "0.0.0.0:8080\n", "")
    code, _, err = stack("port", "web", "80/udp")
    assert code == 1 and "port 80/udp is not published" in err
    later = CgroupUsage(cpu_ns=10**8, memory_bytes=3 << 20, memory_limit=1 << 30, pids=4)
    stack.host.script_usage("demo-db-1", CgroupUsage(cpu_ns=0), later)
    code, out, _ = stack("stats", "--format", "json", "db")
    assert code == 0
    row, group = map(json.loads, out.splitlines())
    assert (row["name"], row["cpu_percent"], row["memory_bytes"], row["pids"]) == (
        "demo-db-1", 10.0, 3 << 20, 4)
    assert (group["name"], group["kind"], group["service"]) == ("default", "group", "")
    assert stack.clock.sleeps == [1.0]  # one second between the samples, on the test's clock
    code, out, _ = stack("stats", "db")
    assert out.splitlines()[0].split() == [
        "NAME", "SERVICE", "CPU", "%", "MEM", "USAGE", "/", "LIMIT", "PIDS"]
    assert out.splitlines()[1].split() == ["demo-db-1", "db", "0.00%", "3.0MiB", "/", "1.0GiB", "4"]
    assert out.splitlines()[2].split()[:2] == ["default", "(group)"]


def test_up_wait_reports_what_is_not_ready(stack: Cli) -> None:
    stack.host.exits_on_start("web", 1)
    code, _, err = stack("up", "--wait")
    assert code == 1
    assert "error: service web: container demo-web-1 is exited, not running" in err


def test_progress_renders_every_status() -> None:
    stream = io.StringIO()
    when = datetime(2024, 1, 1, tzinfo=UTC)
    render = Progress("plain", stream)
    render(Event("service:db", "wait", "waiting", "service_healthy", when, "demo-db-1"))
    render(Event("service:db", "wait", "done", "healthy", when, "demo-db-1"))
    render(Event("image:web", "build", "working", "", when, "web:1"))
    render(Event("image:web", "build", "done", "", when, "web:1"))
    Progress("quiet", stream)(Event("image:web", "build", "done", "", when, "web:1"))
    assert stream.getvalue().splitlines() == ["Container demo-db-1  Waiting", "Container demo-db-1  Healthy",
                                              "Image web:1  Building", "Image web:1  Built"]


def test_up_refused_before_anything_is_made_says_why_for_each_service(stack: Cli) -> None:
    stack.host.images.pop("db:1")
    stack.host.occupy(8080, address="127.0.0.1")
    code, out, err = stack("up", "-d")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "error: service db: image db:1 is not in stackd's store and the service has no build section; import "
        "it with `stack image import` or add `build:`",
        "error: service web: host port 8080 is already in use (a process listens on 127.0.0.1:8080); stop "
        "what holds it, or publish the service on another host port",
    ]
    assert stack.host.containers == {} and stack.host.networks == {}
    stack.host.problems = ["nftables is not usable: the nft command is not installed; install nftables"]
    code, _, err = stack("up", "-d")
    assert (code, err) == (1, "error: nftables is not usable: the nft command is not installed; install "
                              "nftables\n")


def test_ps_shows_restarting_and_the_health_in_json(stack: Cli) -> None:
    stack("up", "-d")
    stack.host.set_state("demo-web-1", "exited", 1)
    stack.host.set_restarting("demo-web-1")
    code, out, _ = stack("ps")
    assert code == 0 and out.splitlines()[2].split() == ["demo-web-1", "web", "restarting",
                                                          "0.0.0.0:8080->80/tcp"]
    rows = [json.loads(line) for line in stack("ps", "--format", "json")[1].splitlines()]
    assert [(r["name"], r["state"], r["health"], r["exit_code"]) for r in rows] == [
        ("demo-db-1", "running", "none", None), ("demo-web-1", "restarting", "none", 1)]


def test_an_error_in_a_task_that_ran_beside_others_is_a_message_not_a_traceback(stack: Cli) -> None:
    stack("up", "-d")

    def then_fail(method: str, target: str) -> None:
        if method == "list_containers":
            stack.host.hook = None
            stack.host.fail("list_containers", "demo", times=None)

    stack.host.hook = then_fail
    code, _, err = stack("logs", "-f")
    assert code == 1
    # one line per followed container
    assert err.splitlines() == ["error: injected failure: list_containers demo"] * 2
