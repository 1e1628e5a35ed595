"""Resource records (groups, networks, volumes) and events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stackd.store import Store, StoredResource
from tests.unit.store.support import T0


def test_resources_by_project_and_kind(store: Store) -> None:
    net = StoredResource("network", "demo", "default", "demo_default", "n1")
    vol = StoredResource("volume", "demo", "dbdata", "demo_dbdata")
    grp = StoredResource("group", "demo", "foreground", "foreground", "g1")
    for r in (vol, net, grp, StoredResource("network", "other", "default", "other_default")):
        store.put_resource(r)
    assert store.resources("demo") == [grp, net, vol]
    assert store.resources("demo", "network") == [net]
    assert store.resource("volume", "demo", "dbdata") == vol
    assert store.resource("volume", "demo", "nope") is None
    changed = StoredResource("network", "demo", "default", "demo_default", "n2")
    store.put_resource(changed)
    assert store.resources("demo", "network") == [changed]
    assert store.remove_resource("network", "demo", "default") is True
    assert store.remove_resource("network", "demo", "default") is False
    assert store.resources("other") == [StoredResource("network", "other", "default", "other_default")]


def test_an_unknown_resource_kind_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="kind"):
        store.put_resource(StoredResource("pod", "demo", "k", "n"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        store.resources("demo", "pod")  # type: ignore[arg-type]


def test_events_since_is_a_cursor_in_order(store: Store) -> None:
    e1 = store.add_event("demo", "service:web:1", "created", "container made", {"hash": "abc"})
    e2 = store.add_event("other", "network:other_default", "created", "bridge up")
    e3 = store.add_event("demo", "service:web:1", "died", "exit 137",
                         {"exit_code": 137, "oom": True, "ratio": 0.5, "signal": None})
    assert [e.id for e in store.events_since(0)] == [e1.id, e2.id, e3.id]
    assert store.events_since(e1.id) == [e2, e3]
    assert store.events_since(0, project="demo") == [e1, e3]
    assert store.events_since(0, limit=2) == [e1, e2]
    assert store.events_since(e3.id) == []
    assert e3.data == {"exit_code": 137, "oom": True, "ratio": 0.5, "signal": None}
    assert (e1.ts, e2.ts) == (T0, T0 + timedelta(seconds=1))
    assert store.last_event_id() == e3.id
    with pytest.raises(ValueError):
        store.events_since(0, limit=0)


def test_event_ids_are_never_reused_after_pruning(store: Store) -> None:
    assert store.last_event_id() == 0
    ids = [store.add_event("demo", "stack", "k", str(i)).id for i in range(5)]
    assert store.prune_events(keep=2) == 3
    assert [e.id for e in store.events_since(0)] == ids[3:]
    assert store.prune_events(keep=0) == 2
    assert store.events_since(0) == [] and store.last_event_id() == ids[-1]
    assert store.add_event("demo", "stack", "k", "after").id == ids[-1] + 1


def test_event_data_must_be_flat_json(store: Store) -> None:
    with pytest.raises(ValueError, match="scalar"):
        store.add_event("demo", "stack", "k", "m", {"nested": {"a": 1}})  # type: ignore[dict-item]
    assert store.events_since(0) == []


def test_event_time_can_be_given(store: Store) -> None:
    when = T0 - timedelta(days=1)
    assert store.add_event("demo", "stack", "k", "m", ts=when).ts == when
