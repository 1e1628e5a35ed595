"""Test support for the planner: a sample stack and a strict in-memory "host" that applies plans.

``Host(observed).apply(plan)`` plays a plan against an ``Observed`` snapshot the way a correct
executor would, and fails loudly when the plan is wrong: an op before one it waits for, a container
created twice, a start of something that does not exist, a network removed while in use.
"""

from __future__ import annotations

import copy
import random
from typing import Any

from stackd.plan import (
    CreateContainer,
    CreateGroup,
    CreateNetwork,
    CreateVolume,
    EnsureImage,
    Observed,
    ObservedContainer,
    ObservedGroup,
    ObservedNetwork,
    ObservedVolume,
    Op,
    Plan,
    RemoveContainer,
    RemoveGroup,
    RemoveNetwork,
    RemoveVolume,
    StartContainer,
    StopContainer,
    UpdateGroup,
    plan,
)
from stackd.spec.models import Stack

PROJECT = "demo"


def sample() -> dict[str, Any]:
    """A stack (long form, as plain data) with every kind of link the planner handles."""
    return {
        "name": PROJECT,
        "services": {
            "db": {
                "name": "db",
                "image": "postgres:16",
                "environment": {"POSTGRES_DB": "app", "POSTGRES_USER": "app"},
                "volumes": [{"type": "volume", "source": "dbdata", "target": "/var/lib/postgresql/data"}],
                "secrets": [{"source": "dbpass"}],
                "networks": {"back": None},
            },
            "web": {
                "name": "web",
                "build": {"context": "./web"},
                "depends_on": {"db": {"condition": "service_healthy", "restart": True}},
                "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}],
                "networks": {"front": None, "back": None},
            },
            "sidecar": {
                "name": "sidecar",
                "image": "busybox:1",
                "network_mode": "service:web",
            },
            "worker": {
                "name": "worker",
                "image": "busybox:1",
                "command": ["sh", "-c", "work"],
                "scale": 2,
                "cgroup_parent": "background",
                "depends_on": {"db": {"condition": "service_started"}},
                "networks": {"back": None},
            },
        },
        "networks": {"front": None, "back": None, "outside": {"external": True}},
        "volumes": {"dbdata": None, "shared": {"external": True}},
        "secrets": {"dbpass": {"file": "./dbpass.txt", "digest": "d1"}},
        "groups": {"background": {"cpu_weight": 50}},
    }


def stack(data: dict[str, Any] | None = None) -> Stack:
    return Stack.model_validate(data if data is not None else sample())


def edit(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``data`` with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    out = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return out


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same data with every dict's key order shuffled (lists keep their order)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


class Host:
    """A fake host that applies plans strictly (AssertionError when a plan is inconsistent)."""

    def __init__(self, observed: Observed) -> None:
        self.project = observed.project
        self.containers = {c.name: c for c in observed.containers}
        self.networks = {n.name: n for n in observed.networks}
        self.volumes = {v.name for v in observed.volumes}
        self.groups = {g.name: g for g in observed.groups}
        self.images = dict(observed.images)
        self.attached: dict[str, tuple[str, ...]] = {}  # container -> host networks it was created on

    @property
    def observed(self) -> Observed:
        return Observed(project=self.project, containers=tuple(self.containers.values()),
                        networks=tuple(self.networks.values()),
                        volumes=tuple(ObservedVolume(name=v) for v in sorted(self.volumes)),
                        groups=tuple(self.groups.values()), images=dict(self.images))

    def apply(self, plan: Plan) -> Observed:
        done: set[str] = set()
        for op in plan.ops:
            missing = set(op.after) - done
            assert not missing, f"{op.id} runs before {sorted(missing)}"
            self._one(op)
            done.add(op.id)
        return self.observed

    def _one(self, op: Op) -> None:
        if isinstance(op, CreateNetwork):
            assert op.name not in self.networks, f"{op.id}: network exists"
            self.networks[op.name] = ObservedNetwork(name=op.name, config_hash=op.config_hash)
        elif isinstance(op, RemoveNetwork):
            assert op.name in self.networks, f"{op.id}: no such network"
            users = sorted(c for c, nets in self.attached.items() if op.name in nets)
            assert not users, f"{op.id}: network still used by {users}"
            del self.networks[op.name]
        elif isinstance(op, CreateVolume):
            assert op.name not in self.volumes, f"{op.id}: volume exists"
            self.volumes.add(op.name)
        elif isinstance(op, RemoveVolume):
            self.volumes.remove(op.name)
        elif isinstance(op, CreateGroup | UpdateGroup):
            assert (op.group in self.groups) == isinstance(op, UpdateGroup), op.id
            self.groups[op.group] = ObservedGroup(name=op.group, config_hash=op.config_hash)
        elif isinstance(op, RemoveGroup):
            del self.groups[op.group]
        elif isinstance(op, EnsureImage):
            self.images[op.image] = f"id-of-{op.image}"
        else:
            self._container(op)

    def _container(self, op: Op) -> None:
        if isinstance(op, CreateContainer):
            assert op.name not in self.containers, f"{op.id}: container {op.name} exists"
            for net in op.networks:
                assert net in self.networks, f"{op.id}: network {net} missing"
            self.containers[op.name] = ObservedContainer(
                name=op.name, service=op.service, number=op.number, config_hash=op.config_hash,
                state="created", image_id=self.images.get(op.image), group=op.group,
                config_parts=op.config_parts)
            self.attached[op.name] = op.networks
        elif isinstance(op, StartContainer):
            c = self.containers[op.name]
            assert c.state in {"created", "exited", "dead"}, f"{op.id}: state {c.state}"
            for w in op.wait:
                for dep in w.containers:
                    assert self.containers[dep].state == "running", f"{op.id}: {dep} not running"
            self.containers[op.name] = c.model_copy(update={"state": "running", "exit_code": None})
        elif isinstance(op, StopContainer):
            c = self.containers[op.name]
            assert c.state in {"running", "paused"}, f"{op.id}: state {c.state}"
            self.containers[op.name] = c.model_copy(update={"state": "exited", "exit_code": 0})
        elif isinstance(op, RemoveContainer):
            c = self.containers.pop(op.name)
            assert c.state not in {"running", "paused"}, f"{op.id}: container still running"
            self.attached.pop(op.name, None)
        else:  # a new op type must be taught to this fake
            raise AssertionError(f"unknown op {op!r}")


def up_from_scratch(s: Stack) -> Host:
    """A host after ``stack up`` of ``s`` on an empty host."""
    host = Host(Observed.empty(s.name))
    host.apply(plan(s, host.observed))
    return host
