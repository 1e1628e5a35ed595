"""The FakeHost refuses what the real host would refuse, so wrong plans fail loudly."""

from __future__ import annotations

import pytest

from stackd.drivers.fakehost import FakeHost
from stackd.drivers.host import ExecResult
from stackd.errors import PermanentDriverError, TransientDriverError
from tests.unit.execute.support import fake_for, make_stack, up

STACK = make_stack({"db": {"volumes": [{"type": "volume", "source": "data", "target": "/d"}]}},
                   volumes={"data": {}})


def _create(host: FakeHost, name: str = "demo-db-1", image: str = "db:1") -> None:
    host.create_container(STACK, "db", 1, name, image=image, config_hash="h", config_parts={})


def test_a_container_needs_its_image_network_volume_and_group_first() -> None:
    host = fake_for(STACK)
    with pytest.raises(PermanentDriverError, match="image nope:1 not found"):
        _create(host, image="nope:1")
    with pytest.raises(PermanentDriverError, match="network demo_default does not exist"):
        _create(host)
    host.ensure_network(STACK, "default", "demo_default", "h")
    with pytest.raises(PermanentDriverError, match="volume demo_data does not exist"):
        _create(host)
    host.ensure_volume(STACK, "data", "demo_data")
    with pytest.raises(PermanentDriverError, match="group default does not exist"):
        _create(host)
    host.ensure_group(STACK, "default", "g")
    _create(host)
    with pytest.raises(PermanentDriverError, match="already exists"):
        _create(host)


def test_states_are_enforced() -> None:
    host = fake_for(STACK)
    up(STACK, host)
    with pytest.raises(PermanentDriverError, match="already running"):
        host.start_container("demo-db-1")
    with pytest.raises(PermanentDriverError, match="stop it first"):
        host.remove_container("demo-db-1", volumes=False)
    with pytest.raises(PermanentDriverError, match="still used by demo-db-1"):
        host.remove_network("demo", "demo_default")
    with pytest.raises(PermanentDriverError, match="still holds containers"):
        host.remove_group("demo", "default")
    host.stop_container("demo-db-1", timeout=1, signal="SIGTERM")
    with pytest.raises(PermanentDriverError, match="not running"):
        host.stop_container("demo-db-1", timeout=1, signal="SIGTERM")
    with pytest.raises(PermanentDriverError, match="not running"):
        host.exec_in("demo-db-1", ["true"])
    host.remove_container("demo-db-1", volumes=False)
    host.remove_container("demo-db-1", volumes=False)  # absent: not an error
    with pytest.raises(PermanentDriverError, match="no such container"):
        host.start_container("demo-db-1")


def test_failures_are_injected_per_target_and_count() -> None:
    host = fake_for(STACK)
    host.fail("image_id", "db:1", TransientDriverError("busy"), times=2)
    for _ in range(2):
        with pytest.raises(TransientDriverError):
            host.image_id("db:1")
    assert host.image_id("db:1") == "sha256:db"
    assert host.image_id("other") is None
    assert host.calls_of("image_id") == ["db:1", "db:1", "db:1", "other"]


def test_scripted_exec_exits_and_restarts() -> None:
    host = fake_for(STACK)
    up(STACK, host)
    host.script_exec("db", ExecResult(1, b"", b""), ExecResult(0, b"ok", b""))
    assert [host.exec_in("demo-db-1", ["x"]).exit_code for _ in range(3)] == [1, 0, 0]
    host.exits_on_start("demo-db-1", 5, after_lists=2)
    host.stop_container("demo-db-1", timeout=1, signal="SIGTERM")
    host.start_container("demo-db-1")
    assert host.containers["demo-db-1"].restarts == 1
    assert [host.list_containers("demo")[0].state for _ in range(2)] == ["running", "exited"]
    assert host.containers["demo-db-1"].exit_code == 5
