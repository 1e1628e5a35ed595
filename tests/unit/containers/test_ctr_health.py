"""The last healthcheck result kept beside a container and what a record makes of it; a restart
scheduled by the store; secrets whose value comes from an environment variable."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from stackd.drivers.containers.create import file_content
from stackd.drivers.containers.health import current, read_health, write_health
from stackd.drivers.containers.info import ContainerInfo
from stackd.drivers.containers.listing import record
from stackd.drivers.host import HealthRecord
from stackd.errors import PermanentDriverError
from stackd.spec.models import Secret
from stackd.store import StoredContainer
from stackd.store.base import utc_now

STARTED = "2026-01-01T00:00:00.123456789Z"
HEALTHY = HealthRecord("healthy", 0, "accepting connections", "2026-01-01T00:00:05+00:00", STARTED)
INFO = ContainerInfo(name="demo-db-1", project="demo", service="db", number=1, image="db", image_id="x",
                     cgroups_path="/stackd/demo/default/demo-db-1", hostname="demo-db-1")
RUNNING = {"status": "running", "pid": 7, "created": STARTED}


def test_the_record_survives_its_file(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    write_health(path, HEALTHY)
    assert read_health(path) == HEALTHY
    assert read_health(tmp_path / "missing.json") is None
    path.write_text('{"status": "bogus", "failing_streak": 0, "output": "", "checked_at": ""}')
    assert read_health(path) is None
    path.write_text("not json")
    assert read_health(path) is None
    with pytest.raises(PermanentDriverError, match="no such container: gone"):
        write_health(tmp_path / "gone" / "health.json", HEALTHY)


def test_a_result_counts_only_for_the_run_it_belongs_to() -> None:
    assert current(HEALTHY, STARTED, running=True) == HEALTHY
    assert current(HEALTHY, "2026-01-02T00:00:00Z", running=True) is None  # started again since
    assert current(HEALTHY, STARTED, running=False) is None
    assert current(None, STARTED, running=True) is None


def test_records_carry_health_and_a_scheduled_restart() -> None:
    running = record(INFO, {}, runtime=RUNNING, exit_code=None, finished=None, stored=None, health=HEALTHY)
    assert (running.health, running.last_health) == ("healthy", HEALTHY)
    earlier = record(INFO, {}, runtime={**RUNNING, "created": "2025-12-31T00:00:00Z"}, exit_code=None,
                     finished=None, stored=None, health=HEALTHY)
    assert (earlier.health, earlier.last_health) == ("none", None)
    now = utc_now()
    waiting = StoredContainer("demo-db-1", "demo", "db", 1, "h", now, restarts=2,
                              backoff_until=now + timedelta(seconds=10))
    exited = record(INFO, {}, runtime=None, exit_code=1, finished=0.0, stored=waiting, health=HEALTHY,
                    now=now)
    assert (exited.state, exited.restarting, exited.health, exited.restarts) == ("exited", True, "none", 2)
    later = record(INFO, {}, runtime=None, exit_code=1, finished=0.0, stored=waiting,
                   now=now + timedelta(seconds=11))
    assert not later.restarting
    alive = record(INFO, {}, runtime=RUNNING, exit_code=None, finished=None, stored=waiting, now=now)
    assert not alive.restarting


def test_secrets_from_the_environment_use_the_value_the_stack_was_loaded_with(
        monkeypatch: pytest.MonkeyPatch) -> None:
    digest = hashlib.sha256(b"loaded").hexdigest()
    secret = Secret(environment="STKT_PW", digest=digest)
    monkeypatch.setenv("STKT_PW", "loaded")
    assert file_content("secret", "pw", secret, "db") == b"loaded"
    monkeypatch.setenv("STKT_PW", "changed since")
    with pytest.raises(PermanentDriverError, match="service db: secret pw comes from the environment "
                                                   "variable STKT_PW, whose value here is not the one"):
        file_content("secret", "pw", secret, "db")
    # once the loader carries the value on the model, it is used whatever this process holds
    carried = secret.model_copy(update={"value": "loaded"})
    assert file_content("secret", "pw", carried, "db") == b"loaded"


def test_the_images_healthcheck_is_kept_with_the_container(tmp_path: Path) -> None:
    from dataclasses import replace

    from stackd.drivers.containers.info import read_info, write_info
    from stackd.drivers.images.config import Healthcheck

    check = Healthcheck(test=("CMD", "probe"), interval=5_000_000_000, retries=2)
    write_info(tmp_path / "container.json", replace(INFO, healthcheck=check))
    kept = read_info(tmp_path / "container.json")
    assert kept is not None and kept.healthcheck == check
    listed = record(kept, {}, runtime=RUNNING, exit_code=None, finished=None, stored=None)
    assert listed.image_healthcheck == check
    (tmp_path / "old.json").write_text(INFO.to_json().decode().replace('"healthcheck": null,', ""))
    old = read_info(tmp_path / "old.json")  # written before the field existed
    assert old is not None and old.healthcheck is None
