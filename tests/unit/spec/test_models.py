"""The models on their own: shapes, normalisation done while binding, and the rules each model enforces."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stackd.spec.models import (
    DependsOn,
    Group,
    Network,
    Port,
    Secret,
    Service,
    ServiceNetwork,
    ServiceVolume,
    Stack,
)


def stack(**sections: Any) -> Stack:
    return Stack.model_validate({"name": "demo", **sections})


def test_service_is_named_after_its_key_and_joins_the_default_network() -> None:
    s = stack(services={"web": {"image": "nginx"}})
    web = s.services["web"]
    assert web.name == "web"
    assert web.networks == {"default": ServiceNetwork()}
    assert s.networks == {"default": Network()}


def test_network_mode_means_no_default_network() -> None:
    s = stack(services={"web": {"image": "nginx", "network_mode": "host"}})
    assert s.services["web"].networks == {}
    assert "default" not in s.networks


def test_declared_default_network_is_kept() -> None:
    s = stack(services={"web": {"image": "nginx"}},
              networks={"default": {"name": "shared", "external": True}})
    assert s.networks["default"] == Network(name="shared", external=True)


def test_null_declarations_become_empty_ones() -> None:
    s = stack(services={"web": {"image": "x", "networks": {"front": None}}}, networks={"front": None},
              volumes={"data": None})
    assert s.services["web"].networks == {"front": ServiceNetwork()}
    assert s.networks == {"front": Network()}
    assert s.volumes["data"].driver is None


def test_extension_keys_are_dropped_at_every_level() -> None:
    s = stack(**{"x-top": 1}, services={"web": {
        "image": "x", "x-svc": {"any": "thing"},
        "ports": [{"target": 80, "x-port": True}],
        "deploy": {"x-deploy": 1, "resources": {"limits": {"x-limits": 1, "cpus": 0.5}}},
    }})
    web = s.services["web"]
    assert web.ports == [Port(target=80)]
    assert web.deploy is not None and web.deploy.resources is not None
    assert web.deploy.resources.limits is not None and web.deploy.resources.limits.cpus == 0.5


def test_extension_keys_inside_free_maps_are_data() -> None:
    s = stack(services={"web": {"image": "x", "labels": {"x-team": "core"}, "environment": {"x-a": "1"}}})
    assert s.services["web"].labels == {"x-team": "core"}
    assert s.services["web"].environment == {"x-a": "1"}


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        stack(services={"web": {"image": "x", "enviroment": {}}})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_models_are_frozen() -> None:
    s = stack(services={"web": {"image": "x"}})
    with pytest.raises(ValidationError):
        s.services["web"].image = "y"  # type: ignore[misc]


def test_groups_come_from_x_stackd() -> None:
    bg = {"cpu_weight": 100, "cpus": 1.5, "memory": "512m", "pids": 64}
    s = stack(**{"x-stackd": {"groups": {"bg": bg}}})
    assert s.groups == {"bg": Group(cpu_weight=100, cpus=1.5, memory=512 << 20, pids=64)}


def test_default_group_is_implicit_only_for_services_that_run_in_it() -> None:
    groups = {"x-stackd": {"groups": {"bg": {"cpu_weight": 10}}}}
    in_bg = {"image": "x", "cgroup_parent": "bg"}
    assert set(stack(**groups, services={"a": in_bg}).groups) == {"bg"}
    assert set(stack(**groups, services={"a": in_bg, "b": {"image": "x"}}).groups) == {"bg", "default"}
    outside = {"image": "x", "cgroup_parent": "/system.slice"}
    assert stack(services={"a": outside}).groups == {"default": Group()}
    assert stack(services={}).groups == {}


def test_a_null_groups_section_is_an_empty_one() -> None:
    assert stack(**{"x-stackd": {"groups": None}}).groups == {}
    assert set(stack(**{"x-stackd": {"groups": None}}, services={"a": {"image": "x"}}).groups) == {"default"}


def test_groups_given_directly_get_the_implicit_default_too() -> None:
    s = Stack.model_validate({"name": "demo", "groups": {"bg": {}}, "services": {"a": {"image": "x"}}})
    assert set(s.groups) == {"bg", "default"}


def test_a_declared_default_group_keeps_its_limits() -> None:
    s = stack(**{"x-stackd": {"groups": {"default": {"memory": "1g"}}}})
    assert s.groups["default"].memory == 1 << 30


@pytest.mark.parametrize("group", [{"cpu_weight": 0}, {"cpu_weight": 10001}, {"cpus": 0}, {"pids": 0},
                                   {"memory": "lots"}, {"cpu_quota": 1}])
def test_group_limits_are_bounded(group: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Group.model_validate(group)


def test_version_and_include_are_not_part_of_the_model() -> None:
    s = stack(version="3.8", include=["other.yaml"], services={"web": {"image": "x"}})
    assert "version" not in s.model_dump()
    assert s.services["web"].image == "x"


def test_leftover_extends_is_dropped() -> None:
    s = stack(services={"web": {"image": "x", "extends": {"service": "base"}}})
    assert "extends" not in s.services["web"].model_dump()


def test_replicas_and_group_properties() -> None:
    s = stack(services={
        "a": {"image": "x"},
        "b": {"image": "x", "scale": 3, "cgroup_parent": "bg"},
        "c": {"image": "x", "deploy": {"replicas": 2}, "cgroup_parent": "/system.slice"},
    })
    assert [s.services[n].replicas for n in "abc"] == [1, 3, 2]
    assert [s.services[n].group for n in "abc"] == ["default", "bg", "default"]


def test_depends_on_defaults() -> None:
    assert DependsOn() == DependsOn(condition="service_started", required=True, restart=False)
    with pytest.raises(ValidationError):
        DependsOn.model_validate({"condition": "service_ready"})


def test_interpolated_text_binds_to_numbers_and_booleans() -> None:
    svc = Service.model_validate({"name": "w", "image": "x", "scale": "2", "init": "true", "cpus": "0.5",
                                  "healthcheck": {"retries": "3"}, "expose": [80, "443"]})
    assert (svc.scale, svc.init, svc.cpus, svc.expose) == (2, True, 0.5, ["80", "443"])
    assert svc.healthcheck is not None and svc.healthcheck.retries == 3


def test_units_stay_as_written() -> None:
    svc = Service.model_validate({"name": "w", "image": "x", "mem_limit": "512m", "shm_size": 1024,
                                  "stop_grace_period": "1m30s", "memswap_limit": -1})
    assert (svc.mem_limit, svc.shm_size, svc.stop_grace_period, svc.memswap_limit) == (
        "512m", 1024, "1m30s", -1)


@pytest.mark.parametrize(("field", "value"), [
    ("mem_limit", "12q"), ("shm_size", -1), ("stop_grace_period", "10"), ("stop_grace_period", 10),
    ("restart", "sometimes"), ("pull_policy", "whenever"), ("oom_score_adj", 1001), ("cpu_rt_period", "5x"),
])
def test_bad_service_values(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Service.model_validate({"name": "w", "image": "x", field: value})


@pytest.mark.parametrize(("field", "good", "bad"), [
    ("stop_grace_period", "5s", "5x"), ("mem_limit", "64m", "64q"), ("shm_size", "1g", "-1g"),
])
def test_repeated_values_are_checked_every_time(field: str, good: str, bad: str) -> None:
    for _ in range(3):  # the checks remember valid values only
        assert getattr(Service.model_validate({"name": "w", field: good}), field) == good
        with pytest.raises(ValidationError):
            Service.model_validate({"name": "w", field: bad})
    ports = [{"target": 80, "published": "70000"}, {"target": 80, "published": "8000"}]
    with pytest.raises(ValidationError):
        Service.model_validate({"name": "w", "ports": ports})
    with pytest.raises(ValidationError):
        Service.model_validate({"name": "w", "ports": ports[::-1]})


@pytest.mark.parametrize("restart", ["no", "always", "on-failure", "on-failure:3", "unless-stopped"])
def test_restart_policies(restart: str) -> None:
    assert Service(name="w", restart=restart).restart == restart


def test_port_long_form() -> None:
    p = Port.model_validate({"target": 80, "published": 8080, "host_ip": "127.0.0.1"})
    assert (p.published, p.protocol, p.mode) == ("8080", "tcp", "ingress")
    assert Port.model_validate({"target": 80, "published": "8000-8010"}).published == "8000-8010"
    for bad in ({"target": 0}, {"target": 80, "published": "70000"}, {"target": 80, "published": "9-8"},
                {"target": 80, "host_ip": "localhost"}, {"target": 80, "protocol": "icmp"}):
        with pytest.raises(ValidationError):
            Port.model_validate(bad)


def test_volume_mounts_must_be_coherent() -> None:
    assert ServiceVolume.model_validate({"type": "tmpfs", "target": "/t", "tmpfs": {"size": "64m"}}).tmpfs
    for bad in ({"type": "bind", "target": "/x"},
                {"type": "tmpfs", "source": "a", "target": "/x"},
                {"type": "volume", "source": "a", "target": "/x", "bind": {"propagation": "shared"}},
                {"type": "volume", "source": "a"}):
        with pytest.raises(ValidationError):
            ServiceVolume.model_validate(bad)


def test_secret_needs_exactly_one_source() -> None:
    assert Secret.model_validate({"file": "./pw"}).file == "./pw"
    assert Secret.model_validate({"external": {"name": "pw"}}) == Secret(external=True, name="pw")
    for bad in ({}, {"file": "a", "environment": "B"}):
        with pytest.raises(ValidationError, match="secret"):
            Secret.model_validate(bad)


def test_external_network_takes_no_driver() -> None:
    with pytest.raises(ValidationError, match="external network"):
        Network.model_validate({"external": True, "driver": "bridge"})


def test_list_form_maps_outside_the_canonical_ones() -> None:
    svc = Service.model_validate({"name": "w", "deploy": {"labels": ["a=1", "b"]}, "sysctls": {"n.x": 1}})
    assert svc.deploy is not None and svc.deploy.labels == {"a": "1", "b": None}
    assert svc.sysctls == {"n.x": "1"}


def test_secret_reference_modes_read_as_octal_text() -> None:
    svc = Service.model_validate({"name": "w",
                                  "secrets": ["pw", {"source": "key", "mode": "0440", "uid": 1000}]})
    assert [(r.source, r.mode, r.uid) for r in svc.secrets] == [("pw", None, None), ("key", 0o440, "1000")]


def test_healthcheck_test_kind() -> None:
    with pytest.raises(ValidationError, match="NONE, CMD or CMD-SHELL"):
        Service.model_validate({"name": "w", "healthcheck": {"test": ["curl", "-f", "x"]}})


def test_ulimit_soft_above_hard_is_refused() -> None:
    with pytest.raises(ValidationError, match="soft limit"):
        Service.model_validate({"name": "w", "ulimits": {"nofile": {"soft": 2, "hard": 1}}})


def test_project_name_rules() -> None:
    with pytest.raises(ValidationError):
        Stack.model_validate({"name": "My_Project"})
