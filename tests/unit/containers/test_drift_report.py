"""How drift repairs are reported: the fake host hands out scheduled repairs once, per stack, and
records the call; a failed repair pass raises one ``RepairError`` naming every failed resource,
classified like its failures, and carrying the repairs made besides."""

from __future__ import annotations

import pytest

from stackd.drivers.containers.drift import RepairPass
from stackd.drivers.fakehost import FakeHost
from stackd.drivers.host import PermanentRepairError, Repair, RepairError, TransientRepairError
from stackd.errors import PermanentDriverError, TransientDriverError
from stackd.spec.models import Stack


def test_the_fake_reports_scheduled_repairs_once() -> None:
    host = FakeHost()
    demo, other = Stack(name="demo"), Stack(name="other")
    assert host.repair_drift(demo) == []
    host.drift("network:demo_default", "recreated bridge stk-ab12cd", "bridge missing", project="demo")
    host.drift("nft:any", "applied table again", "table missing")
    assert host.repair_drift(other, deep=True) == [Repair("nft:any", "applied table again", "table missing")]
    assert host.repair_drift(demo) == [
        Repair("network:demo_default", "recreated bridge stk-ab12cd", "bridge missing")]
    assert host.repair_drift(demo) == []
    assert host.calls_of("repair_drift") == ["demo", "other", "demo", "demo"]


def test_the_fake_fails_on_demand() -> None:
    host = FakeHost()
    host.fail("repair_drift", "demo")
    with pytest.raises(PermanentDriverError):
        host.repair_drift(Stack(name="demo"))


def run_pass(*outcomes: Exception | None) -> RepairPass:
    work = RepairPass()
    for i, outcome in enumerate(outcomes):
        with work.attempt(f"container:c{i}", "reattached", "veth missing"):
            if outcome is not None:
                raise outcome
    return work


def test_a_clean_pass_returns_its_repairs() -> None:
    assert run_pass(None, None).finish("demo") == [Repair("container:c0", "reattached", "veth missing"),
                                                   Repair("container:c1", "reattached", "veth missing")]


def test_failures_are_raised_together_with_the_repairs_made() -> None:
    work = run_pass(None, TransientDriverError("busy"), PermanentDriverError("no such bridge"), None)
    with pytest.raises(RepairError) as caught:
        work.finish("demo")
    err = caught.value
    assert isinstance(err, PermanentRepairError) and isinstance(err, PermanentDriverError)
    assert [r.resource for r in err.repairs] == ["container:c0", "container:c3"]
    assert "2 repair(s) failed" in str(err)
    assert "container:c1: could not repair (veth missing): busy" in str(err)
    assert "container:c2: could not repair (veth missing): no such bridge" in str(err)


def test_only_transient_failures_make_a_transient_error() -> None:
    with pytest.raises(TransientRepairError) as caught:
        run_pass(TransientDriverError("busy")).finish("demo")
    assert isinstance(caught.value, TransientDriverError) and caught.value.repairs == ()


def test_a_check_that_cannot_run_is_a_failure() -> None:
    work = RepairPass()
    work.fail("group:background", "cannot read its limits")
    with pytest.raises(PermanentRepairError, match="group:background: cannot read its limits"):
        work.finish("demo")
