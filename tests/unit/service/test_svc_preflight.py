"""What ``up`` refuses before it touches the host (missing images, taken ports, a host without a
needed feature), ``ps`` with real health and restarting containers, and the root check."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackd.daemon import service as service_module
from stackd.daemon.service import PsOptions, StackService, StartOptions, UpOptions, default_host
from stackd.drivers.fakehost import FakeHost
from stackd.drivers.host import ExecResult
from stackd.errors import PermanentDriverError, PlanError, StackdError
from stackd.execute import ManualClock
from stackd.spec.options import ProjectOptions
from tests.unit.service.test_svc_verbs import QUESTIONS, Env

BARE = """\
name: demo
services:
  web: {image: "web:1", ports: ["8080:80"]}
  api: {image: "api:1", ports: ["9000-9001:80"]}
  worker: {image: "worker:2"}
  built: {image: "built:1", build: {context: .}}
"""


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def changes(host: FakeHost) -> list[str]:
    return [m for m, _ in host.calls if not m.startswith("list_") and m not in QUESTIONS]


def test_every_missing_image_is_named_before_anything_is_made(env: Env) -> None:
    (env.dir / "stack.yaml").write_text(BARE.replace("name: demo", "name: demo\n"))
    env.host.images = {"web:1": "i-web"}
    with pytest.raises(PlanError) as caught:
        env.up()
    lines = str(caught.value).splitlines()
    assert lines == [
        "service api: image api:1 is not in stackd's store and the service has no build section; import it "
        "with `stack image import` or add `build:`",
        "service worker: image worker:2 is not in stackd's store and the service has no build section; "
        "import it with `stack image import` or add `build:`",
    ]
    assert changes(env.host) == []
    with pytest.raises(PlanError, match=r"service built: image built:1 .* --no-build forbids building it"):
        env.up(UpOptions(no_build=True, services=("built",)))
    assert changes(env.host) == []


def test_a_taken_host_port_stops_up_before_anything_is_made(env: Env) -> None:
    env.host.occupy(8080)
    with pytest.raises(PermanentDriverError) as caught:
        env.up()
    assert str(caught.value) == ("service web: host port 8080 is already in use (a process listens on "
                                 "0.0.0.0:8080); stop what holds it, or publish the service on another host "
                                 "port")
    assert changes(env.host) == []


def test_two_stacks_cannot_publish_the_same_port(env: Env, tmp_path_factory: pytest.TempPathFactory) -> None:
    env.up()
    other = tmp_path_factory.mktemp("other")
    (other / "stack.yaml").write_text("name: other\nservices:\n  site: {image: 'web:1', ports: ['8080:80']}")
    with pytest.raises(PermanentDriverError, match=r"service site: host port 8080 is already in use "
                                                   r"\(container demo-web-1 of stack demo publishes 8080\)"):
        env.run(lambda: env.service.up(ProjectOptions(cwd=str(other), environ={})))
    assert "other-site-1" not in env.host.containers


def test_recreating_a_container_keeps_its_own_port_and_scaling_a_fixed_port_does_not(env: Env) -> None:
    env.up()
    assert env.up(MODE="prod").ok  # web is recreated: its old container goes first
    with pytest.raises(PermanentDriverError, match="another new container, demo-web-1,"):
        env.up(UpOptions(scale={"web": 3}, force_recreate=True))
    with pytest.raises(PermanentDriverError, match=r"\(container demo-web-1 publishes 8080\)"):
        env.up(UpOptions(scale={"web": 2}), MODE="prod")


def test_a_host_that_lacks_a_feature_is_refused_up_front(env: Env) -> None:
    env.host.problems = ["the kernel has no overlayfs (...)", "conmon is not installed (...)"]
    with pytest.raises(PermanentDriverError) as caught:
        env.up()
    assert str(caught.value).splitlines() == env.host.problems
    assert [m for m, _ in env.host.calls] == ["host_problems"]
    assert env.up(UpOptions(dry_run=True)).result is None  # a plan needs nothing of the host
    with pytest.raises(PermanentDriverError, match="overlayfs"):
        env.run(lambda: env.service.start(env.project(), StartOptions()))


def test_ps_shows_real_health_and_restarting(env: Env) -> None:
    env.host.script_exec("db", ExecResult(0, b"ok", b""))
    env.up()
    env.host.execs.clear()
    rows = {r.name: r for r in env.run(lambda: env.service.ps(env.project()))}
    assert env.host.execs == []  # what up's wait for db found is not older than the check's interval
    assert rows["demo-db-1"].status == "running (healthy)" and rows["demo-web-1"].status == "running"
    env.host.script_exec("db", ExecResult(1, b"", b"not ready"))
    env.clock.advance(1)
    rows = {r.name: r for r in env.run(lambda: env.service.ps(env.project()))}
    assert env.host.execs == [("demo-db-1", ("ready",))]  # probed once: only db has a healthcheck
    assert rows["demo-db-1"].health == "healthy"  # one failure of 2 retries
    env.clock.advance(1)
    rows = {r.name: r for r in env.run(lambda: env.service.ps(env.project()))}
    assert rows["demo-db-1"].status == "running (unhealthy)"
    env.host.set_state("demo-cache-1", "exited", 1)
    env.host.set_restarting("demo-cache-1")
    rows = {r.name: r for r in env.run(lambda: env.service.ps(env.project(), PsOptions(services=("cache",))))}
    assert rows["demo-cache-1"].status == "restarting" and rows["demo-cache-1"].to_dict()["exit_code"] == 1
    named = ProjectOptions(cwd=str(env.dir / "nowhere"), project_name="demo", environ={})
    (env.dir / "nowhere").mkdir()
    rows = {r.name: r for r in env.run(lambda: env.service.ps(named))}
    assert rows["demo-db-1"].health == "unhealthy"  # without the file: what was recorded


def test_default_host_refuses_a_user_who_is_not_root_before_touching_anything(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stackd.drivers import realhost

    def touched() -> None:
        raise AssertionError("the host was touched")

    monkeypatch.setattr("stackd.drivers.realhost.os.geteuid", lambda: 1000)
    monkeypatch.setattr(realhost.RealHost, "from_env", touched)
    with pytest.raises(StackdError, match=r"^stack up needs root \("):
        default_host("up")
    assert service_module.REALHOST_MODULE == "stackd.drivers.realhost"


def test_a_service_over_a_fake_host_never_asks_for_root(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text("services:\n  a: {image: 'a:1'}\n")
    service = StackService(FakeHost(images={"a:1": "x"}), clock=ManualClock())
    import anyio

    assert anyio.run(lambda: service.up(ProjectOptions(cwd=str(tmp_path), environ={}))).ok
