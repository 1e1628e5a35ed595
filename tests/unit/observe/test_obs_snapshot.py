"""observe(): host records become the planner's Observed, using read-only calls only."""

from __future__ import annotations

from stackd.drivers.host import ContainerRecord, ResourceRecord
from stackd.observe import observe
from stackd.observe.snapshot import container, group
from stackd.plan import ObservedContainer, ObservedGroup, plan
from tests.unit.execute.support import fake_for, make_stack, up

STACK = make_stack({
    "db": {"volumes": [{"type": "volume", "source": "data", "target": "/d"}], "cgroup_parent": "bg"},
    "web": {"depends_on": {"db": {}}},
}, volumes={"data": {}}, **{"x-stackd": {"groups": {"bg": {"cpu_weight": 10}}}})


def test_observe_reads_back_what_up_made_and_plans_nothing_more() -> None:
    host = fake_for(STACK)
    up(STACK, host)
    other = make_stack({"x": {}}).model_copy(update={"name": "other"})
    up(other, host)
    host.calls.clear()
    seen = observe("demo", host, images=["db:1", "web:1", "gone:1"])
    assert {m for m, _ in host.calls} <= {"list_containers", "list_networks", "list_volumes", "list_groups",
                                          "image_id"}
    assert [c.name for c in seen.containers] == ["demo-db-1", "demo-web-1"]
    db = seen.containers[0]
    assert (db.service, db.number, db.state, db.group, db.image_id) == ("db", 1, "running", "bg", "sha256:db")
    assert db.config_hash == host.containers["demo-db-1"].config_hash and db.config_parts
    assert [n.name for n in seen.networks] == ["demo_default"]
    assert [v.name for v in seen.volumes] == ["demo_data"]
    assert sorted(g.name for g in seen.groups) == ["bg", "default"]
    assert seen.images == {"db:1": "sha256:db", "web:1": "sha256:web"}
    assert plan(STACK, seen).empty


def test_records_convert_field_by_field() -> None:
    record = ContainerRecord(name="demo-w-2", project="demo", service="w", number=2, config_hash="h",
                             config_parts={"image": "p"}, state="exited", exit_code=3, image_id="i",
                             group="g", health="unhealthy", restarts=4, pid=None)
    assert container(record) == ObservedContainer(name="demo-w-2", service="w", number=2, config_hash="h",
                                                  state="exited", exit_code=3, image_id="i", group="g",
                                                  config_parts={"image": "p"})
    assert group(ResourceRecord(key="bg", name="/stackd/demo/bg", config_hash="x")) == ObservedGroup(
        name="bg", config_hash="x")


def test_observe_of_an_empty_host_is_empty() -> None:
    host = fake_for(STACK)
    seen = observe("demo", host, images=["db:1"])
    assert seen.containers == () and seen.networks == () and seen.images == {"db:1": "sha256:db"}
