"""Properties every plan has, checked on random stacks and random drift of the host.

- every ``after`` names an operation of the same plan, and comes earlier in it;
- a container is created after its dependencies' start operations in the same plan;
- carrying out the plan (on the strict fake host) leaves nothing to do: up converges;
- ``down`` after that leaves no container, network or group behind.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from stackd.graph import build
from stackd.plan import (
    CreateContainer,
    DownOptions,
    Observed,
    ObservedContainer,
    Plan,
    StartContainer,
    UpOptions,
    plan,
    plan_down,
)
from stackd.spec.models import Stack
from tests.unit.plan.plan_fixtures import Host

CONDITIONS = ["service_started", "service_healthy", "service_completed_successfully"]


def random_stack(rng: random.Random, size: int) -> dict[str, Any]:
    names = [f"s{i}" for i in range(size)]
    services: dict[str, Any] = {}
    for i, name in enumerate(names):
        earlier = names[:i]  # dependencies only on earlier services: acyclic by construction
        body: dict[str, Any] = {"name": name, "image": rng.choice(["busybox:1", "alpine:3"]),
                                "environment": {"N": str(rng.randint(0, 3))}}
        if earlier and rng.random() < 0.6:
            body["depends_on"] = {
                d: {"condition": rng.choice(CONDITIONS), "restart": rng.random() < 0.3,
                    "required": rng.random() < 0.9}
                for d in rng.sample(earlier, rng.randint(1, min(3, len(earlier))))}
        roll = rng.random()
        if earlier and roll < 0.15:
            body["network_mode"] = f"service:{rng.choice(earlier)}"
        else:
            body["networks"] = dict.fromkeys(rng.sample(["a", "b"], rng.randint(1, 2)))
            if roll < 0.3 and earlier:
                body["volumes_from"] = [rng.choice(earlier)]
            body["scale"] = rng.choice([1, 1, 2, 3])
        if rng.random() < 0.3:
            body["volumes"] = [{"type": "volume", "source": "data", "target": "/data"}]
        if rng.random() < 0.3:
            body["cgroup_parent"] = "batch"
        services[name] = body
    return {"name": "rnd", "services": services, "networks": {"a": None, "b": None},
            "volumes": {"data": None}, "groups": {"batch": {"cpu_weight": 10}}}


def mutate(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Change a few services' settings, scales and groups (the file was edited)."""
    out: dict[str, Any] = {**data, "services": {k: dict(v) for k, v in data["services"].items()}}
    for name in rng.sample(sorted(out["services"]), k=min(3, len(out["services"]))):
        body = out["services"][name]
        body["environment"] = {"N": str(rng.randint(4, 9))}
        if "scale" in body:
            body["scale"] = rng.choice([1, 2, 4])
    if rng.random() < 0.5:
        out["networks"] = {"a": {"internal": True}, "b": None}
    if rng.random() < 0.5:
        out["groups"] = {"batch": {"cpu_weight": 20}}
    return out


def drift(host: Host, rng: random.Random) -> None:
    """Things that happen on a host between two passes."""
    names = sorted(host.containers)
    for name in rng.sample(names, k=min(4, len(names))):
        c = host.containers[name]
        change = rng.choice(["exited", "dead", "gone", "stale", "created"])
        if change == "gone":
            del host.containers[name]
            host.attached.pop(name, None)
        elif change == "stale":
            host.containers[name] = c.model_copy(update={"config_hash": "stale", "config_parts": {}})
        else:
            host.containers[name] = c.model_copy(update={"state": change, "exit_code": 137})
    host.containers["rnd-ghost-1"] = ObservedContainer(name="rnd-ghost-1", service="ghost", number=1,
                                                       config_hash="x", state="running")


def check_plan(p: Plan, s: Stack) -> None:
    position = {op.id: i for i, op in enumerate(p.ops)}
    assert len(position) == len(p.ops), "op ids are unique"
    for i, op in enumerate(p.ops):
        for dep in op.after:
            assert dep in position, f"{op.id} waits for {dep}, which is not in the plan"
            assert position[dep] < i, f"{op.id} comes before {dep}"
    g = build(s)
    starts = {op.resource for op in p.ops if isinstance(op, StartContainer)}
    creates = {op.resource for op in p.ops if isinstance(op, CreateContainer)}
    for op in p.ops:
        if isinstance(op, StartContainer):
            for dep in g.successors(op.service):
                for resource in starts:
                    if resource.startswith(f"service:{dep}:"):
                        assert f"start {resource}" in op.after, f"{op.id} must wait for start {resource}"
        if not isinstance(op, CreateContainer):
            continue
        for dep in g.successors(op.service):
            shares = set(g.edges[op.service, dep]["kinds"]) - {"depends_on"}
            for resource in starts if shares else creates:
                verb = "start" if shares else "create"
                if resource.startswith(f"service:{dep}:"):
                    assert f"{verb} {resource}" in op.after, f"{op.id} must wait for {verb} {resource}"


@pytest.mark.parametrize("seed", range(40))
def test_random_stacks_plan_consistently_and_converge(seed: int) -> None:
    rng = random.Random(seed)
    data = random_stack(rng, rng.randint(1, 12))
    s = Stack.model_validate(data)
    host = Host(Observed.empty("rnd"))
    first = plan(s, host.observed)
    check_plan(first, s)
    host.apply(first)
    assert plan(s, host.observed).empty

    edited = Stack.model_validate(mutate(data, rng))
    drift(host, rng)
    options = UpOptions(remove_orphans=True, scale={"s0": rng.randint(0, 3)})
    second = plan(edited, host.observed, options)
    check_plan(second, edited)
    host.apply(second)
    again = plan(edited, host.observed, options)
    assert again.empty, again.render()
    assert not again.warnings

    down = plan_down(edited, host.observed, DownOptions(volumes=True))
    check_plan(down, edited)
    host.apply(down)
    assert not host.containers and not host.networks and not host.groups and not host.volumes


@pytest.mark.parametrize("seed", range(10))
def test_targeted_up_only_touches_the_targets_and_their_dependencies(seed: int) -> None:
    rng = random.Random(100 + seed)
    s = Stack.model_validate(random_stack(rng, 10))
    target = rng.choice(sorted(s.services))
    p = plan(s, Observed.empty("rnd"), UpOptions(services=(target,)))
    check_plan(p, s)
    touched = {op.service for op in p.ops if isinstance(op, CreateContainer)}
    g = build(s)
    import networkx as nx

    assert touched <= {target} | nx.descendants(g, target)
    assert target in touched or s.services[target].scale == 0
