"""Container records and the restart bookkeeping kept as data."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from stackd.store import Store, StoredContainer
from tests.unit.store.support import T0


def _web(n: int = 1, **changes: object) -> StoredContainer:
    base = StoredContainer(name=f"demo-web-{n}", project="demo", service="web", number=n,
                           config_hash="abc", created_at=T0,
                           config_parts={"image": "i1", "environment": "e1"}, image_id="sha256:1",
                           group="foreground")
    return replace(base, **changes)  # type: ignore[arg-type]


def test_put_and_read_back_every_field(store: Store) -> None:
    full = _web(restarts=3, last_exit_code=137, stopped_by_user=True,
                backoff_until=T0 + timedelta(seconds=40))
    store.put_container(full)
    assert store.container("demo-web-1") == full
    bare = StoredContainer("other-db-1", "other", "db", 1, "h", T0)
    store.put_container(bare)
    got = store.container("other-db-1")
    assert got == bare and got.config_parts == {} and got.group is None and got.image_id is None
    assert store.container("missing") is None


def test_put_replaces_a_record_of_the_same_name(store: Store) -> None:
    store.put_container(_web(restarts=4, config_hash="old"))
    store.put_container(_web(config_hash="new"))
    got = store.container("demo-web-1")
    assert got is not None and got.config_hash == "new" and got.restarts == 0
    assert len(store.containers()) == 1


def test_list_filters_by_project_and_orders_by_service_and_number(store: Store) -> None:
    store.put_container(_web(10))
    store.put_container(_web(2))
    store.put_container(StoredContainer("demo-api-1", "demo", "api", 1, "h", T0))
    store.put_container(StoredContainer("zz-web-1", "zz", "web", 1, "h", T0))
    assert [c.name for c in store.containers("demo")] == ["demo-api-1", "demo-web-2", "demo-web-10"]
    assert [c.name for c in store.containers()][-1] == "zz-web-1"
    assert store.containers("none") == []


def test_remove_says_whether_there_was_a_record(store: Store) -> None:
    store.put_container(_web())
    assert store.remove_container("demo-web-1") is True
    assert store.remove_container("demo-web-1") is False
    assert store.container("demo-web-1") is None


def test_exit_restart_and_reset(store: Store) -> None:
    store.put_container(_web())
    after_exit = store.record_exit("demo-web-1", 2)
    assert after_exit is not None and after_exit.last_exit_code == 2 and after_exit.restarts == 0
    until = T0 + timedelta(seconds=10)
    store.record_restart("demo-web-1", backoff_until=until)
    twice = store.record_restart("demo-web-1", backoff_until=until + timedelta(seconds=10))
    assert twice is not None and twice.restarts == 2 and twice.backoff_until == until + timedelta(seconds=10)
    assert twice.last_exit_code == 2
    cleared = store.reset_restarts("demo-web-1")
    assert cleared is not None and cleared.restarts == 0 and cleared.backoff_until is None
    assert cleared.last_exit_code == 2  # the last exit stays known


def test_stopped_by_user_toggles(store: Store) -> None:
    store.put_container(_web())
    stopped = store.set_stopped_by_user("demo-web-1", True)
    assert stopped is not None and stopped.stopped_by_user
    started = store.set_stopped_by_user("demo-web-1", False)
    assert started is not None and not started.stopped_by_user


def test_updates_of_a_missing_container_return_none_and_create_nothing(store: Store) -> None:
    assert store.record_exit("ghost", 1) is None
    assert store.record_restart("ghost", backoff_until=None) is None
    assert store.reset_restarts("ghost") is None
    assert store.set_stopped_by_user("ghost", True) is None
    assert store.containers() == []


def test_restart_state_is_set_as_the_reconciler_decided(store: Store) -> None:
    store.put_container(_web())
    due = T0 + timedelta(seconds=3)
    set_ = store.set_restart_state("demo-web-1", restarts=4, backoff_until=due)
    assert set_ is not None and (set_.restarts, set_.backoff_until) == (4, due)
    cleared = store.set_restart_state("demo-web-1", restarts=5, backoff_until=None)
    assert cleared is not None and (cleared.restarts, cleared.backoff_until) == (5, None)
    with pytest.raises(ValueError, match="negative"):
        store.set_restart_state("demo-web-1", restarts=-1, backoff_until=None)
    assert store.set_restart_state("ghost", restarts=1, backoff_until=None) is None
