"""The tracker journals each end of a run once: a running container seen exited, and a crash
loop's runs that began and ended between two looks (a new exit time), but not an old exit."""

from __future__ import annotations

from stackd.drivers.host import ContainerRecord, ContainerState
from stackd.reconcile.journal import Tracker


def _rec(state: ContainerState, finished: str | None = None, code: int | None = None,
         started: str | None = "t0") -> ContainerRecord:
    return ContainerRecord(name="demo-web-1", project="demo", service="web", number=1,
                           config_hash="h", state=state, exit_code=code, finished_at=finished,
                           started_at=started)


def _kinds(tracker: Tracker, record: ContainerRecord) -> list[tuple[str, str]]:
    return [(kind, message) for _, kind, message in tracker.look([record])]


def test_each_end_of_a_run_is_said_once() -> None:
    t = Tracker()
    assert _kinds(t, _rec("exited", "t1", 1)) == []  # an exit from before the first look
    assert _kinds(t, _rec("exited", "t1", 1)) == []  # the same exit again
    assert _kinds(t, _rec("exited", "t2", 1)) == [("died", "exited with code 1")]  # ran and ended meanwhile
    assert _kinds(t, _rec("running", started="t3")) == []
    assert _kinds(t, _rec("exited", "t4", 137)) == [("died", "exited with code 137")]
    assert _kinds(t, _rec("running", started="t5")) == []
    restarted = _kinds(t, _rec("running", started="t6"))
    assert restarted == [("died", "ended and was started again between two looks")]
