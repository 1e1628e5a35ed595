"""The dependency graph: edges and their attributes, cycles, orders, closures.

Also runs the graph-related Compose conformance cases (dependency cycles, targeting a service
pulls in its dependencies, an optional dependency outside the active profiles is skipped). Those
files are read with the YAML reader and reduced to the long form here, so that these tests depend
on the graph layer only.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from stackd.errors import PlanError
from stackd.graph import build, closure, cycles, dependents, start_order, stop_order
from stackd.spec import yamlsrc
from stackd.spec.models import Stack
from stackd.spec.tree import plain


def svc(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", **fields}


def make(*services: dict[str, Any]) -> Stack:
    return Stack.model_validate({"name": "t", "services": {s["name"]: s for s in services}})


def dep(condition: str = "service_started", *, required: bool = True,
        restart: bool = False) -> dict[str, Any]:
    return {"condition": condition, "required": required, "restart": restart}


def test_depends_on_edges_point_from_dependent_to_dependency_with_attributes() -> None:
    g = build(make(svc("db"), svc("web", depends_on={"db": dep("service_healthy", restart=True)})))
    assert list(g.edges) == [("web", "db")]
    assert g.edges["web", "db"] == {"kind": "depends_on", "kinds": ("depends_on",),
                                    "condition": "service_healthy", "required": True, "restart": True}


def test_network_mode_and_volumes_from_make_edges_but_container_refs_do_not() -> None:
    g = build(make(svc("vpn"), svc("data"),
                   svc("app", network_mode="service:vpn", volumes_from=["data:ro", "container:other:rw"]),
                   svc("host", network_mode="container:abc")))
    assert sorted(g.edges) == [("app", "data"), ("app", "vpn")]
    assert g.edges["app", "vpn"]["kind"] == "network"
    assert g.edges["app", "data"]["kind"] == "volumes_from"
    assert g.edges["app", "vpn"]["condition"] == "service_started"


def test_one_edge_keeps_every_reason_and_the_depends_on_settings() -> None:
    g = build(make(svc("vpn"), svc("app", network_mode="service:vpn", volumes_from=["vpn"],
                                   depends_on={"vpn": dep("service_healthy", required=False)})))
    data = g.edges["app", "vpn"]
    assert data["kinds"] == ("depends_on", "network", "volumes_from")
    assert data["kind"] == "depends_on"
    assert (data["condition"], data["required"]) == ("service_healthy", False)


def test_missing_optional_dependency_is_skipped_and_missing_required_one_fails() -> None:
    g = build(make(svc("web", depends_on={"cache": dep(required=False)})))
    assert list(g.nodes) == ["web"] and not g.edges
    with pytest.raises(PlanError, match="web depends on db"):
        build(make(svc("web", depends_on={"db": dep()})))
    with pytest.raises(PlanError, match="network_mode of vpn"):
        build(make(svc("app", network_mode="service:vpn")))
    assert not build(make(svc("web", depends_on={"db": dep()})), strict=False).edges


def test_start_order_is_generations_dependencies_first_sorted_and_stop_order_reverses_it() -> None:
    s = make(svc("web", depends_on={"db": dep(), "cache": dep()}), svc("db"), svc("cache"),
             svc("proxy", depends_on={"web": dep()}), svc("batch", depends_on={"db": dep()}), svc("lone"))
    g = build(s)
    assert start_order(g) == [["cache", "db", "lone"], ["batch", "web"], ["proxy"]]
    assert stop_order(g) == [["proxy"], ["batch", "web"], ["cache", "db", "lone"]]


def test_orders_do_not_depend_on_declaration_order() -> None:
    services = [svc("a"), svc("b", depends_on={"a": dep()}), svc("c", depends_on={"b": dep(), "a": dep()}),
                svc("d"), svc("e", network_mode="service:d")]
    want = start_order(build(make(*services)))
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(services)
        assert start_order(build(make(*services))) == want


def test_start_order_names_a_cycle() -> None:
    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_edges_from([("a", "b"), ("b", "a")])
    with pytest.raises(PlanError, match="dependency cycle detected"):
        start_order(g)


def test_cycles_are_rotated_to_their_smallest_name_and_sorted() -> None:
    s = make(svc("c", depends_on={"a": dep()}), svc("a", depends_on={"b": dep()}),
             svc("b", depends_on={"c": dep()}), svc("z", depends_on={"z": dep()}),
             svc("y", network_mode="service:x"), svc("x", volumes_from=["y"]), svc("ok"))
    assert cycles(s) == [["a", "b", "c"], ["x", "y"], ["z"]]
    assert cycles(make(svc("ok"), svc("web", depends_on={"ok": dep()}))) == []


def test_cycles_ignore_references_to_missing_services() -> None:
    assert cycles(make(svc("web", depends_on={"db": dep()}))) == []


def test_closure_adds_transitive_dependencies_unless_told_not_to() -> None:
    g = build(make(svc("db"), svc("cache"), svc("api", depends_on={"db": dep()}),
                   svc("web", depends_on={"api": dep()}, volumes_from=["cache"]), svc("other")))
    assert closure(g, ["web"]) == {"web", "api", "db", "cache"}
    assert closure(g, ["web"], deps=False) == {"web"}
    assert closure(g, ["api", "other"]) == {"api", "db", "other"}
    with pytest.raises(PlanError, match="no such service: nope"):
        closure(g, ["web", "nope"])


def test_dependents_are_the_direct_predecessors() -> None:
    g = build(make(svc("db"), svc("api", depends_on={"db": dep()}), svc("web", depends_on={"api": dep()}),
                   svc("job", depends_on={"db": dep()})))
    assert dependents(g, "db") == ["api", "job"]
    assert dependents(g, "web") == []


# -- Compose conformance cases ------------------------------------------------------------------


def _compose_stack(path: Path, active_profiles: frozenset[str] = frozenset()) -> Stack:
    """The file's services in long form; services of inactive profiles are left out (as the loader does)."""
    doc = plain(yamlsrc.read(str(path)))
    services: dict[str, Any] = {}
    for name, body in doc["services"].items():
        if body.get("profiles") and not active_profiles & set(body["profiles"]):
            continue
        depends = body.get("depends_on", {})
        if isinstance(depends, list):
            depends = {d: {} for d in depends}
        services[name] = {"name": name, "image": body.get("image"), "depends_on": depends,
                          "profiles": body.get("profiles", [])}
    return Stack.model_validate({"name": "conformance", "services": services})


def test_conformance_depends_on_cycles(conformance: Path) -> None:
    case = conformance / "merge-cases" / "depends-on-cycle-error"
    assert cycles(_compose_stack(case / "compose-depends-on-cycle.yaml")) == [
        ["service1", "service2", "service3"]]
    assert cycles(_compose_stack(case / "compose-depends-on-self.yaml")) == [["service1"]]


def test_conformance_target_pulls_in_dependencies_not_siblings(conformance: Path) -> None:
    # `up foo` enables foo's profile for foo only; the graph then adds db but not bar.
    s = _compose_stack(conformance / "merge-cases" / "profiles-target-service-deps" / "compose.yaml",
                       frozenset({"test"}))
    assert closure(build(s), ["foo"]) == {"foo", "db"}


def test_conformance_optional_dependency_in_inactive_profile(conformance: Path) -> None:
    s = _compose_stack(conformance / "merge-cases" / "profiles-optional-dependency" / "compose.yaml")
    g = build(s)
    assert start_order(g) == [["foo"]]
    assert closure(g, ["foo"]) == {"foo"}
