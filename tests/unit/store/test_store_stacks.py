"""Applied stacks: revisions that only increase, history, pruning, forgetting, times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from stackd.store import Store
from tests.unit.store.support import T0


def test_revisions_increase_per_project_and_latest_is_the_newest(store: Store) -> None:
    a1 = store.add_stack_revision("a", files=["stack.yaml"], envs=["prod"], stack_json='{"v":1}')
    b1 = store.add_stack_revision("b", files=["x.yaml", "y.yaml"], stack_json='{"v":"b"}')
    a2 = store.add_stack_revision("a", files=["stack.yaml"], stack_json='{"v":2}')
    assert (a1.revision, b1.revision, a2.revision) == (1, 1, 2)
    latest = store.latest_stack("a")
    assert latest == a2
    assert store.stack_revision("a", 1) == a1
    assert store.stack_revision("a", 3) is None
    assert store.latest_stack("nope") is None
    assert b1.files == ("x.yaml", "y.yaml") and a1.envs == ("prod",) and a2.envs == ()
    assert [r.revision for r in store.stack_revisions("a")] == [1, 2]
    assert store.stack_projects() == ["a", "b"]


def test_applied_at_comes_from_the_clock_and_reads_back_equal(store: Store) -> None:
    first = store.add_stack_revision("a", files=[], stack_json="{}")
    second = store.add_stack_revision("a", files=[], stack_json="{}")
    assert first.applied_at == T0 and second.applied_at == T0 + timedelta(seconds=1)
    assert store.stack_revision("a", 1) == first


def test_times_in_other_zones_are_kept_as_the_same_instant(store: Store) -> None:
    plus2 = datetime(2025, 6, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    rev = store.add_stack_revision("a", files=[], stack_json="{}", applied_at=plus2)
    stored = store.latest_stack("a")
    assert stored is not None and stored.applied_at == plus2 == rev.applied_at
    assert stored.applied_at.utcoffset() == timedelta(0)


def test_naive_times_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.add_stack_revision("a", files=[], stack_json="{}", applied_at=datetime(2025, 1, 1))
    assert store.latest_stack("a") is None


def test_a_single_string_as_files_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="one string"):
        store.add_stack_revision("a", files="stack.yaml", stack_json="{}")


def test_prune_keeps_the_newest(store: Store) -> None:
    for _ in range(5):
        store.add_stack_revision("a", files=[], stack_json="{}")
    store.add_stack_revision("b", files=[], stack_json="{}")
    assert store.prune_stack_revisions("a", keep=2) == 3
    assert [r.revision for r in store.stack_revisions("a")] == [4, 5]
    assert [r.revision for r in store.stack_revisions("b")] == [1]
    with pytest.raises(ValueError):
        store.prune_stack_revisions("a", keep=0)


def test_forget_drops_revisions_but_numbering_continues(store: Store) -> None:
    store.add_stack_revision("a", files=[], stack_json="{}")
    store.add_stack_revision("a", files=[], stack_json="{}")
    assert store.forget_stack("a") == 2
    assert store.latest_stack("a") is None and store.stack_projects() == []
    assert store.add_stack_revision("a", files=[], stack_json="{}").revision == 3


def test_a_revision_keeps_the_options_that_shape_it(store: Store) -> None:
    r = store.add_stack_revision("opt", files=["stack.yaml"], stack_json="{}",
                                 options_json='{"scale":{"w":2}}')
    assert store.latest_stack("opt") == r
    assert r.options_json == '{"scale":{"w":2}}'
    assert store.add_stack_revision("opt", files=["stack.yaml"], stack_json="{}").options_json == "{}"


def test_latest_revision_is_the_number_alone(store: Store) -> None:
    assert store.latest_revision("none") is None
    store.add_stack_revision("num", files=["stack.yaml"], stack_json="{}")
    second = store.add_stack_revision("num", files=["stack.yaml"], stack_json="{}")
    assert store.latest_revision("num") == second.revision == 2
