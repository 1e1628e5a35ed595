"""Config hashes: what recreates a container and what must not."""

from __future__ import annotations

import random
from typing import Any

import pytest

from stackd.plan import group_hash, hash_parts, network_hash, service_hash
from stackd.plan.hashing import changed_keys
from stackd.plan.planner import container_parts
from tests.unit.plan.plan_fixtures import edit, sample, shuffled, stack


def _hash(data: dict[str, Any], service: str = "db") -> str:
    return service_hash(stack(data), service)


def test_hash_is_full_sha256_hex() -> None:
    h = _hash(sample())
    assert len(h) == 64 and int(h, 16) >= 0


@pytest.mark.parametrize(("path", "value"), [
    ("services.db.environment.POSTGRES_USER", "admin"),
    ("services.db.image", "postgres:17"),
    ("services.db.ports", [{"target": 5432}]),
    ("services.db.volumes", []),
    ("services.db.networks", {"front": None}),
    ("services.db.restart", "always"),
    ("services.db.command", ["postgres", "-c", "fsync=off"]),
    ("services.db.cgroup_parent", "background"),
    ("secrets.dbpass.digest", "d2"),  # the secret FILE changed
    ("secrets.dbpass.file", "./other.txt"),
])
def test_what_changes_the_container_changes_the_hash(path: str, value: Any) -> None:
    assert _hash(edit(sample(), path, value)) != _hash(sample())


@pytest.mark.parametrize(("path", "value"), [
    ("services.db.scale", 3),
    ("services.db.deploy", {"replicas": 3}),
    ("services.db.depends_on", {"worker": {"condition": "service_started"}}),
    ("services.db.profiles", ["debug"]),
    ("services.db.build", {"context": "./db"}),
    ("services.db.env_file", [{"path": "db.env", "required": False}]),
    ("networks.back", {"driver": "bridge", "labels": {"a": "b"}}),  # a network is its own resource
    ("volumes.dbdata", {"labels": {"a": "b"}}),
    ("secrets.other", {"file": "./other.txt", "digest": "x"}),  # not mounted by db
    ("services.web.environment", {"X": "1"}),  # another service
])
def test_what_does_not_change_the_container_keeps_the_hash(path: str, value: Any) -> None:
    assert _hash(edit(sample(), path, value)) == _hash(sample())


def test_deploy_settings_other_than_replicas_count() -> None:
    base = edit(sample(), "services.db.deploy", {"replicas": 2})
    limited = edit(sample(), "services.db.deploy",
                   {"replicas": 2, "resources": {"limits": {"memory": "512m"}}})
    assert _hash(base) != _hash(limited)
    assert "deploy" not in hash_parts(stack(base), "db")
    assert "deploy" in hash_parts(stack(limited), "db")


def test_dict_order_does_not_matter_but_list_order_does() -> None:
    rng = random.Random(1)
    for _ in range(5):
        assert _hash(shuffled(sample(), rng)) == _hash(sample())
    cmd = edit(sample(), "services.db.command", ["a", "b"])
    assert _hash(cmd) != _hash(edit(sample(), "services.db.command", ["b", "a"]))


def test_parts_name_the_changed_keys() -> None:
    before = hash_parts(stack(), "db")
    after = hash_parts(stack(edit(edit(sample(), "services.db.environment.X", "1"),
                                  "services.db.ports", [{"target": 1}])), "db")
    assert changed_keys(before, after) == ["environment", "ports"]
    assert set(before) >= {"environment", "image", "secrets", "volumes", "networks"}
    assert not set(before) & {"name", "scale", "depends_on", "profiles", "build", "env_file"}


def test_planner_records_the_same_hashes_as_the_public_functions() -> None:
    # a mismatch would recreate every container on every pass
    s = stack()
    for name in s.services:
        assert container_parts(s, name) == (service_hash(s, name), hash_parts(s, name))


def test_network_and_group_hashes_follow_their_definitions() -> None:
    s = stack()
    assert network_hash(s, "back") == network_hash(stack(), "back")
    assert network_hash(s, "back") != network_hash(stack(edit(sample(), "networks.back", {"internal": True})),
                                                   "back")
    assert group_hash(s, "background") != group_hash(
        stack(edit(sample(), "groups.background", {"cpu_weight": 60})), "background")
