"""Profiles: which services are active."""

from __future__ import annotations

from stackd.spec.profiles import active_services
from stackd.spec.tree import to_tree

SERVICES = to_tree({
    "web": {"image": "nginx", "depends_on": {"db": {"condition": "service_started"}}},
    "db": {"image": "postgres"},
    "debug": {"image": "busybox", "profiles": ["debug", "dev"], "depends_on": {"tools": {}}},
    "tools": {"image": "busybox", "profiles": ["tools"]},
    "sibling": {"image": "busybox", "profiles": ["debug"]},
    "opt": {"image": "x", "profiles": ["x"], "depends_on": {"missing": {"required": False}}},
})


def test_services_without_profiles_are_always_active() -> None:
    assert active_services(SERVICES, [], []) == {"web", "db"}


def test_a_profile_enables_its_services() -> None:
    assert active_services(SERVICES, ["dev"], []) == {"web", "db", "debug"}
    assert active_services(SERVICES, ["debug"], []) == {"web", "db", "debug", "sibling"}


def test_star_enables_everything() -> None:
    assert active_services(SERVICES, ["*"], []) == set(SERVICES)


def test_targeting_a_service_enables_it_and_its_dependencies_not_its_siblings() -> None:
    assert active_services(SERVICES, [], ["debug"]) == {"web", "db", "debug", "tools"}


def test_optional_dependency_is_not_pulled_in() -> None:
    assert active_services(SERVICES, [], ["opt"]) == {"web", "db", "opt"}
