"""The daemon's API end to end over a real unix socket (uvicorn in a thread) and the client of
``stack``, on a FakeHost: up streams progress and a result, ps answers from the reconciler,
errors come back with their exit code, events stream, down forgets the stack, a stack sent as
where it is is loaded by the daemon (its mistakes named by file and line, nothing changed); and
the OpenAPI document in docs/ is the one the app serves."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvicorn

from stackd.cli import client, main
from stackd.cli.client import Daemon, DaemonError, project_path
from stackd.daemon.api import make_app, openapi
from stackd.daemon.manager import Manager
from stackd.drivers.fakehost import FakeHost
from stackd.reconcile import Reconciler, Settings
from stackd.spec.loader import load
from stackd.spec.options import ProjectOptions
from stackd.store import Store

REPO = Path(__file__).resolve().parents[3]
STACK = """\
name: demo
services:
  web: {image: "web:1", restart: always, depends_on: [db]}
  db: {image: "db:1", restart: always}
"""


class Served:
    def __init__(self, tmp_path: Path) -> None:
        self.host = FakeHost(images={"web:1": "i-web", "db:1": "i-db"}, log_dir=tmp_path)
        self.store = Store(tmp_path / "stackd.db")
        self.reconciler = Reconciler(self.host, self.store, settings=Settings(resync=0.05))
        self.app = make_app(Manager(self.host, self.store, self.reconciler))
        self.run_dir = tmp_path / "run"
        self.run_dir.mkdir()
        self.socket = str(self.run_dir / "stackd.sock")
        self.server = uvicorn.Server(uvicorn.Config(self.app, uds=self.socket, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=lambda: anyio.run(self._main), daemon=True)
        self.project_dir = tmp_path / "p"
        self.project_dir.mkdir()
        (tmp_path / "p" / "stack.yaml").write_text(STACK)
        self.stack = load(ProjectOptions(cwd=str(tmp_path / "p"), environ={})).stack
        self.daemon = Daemon(self.socket)

    async def _main(self) -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(self.reconciler.run)
            await self.server.serve()
            tg.cancel_scope.cancel()

    def up(self, **options: object) -> list[dict[str, Any]]:
        body = {"stack": self.stack.model_dump(mode="json"), **options}
        return list(self.daemon.stream("POST", project_path("demo", "up"), body))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path)
    s.thread.start()
    for _ in range(500):
        if s.daemon.alive():
            break
        threading.Event().wait(0.01)
    yield s
    s.server.should_exit = True
    s.thread.join(timeout=10)
    s.store.close()


def test_up_streams_progress_then_the_result_and_ps_shows_the_containers(served: Served) -> None:
    lines = served.up()
    events = [line["event"] for line in lines if "event" in line]
    assert {(e["name"], e["action"], e["status"]) for e in events} >= {
        ("demo-db-1", "start", "done"), ("demo-web-1", "start", "done")}
    assert lines[-1]["result"]["changed"] is True
    assert all(o["status"] == "done" for o in lines[-1]["result"]["outcomes"])
    rows = served.daemon.get(project_path("demo", "containers"))
    assert [(r["name"], r["state"]) for r in rows] == [("demo-db-1", "running"), ("demo-web-1", "running")]
    assert served.daemon.get("/v1/info")["projects"][0]["project"] == "demo"
    again = served.up()
    assert again[-1]["result"]["changed"] is False


def test_a_refused_up_comes_back_as_an_error_with_its_exit_code_and_records_nothing(served: Served) -> None:
    served.host.images.pop("db:1")
    lines = served.up(no_build=True)
    assert "error" in lines[-1]
    assert "service db: image db:1 is not in stackd's store" in lines[-1]["error"]["message"]
    assert lines[-1]["error"]["exit_code"] == 1
    assert served.store.latest_stack("demo") is None


def test_stop_is_kept_and_down_forgets_the_stack(served: Served) -> None:
    served.up()
    stop = list(served.daemon.stream("POST", project_path("demo", "stop"), {"services": ["web"]}))
    assert "result" in stop[-1]
    threading.Event().wait(0.3)  # passes go by: web stays stopped
    rows = served.daemon.get(project_path("demo", "containers"), {"all": "true"})
    assert {r["name"]: r["state"] for r in rows} == {"demo-db-1": "running", "demo-web-1": "exited"}
    down = list(served.daemon.stream("POST", project_path("demo", "down"), {}))
    assert "result" in down[-1]
    assert served.host.containers == {} and served.store.latest_stack("demo") is None
    kinds = [e["kind"] for e in served.daemon.stream("GET", "/v1/events", query={"project": "demo"})]
    assert kinds[0] == "applied"
    assert kinds.index("stopped") < kinds.index("forgotten") < kinds.index("removed")


def test_bad_requests_are_refused_with_a_clear_status(served: Served) -> None:
    with pytest.raises(DaemonError, match="422"):
        served.daemon.get(project_path("demo", "containers"), {"all": "maybe"})
    with pytest.raises(DaemonError, match="422"):
        list(served.daemon.stream("POST", project_path("demo", "explode"), {}))


def test_the_openapi_document_in_docs_is_the_one_served(served: Served) -> None:
    kept = REPO / "docs" / "api" / "openapi.json"
    assert kept.read_text() == openapi(served.app), (
        "docs/api/openapi.json is out of date: run `stackd --openapi > docs/api/openapi.json`")


def _cli(served: Served, *argv: str) -> tuple[int, str]:
    err = io.StringIO()
    code = main.run(list(argv), environ={client.RUN_ENV: str(served.run_dir)}, cwd=str(served.project_dir),
                    out=io.StringIO(), err=err)
    return code, err.getvalue()


def test_stack_up_d_sends_where_the_stack_is_and_the_daemon_loads_it(served: Served,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import stackd.spec.loader

    def not_here(*_: object) -> None:
        raise AssertionError("the client loaded the stack although the daemon runs")

    monkeypatch.setattr(stackd.spec.loader, "load", not_here)  # the daemon's load is api.load
    code, err = _cli(served, "up", "-d", "--progress", "plain")
    assert code == 0, err
    assert {n: c.state for n, c in served.host.containers.items()} == {
        "demo-db-1": "running", "demo-web-1": "running"}
    info = served.daemon.get("/v1/info")["projects"][0]
    assert info["files"] == [str(served.project_dir / "stack.yaml")]
    assert _cli(served, "up", "-d") == (0, "nothing to do: demo is up to date\n")
    code, err = _cli(served, "down")
    assert code == 0, err
    assert served.host.containers == {} and served.store.latest_stack("demo") is None


def test_a_mistake_loaded_by_the_daemon_is_named_by_file_line_and_key_and_changes_nothing(
        served: Served) -> None:
    (served.project_dir / "stack.yaml").write_text(
        "name: demo\nservices:\n  web:\n    image: web:1\n    ports: [\"99999:80\"]\n")
    code, err = _cli(served, "up", "-d", "web")
    assert code == 2
    assert "stack.yaml:5" in err and "ports" in err, err
    assert served.host.containers == {} and served.store.latest_stack("demo") is None
    (served.project_dir / "stack.yaml").write_text(STACK)
    code, err = _cli(served, "up", "-d", "nope")
    assert code == 2 and "no such service: nope (services: web, db)" in err
    assert served.host.containers == {}


def test_with_no_daemon_running_a_mistake_is_found_before_one_is_started(tmp_path: Path) -> None:
    run_dir, data = tmp_path / "run", tmp_path / "data"
    (tmp_path / "stack.yaml").write_text("services:\n  web: {image: 5, restart: sometimes}\n")
    err = io.StringIO()
    code = main.run(["up", "-d"], environ={client.RUN_ENV: str(run_dir), client.DATA_ENV: str(data)},
                    cwd=str(tmp_path), out=io.StringIO(), err=err)
    assert code == 2 and "stack.yaml:2" in err.getvalue() and "restart" in err.getvalue()
    assert not run_dir.exists() and not data.exists()
