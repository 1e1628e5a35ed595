"""Planner rules one by one: recreation causes, starts, scaling, options, resources, errors."""

from __future__ import annotations

import json

import pytest

from stackd.errors import PlanError
from stackd.plan import (
    CreateContainer,
    CreateNetwork,
    CreateVolume,
    DownOptions,
    EnsureImage,
    Observed,
    ObservedContainer,
    ObservedGroup,
    ObservedVolume,
    Plan,
    RemoveNetwork,
    RemoveVolume,
    StartContainer,
    StopContainer,
    UpdateGroup,
    UpOptions,
    plan,
    plan_down,
)
from tests.unit.plan.plan_fixtures import PROJECT, Host, edit, sample, stack, up_from_scratch


def _with(host: Host, name: str, **changes: object) -> Observed:
    host.containers[name] = host.containers[name].model_copy(update=changes)
    return host.observed


def _ids(p: Plan) -> list[str]:
    return [op.id for op in p.ops]


def _cause(p: Plan, op_id: str) -> str:
    return p.get(op_id).cause


def test_stopped_containers_are_started_like_compose_up_does() -> None:
    host = up_from_scratch(stack())
    _with(host, "demo-worker-1", state="exited", exit_code=1)
    p = plan(stack(), _with(host, "demo-worker-2", state="created"))
    assert _ids(p) == ["start service:worker:1", "start service:worker:2"]
    assert _cause(p, "start service:worker:1") == "exited (code 1)"
    assert _cause(p, "start service:worker:2") == "created, not started"


def test_reconciler_starts_only_the_exited_containers_its_restart_policy_names() -> None:
    host = up_from_scratch(stack())
    _with(host, "demo-worker-1", state="exited", exit_code=1)
    _with(host, "demo-worker-2", state="exited", exit_code=137)
    observed = _with(host, "demo-db-1", state="created")
    p = plan(stack(), observed, UpOptions(restartable=frozenset({"demo-worker-2"})))
    # worker-1 waits for its backoff; a container never started is started whatever the policy
    assert sorted(_ids(p)) == ["start service:db:1", "start service:worker:2"]
    assert plan(stack(), observed, UpOptions(restartable=frozenset())).get("start service:db:1")
    assert "start service:worker:1" in _ids(plan(stack(), observed))  # `stack up` starts it
    # up watches a start for an exit at once (to say so); the reconciler sees exits by itself
    start = p.get("start service:worker:2")
    assert isinstance(start, StartContainer) and not start.watch_exit
    up_start = plan(stack(), observed).get("start service:worker:1")
    assert isinstance(up_start, StartContainer) and up_start.watch_exit


def test_paused_container_is_left_paused_with_a_warning() -> None:
    host = up_from_scratch(stack())
    p = plan(stack(), _with(host, "demo-db-1", state="paused"))
    assert p.empty
    assert p.warnings == ("container demo-db-1 is paused (left paused)",)


def test_dead_container_is_recreated() -> None:
    host = up_from_scratch(stack())
    p = plan(stack(), _with(host, "demo-worker-2", state="dead"))
    assert _ids(p) == ["remove service:worker:2", "create service:worker:2", "start service:worker:2"]
    assert _cause(p, "create service:worker:2") == "container dead"


def test_unknown_parts_give_a_cause_without_keys() -> None:
    host = up_from_scratch(stack())
    p = plan(stack(), _with(host, "demo-worker-1", config_hash="old", config_parts={}))
    assert _cause(p, "create service:worker:1") == "config hash changed"


def test_replaced_image_recreates_its_containers() -> None:
    host = up_from_scratch(stack())
    host.images["busybox:1"] = "id-of-a-newer-busybox"
    p = plan(stack(), host.observed)
    recreated = sorted(op.resource for op in p.ops if isinstance(op, CreateContainer))
    assert recreated == ["service:sidecar:1", "service:worker:1", "service:worker:2"]
    assert {op.cause for op in p.ops if isinstance(op, CreateContainer)} == {"image changed"}


def test_no_recreate_keeps_changed_containers_but_still_starts_stopped_ones() -> None:
    host = up_from_scratch(stack())
    changed = stack(edit(sample(), "services.worker.environment", {"A": "1"}))
    observed = _with(host, "demo-worker-1", state="exited", exit_code=0)
    p = plan(changed, observed, UpOptions(no_recreate=True))
    assert _ids(p) == ["start service:worker:1"]


def test_force_recreate_applies_to_the_targets_only() -> None:
    host = up_from_scratch(stack())
    p = plan(stack(), host.observed, UpOptions(services=("worker",), force_recreate=True))
    created = [op.resource for op in p.ops if isinstance(op, CreateContainer)]
    assert created == ["service:worker:1", "service:worker:2"]
    assert _cause(p, "create service:worker:1") == "forced (--force-recreate)"
    everything = plan(stack(), host.observed, UpOptions(force_recreate=True))
    assert len([op for op in everything.ops if isinstance(op, CreateContainer)]) == 5


def test_duplicate_replica_numbers_are_removed() -> None:
    host = up_from_scratch(stack())
    twin = host.containers["demo-worker-2"].model_copy(
        update={"name": "demo-worker-2-twin", "state": "exited"})
    observed = host.observed.model_copy(update={"containers": (*host.observed.containers, twin)})
    p = plan(stack(), observed)
    assert _ids(p) == ["remove service:worker:2"]
    assert p.get("remove service:worker:2").name == "demo-worker-2-twin"  # type: ignore[attr-defined]
    assert _cause(p, "remove service:worker:2") == "duplicate replica number 2"


def test_new_numbers_follow_the_highest_existing_one() -> None:
    host = up_from_scratch(stack())
    del host.containers["demo-worker-1"]
    p = plan(stack(), host.observed)
    assert _ids(p) == ["create service:worker:3", "start service:worker:3"]


def test_changed_network_is_recreated_with_the_containers_on_it() -> None:
    host = up_from_scratch(stack())
    changed = stack(edit(sample(), "networks.back", {"internal": True}))
    p = plan(changed, host.observed)
    assert isinstance(p.get("create network:back"), CreateNetwork)
    remove = p.get("remove network:back")
    assert isinstance(remove, RemoveNetwork)
    assert sorted(remove.after) == ["remove service:db:1", "remove service:web:1",
                                    "remove service:worker:1", "remove service:worker:2"]
    assert _cause(p, "create service:db:1") == "network back recreated"
    assert "create network:front" not in _ids(p)
    host.apply(p)  # the fake host checks that the network is free when it is removed
    assert plan(changed, host.observed).empty


def test_changed_network_with_no_recreate_is_only_a_warning() -> None:
    host = up_from_scratch(stack())
    p = plan(stack(edit(sample(), "networks.back", {"internal": True})), host.observed,
             UpOptions(no_recreate=True))
    assert p.empty
    assert p.warnings == ("network demo_back differs from the stack (not recreated: --no-recreate)",)


def test_changed_group_is_updated_in_place() -> None:
    host = up_from_scratch(stack())
    p = plan(stack(edit(sample(), "groups.background", {"cpu_weight": 80})), host.observed)
    assert len(p.ops) == 1
    update = p.ops[0]
    assert isinstance(update, UpdateGroup)
    assert (update.group, update.config) == ("background", {"cpu_weight": 80})


def test_group_no_longer_declared() -> None:
    host = up_from_scratch(stack())
    host.groups["old"] = ObservedGroup(name="old", config_hash="x")
    assert plan(stack(), host.observed).warnings == (
        "group old is no longer declared (use --remove-orphans)",)
    assert _ids(plan(stack(), host.observed, UpOptions(remove_orphans=True))) == ["remove group:old"]


def test_external_resources_are_never_created_or_removed() -> None:
    s = stack(edit(edit(sample(), "services.db.networks", {"back": None, "outside": None}),
                   "services.db.volumes", [{"type": "volume", "source": "shared", "target": "/s"}]))
    p = plan(s, Observed.empty(PROJECT))
    assert "create network:outside" not in _ids(p) and "create volume:shared" not in _ids(p)
    db = p.get("create service:db:1")
    assert isinstance(db, CreateContainer)
    assert db.networks == ("demo_back", "outside")
    observed = Observed(project=PROJECT, volumes=(ObservedVolume(name="shared"),))
    assert not [op for op in plan_down(s, observed, DownOptions(volumes=True)).ops
                if isinstance(op, RemoveVolume)]


def test_targets_without_dependencies() -> None:
    p = plan(stack(), Observed.empty(PROJECT), UpOptions(services=("web",), no_deps=True))
    assert [op.resource for op in p.ops if isinstance(op, CreateContainer)] == ["service:web:1"]
    start = p.get("start service:web:1")
    assert isinstance(start, StartContainer)
    assert [(w.service, w.condition, w.containers) for w in start.wait] == [("db", "service_healthy", ())]


def test_waits_name_the_dependency_containers() -> None:
    p = plan(stack(), Observed.empty(PROJECT), UpOptions(scale={"worker": 3}))
    start = p.get("start service:sidecar:1")
    assert isinstance(start, StartContainer)
    assert [(w.service, w.condition, w.required, w.containers) for w in start.wait] == [
        ("web", "service_started", True, ("demo-web-1",))]
    optional = stack(edit(sample(), "services.worker.depends_on.db", {"required": False,
                                                                      "condition": "service_healthy"}))
    start = plan(optional, Observed.empty(PROJECT)).get("start service:worker:1")
    assert isinstance(start, StartContainer)
    assert start.wait[0].required is False


def test_build_options_choose_the_image_action() -> None:
    host = up_from_scratch(stack())
    built = plan(stack(), host.observed, UpOptions(build=True))
    assert [(op.id, op.action) for op in built.ops if isinstance(op, EnsureImage)] == [
        ("ensure image:web", "build")]
    fresh = plan(stack(), Observed.empty(PROJECT), UpOptions(no_build=True)).get("ensure image:web")
    assert isinstance(fresh, EnsureImage)
    assert fresh.action == "check"


def test_recreation_waits_for_the_new_image_before_stopping_the_old_container() -> None:
    host = up_from_scratch(stack())
    p = plan(stack(edit(sample(), "services.web.ports", [])), host.observed, UpOptions(build=True))
    assert "ensure image:web" in p.get("stop service:web:1").after


@pytest.mark.parametrize(("options", "message"), [
    (UpOptions(scale={"nope": 2}), "--scale names no such service: nope"),
    (UpOptions(services=("nope",)), "no such service: nope"),
])
def test_bad_options_are_plan_errors(options: UpOptions, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan(stack(), Observed.empty(PROJECT), options)


def test_container_name_cannot_be_scaled() -> None:
    s = stack(edit(sample(), "services.worker.container_name", "the-worker"))
    with pytest.raises(PlanError, match="worker sets container_name and cannot have 2 replicas"):
        plan(s, Observed.empty(PROJECT))
    single = plan(stack(edit(edit(sample(), "services.worker.container_name", "the-worker"),
                             "services.worker.scale", 1)), Observed.empty(PROJECT))
    assert single.get("create service:worker:1").name == "the-worker"  # type: ignore[attr-defined]


def test_observed_state_of_another_project_is_refused() -> None:
    with pytest.raises(PlanError, match="observed state is for project other"):
        plan(stack(), Observed.empty("other"))
    with pytest.raises(PlanError, match="observed state is for project other"):
        plan_down(stack(), Observed.empty("other"))


def test_down_leaves_orphans_and_undeclared_resources_without_remove_orphans() -> None:
    host = up_from_scratch(stack())
    host.containers["demo-old-1"] = ObservedContainer(name="demo-old-1", service="old", number=1,
                                                      config_hash="x", state="running")
    p = plan_down(stack(), host.observed)
    assert p.warnings == ("orphan container demo-old-1 (use --remove-orphans)",)
    assert "remove service:old:1" not in _ids(p)
    assert "remove service:old:1" in _ids(plan_down(stack(), host.observed, DownOptions(remove_orphans=True)))


def test_down_stops_dependents_before_their_dependencies() -> None:
    p = plan_down(stack(), up_from_scratch(stack()).observed)
    position = {op.id: i for i, op in enumerate(p.ops)}
    assert position["stop service:sidecar:1"] < position["stop service:web:1"] < position["stop service:db:1"]
    assert position["stop service:worker:2"] < position["stop service:db:1"]
    assert set(p.get("stop service:db:1").after) == {
        "stop service:web:1", "stop service:worker:1", "stop service:worker:2"}


def test_down_of_stopped_containers_only_removes_them() -> None:
    host = up_from_scratch(stack())
    for name in list(host.containers):
        _with(host, name, state="exited")
    p = plan_down(stack(), host.observed)
    assert not [op for op in p.ops if isinstance(op, StopContainer)]


def test_down_without_volumes_keeps_them() -> None:
    p = plan_down(stack(), up_from_scratch(stack()).observed)
    assert not [op for op in p.ops if isinstance(op, RemoveVolume | CreateVolume)]


def test_to_dict_is_json_and_carries_the_executor_data() -> None:
    p = plan(stack(), Observed.empty(PROJECT))
    data = json.loads(json.dumps(p.to_dict()))
    assert data["project"] == PROJECT and data["warnings"] == []
    ops = {op["id"]: op for op in data["operations"]}
    web = ops["start service:web:1"]
    assert web["op"] == "StartContainer"
    assert web["wait"] == [{"service": "db", "condition": "service_healthy", "required": True,
                            "containers": ["demo-db-1"]}]
    assert web["after"] == ["create service:web:1", "start service:db:1"]
    create = ops["create service:db:1"]
    assert create["networks"] == ["demo_back"] and create["group"] == "default"
    assert set(create["config_parts"]) >= {"environment", "image"}


def test_render_counts_and_empty_plan() -> None:
    one = Plan(project="p", ops=(StopContainer(resource="service:a:1", cause="why", service="a", number=1,
                                               name="p-a-1"),))
    assert one.render() == "plan for p: 1 operation\n#1 stop service:a:1 [p-a-1]: why\n"
    assert Plan(project="p", warnings=("w",)).render() == "nothing to do for p\nwarning: w\n"


def test_volumes_from_dependents_are_recreated_and_restart_dependents_cascade() -> None:
    data = sample()
    data["services"]["backup"] = {"name": "backup", "image": "busybox:1", "volumes_from": ["db:ro"]}
    data["services"]["proxy"] = {"name": "proxy", "image": "busybox:1",
                                 "depends_on": {"web": {"condition": "service_started", "restart": True}}}
    host = up_from_scratch(stack(data))
    changed = edit(data, "services.db.environment.POSTGRES_USER", "admin")
    p = plan(stack(changed), host.observed)
    assert _cause(p, "create service:backup:1") == "db recreated (volumes_from db)"
    assert _cause(p, "start service:web:1") == "db recreated (depends_on restart: true)"
    assert _cause(p, "start service:proxy:1") == "web restarted (depends_on restart: true)"
    assert "create service:proxy:1" not in _ids(p)  # restarted, not recreated
    position = {op_id: i for i, op_id in enumerate(_ids(p))}
    assert position["stop service:proxy:1"] < position["stop service:web:1"] < position["stop service:db:1"]
    assert position["start service:db:1"] < position["start service:web:1"]
    assert position["start service:web:1"] < position["start service:proxy:1"]
    host.apply(p)
    assert plan(stack(changed), host.observed).empty
