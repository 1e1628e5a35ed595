"""Merge rules (one example per rule of the table), markers, unicity, positions, errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stackd.errors import Pos, SpecError
from stackd.spec.canonical import canonicalize
from stackd.spec.merge import RULES, enforce_unicity, merge, resolve_markers, rule_for
from stackd.spec.tree import Map, Override, Reset, Seq, plain, to_tree
from stackd.spec.yamlsrc import parse

P_BASE = Pos("base.yaml", 1)
P_OVER = Pos("over.yaml", 1)


def at(pattern: str, value: Any, pos: Pos) -> Map:
    """A document holding ``value`` at the pattern's path (``*`` → ``x``)."""
    for part in reversed(pattern.split(".")):
        value = {"x" if part == "*" else part: value}
    out = to_tree(value, pos)
    assert isinstance(out, Map)
    return out


def value_at(doc: Any, pattern: str) -> Any:
    for part in pattern.split("."):
        doc = doc["x" if part == "*" else part]
    return doc


def docs(text: str, file: str) -> Map:
    out = canonicalize(parse(text, file), file=file)
    assert isinstance(out, Map)
    return out


def port(target: int, published: str | None = None, protocol: str = "tcp", **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"target": target, "protocol": protocol, "mode": "ingress", **more}
    if published is not None:
        out["published"] = published
    return out


_KV = ({"A": "1", "B": "2"}, {"B": None, "C": "3"}, {"A": "1", "B": None, "C": "3"})
_UNIQUE = (["a", "b"], ["b", "c", "c"], ["a", "b", "c"])

# pattern → (base value, override value, merged value): each one shows what its rule does and
# differs from what the defaults (deep merge / append / replace, null keeps the base) would give.
EXAMPLES: dict[str, tuple[Any, Any, Any]] = {
    "services.*.command": (["echo", "foo"], None, None),
    "services.*.entrypoint": (["sh"], ["bash", "-c"], ["bash", "-c"]),
    "services.*.healthcheck.test": (["CMD", "a"], ["CMD", "b"], ["CMD", "b"]),
    "services.*.ulimits.*": ({"soft": 1, "hard": 2}, {"soft": 3}, {"soft": 3}),
    **dict.fromkeys((
        "services.*.environment", "services.*.labels", "services.*.annotations", "services.*.sysctls",
        "services.*.build.args", "services.*.build.labels", "services.*.build.additional_contexts",
        "services.*.deploy.labels", "networks.*.labels", "networks.*.driver_opts",
        "networks.*.ipam.options", "volumes.*.labels", "volumes.*.driver_opts", "secrets.*.labels",
        "configs.*.labels"), _KV),
    "services.*.ports": (
        [port(80, "8080"), port(90)],
        [port(80, "8080", host_ip="0.0.0.0", name="web"), port(80, "8080", "udp"), port(90, mode="host")],
        [port(80, "8080", host_ip="0.0.0.0", name="web"), port(90, mode="host"), port(80, "8080", "udp")]),
    "services.*.volumes": (
        [{"type": "volume", "source": "foo", "target": "/work"}, {"type": "volume", "target": "/x"}],
        [{"type": "volume", "source": "bar", "target": "/work"}],
        [{"type": "volume", "source": "bar", "target": "/work"}, {"type": "volume", "target": "/x"}]),
    "services.*.secrets": (
        [{"source": "foo"}, {"source": "bar"}],
        [{"source": "zot", "target": "/run/secrets/foo"}],
        [{"source": "zot", "target": "/run/secrets/foo"}, {"source": "bar"}]),
    "services.*.configs": (
        [{"source": "a"}, {"source": "b", "target": "/etc/b"}],
        [{"source": "c", "target": "/a"}, {"source": "d", "target": "/etc/b"}],
        [{"source": "c", "target": "/a"}, {"source": "d", "target": "/etc/b"}]),
    "services.*.devices": (["/dev/a:/dev/x", "/dev/y"], ["/dev/b:/dev/x:r"], ["/dev/b:/dev/x:r", "/dev/y"]),
    "services.*.env_file": (
        [{"path": "a.env", "required": True}, {"path": "b.env", "required": True}],
        [{"path": "a.env", "required": False}],
        [{"path": "a.env", "required": False}, {"path": "b.env", "required": True}]),
    **dict.fromkeys((
        "services.*.dns", "services.*.dns_search", "services.*.dns_opt", "services.*.tmpfs",
        "services.*.profiles", "services.*.cap_add", "services.*.cap_drop", "services.*.links",
        "services.*.external_links", "services.*.security_opt", "services.*.device_cgroup_rules",
        "services.*.expose", "services.*.build.tags", "services.*.build.platforms",
        "services.*.build.platform", "services.*.networks.*.aliases",
        "services.*.networks.*.link_local_ips", "services.*.deploy.placement.constraints",
        "services.*.deploy.placement.preferences"), _UNIQUE),
    "services.*.extra_hosts": ({"h": ["1.1.1.1"]}, {"h": ["2.2.2.2", "1.1.1.1"], "g": ["3.3.3.3"]},
                               {"h": ["1.1.1.1", "2.2.2.2"], "g": ["3.3.3.3"]}),
    "services.*.build.extra_hosts": ({"h": ["1.1.1.1"]}, {"h": ["1.1.1.1", "::1"]},
                                     {"h": ["1.1.1.1", "::1"]}),
    "networks.*.ipam.config": (
        [{"subnet": "10.0.0.0/16", "aux_addresses": {"a": "10.0.0.5"}}, {"subnet": "10.1.0.0/16"}],
        [{"subnet": "10.2.0.0/16"}, {"subnet": "10.0.0.0/16", "gateway": "10.0.0.1",
                                     "aux_addresses": {"b": "10.0.0.6"}}],
        [{"subnet": "10.0.0.0/16", "gateway": "10.0.0.1",
          "aux_addresses": {"a": "10.0.0.5", "b": "10.0.0.6"}},
         {"subnet": "10.1.0.0/16"}, {"subnet": "10.2.0.0/16"}]),
    "services.*.logging": ({"driver": "json-file", "options": {"max-size": "1m"}},
                           {"driver": "syslog", "options": {"tag": "x"}},
                           {"driver": "syslog", "options": {"tag": "x"}}),
    "services.*.depends_on": ({"db": {"condition": "service_healthy", "required": True}, "cache": None},
                              {"db": {"required": False}, "cache": {"condition": "service_started"}},
                              {"db": {"condition": "service_healthy", "required": False},
                               "cache": {"condition": "service_started"}}),
    "services.*.networks": ({"front": None, "back": {"aliases": ["a"], "priority": 1}},
                            {"front": {"aliases": ["x"]}, "back": {"aliases": ["b", "a"]}, "more": None},
                            {"front": {"aliases": ["x"]}, "back": {"aliases": ["a", "b"], "priority": 1},
                             "more": None}),
}


def default_merge(base: Any, override: Any) -> Any:
    """What the spec's defaults alone would give (mappings deep, lists appended, null keeps the base)."""
    if override is None:
        return base
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: default_merge(base[k], v) if k in base else v for k, v in override.items()}}
    if isinstance(base, list) and isinstance(override, list):
        return base + override
    return override


def test_every_rule_has_an_example_and_no_example_is_stale() -> None:
    assert set(EXAMPLES) == set(RULES)


@pytest.mark.parametrize("pattern", [p for p in EXAMPLES if RULES[p].how != "deep"])
def test_each_example_needs_its_rule(pattern: str) -> None:
    base, override, expected = EXAMPLES[pattern]
    assert default_merge(base, override) != expected


@pytest.mark.parametrize("pattern", list(EXAMPLES))
def test_rule(pattern: str) -> None:
    base, override, expected = EXAMPLES[pattern]
    out = merge(at(pattern, base, P_BASE), at(pattern, override, P_OVER))
    assert plain(value_at(out, pattern)) == expected


def test_logging_with_one_driver_or_the_same_driver_merges_options() -> None:
    pattern = "services.*.logging"
    for override in ({"options": {"tag": "x"}}, {"driver": "json-file", "options": {"tag": "x"}}):
        out = merge(at(pattern, {"driver": "json-file", "options": {"max-size": "1m"}}, P_BASE),
                    at(pattern, override, P_OVER))
        assert plain(value_at(out, pattern)) == {"driver": "json-file",
                                                 "options": {"max-size": "1m", "tag": "x"}}


def test_rule_for_prefers_an_exact_key_and_knows_the_defaults() -> None:
    assert rule_for(("services", "web", "ports")) is RULES["services.*.ports"]
    assert rule_for(("services", "web", "ulimits", "nofile")) is RULES["services.*.ulimits.*"]
    assert rule_for(("services", "web", "image")) is None
    assert rule_for(("x-anything",)) is None


# ---- defaults of the spec -------------------------------------------------------------------------

def test_defaults_deep_merge_append_replace() -> None:
    out = merge(docs("services:\n  foo:\n    key1: value1\n    key2: value2\n    group_add: [a]\n"
                     "    deploy: {resources: {limits: {cpus: '1'}}}\n", "base.yaml"),
                docs("services:\n  foo:\n    key2: VALUE\n    key3: value3\n    group_add: [a, b]\n"
                     "    deploy: {resources: {limits: {memory: 1g}}}\n", "over.yaml"))
    assert plain(out) == {"services": {"foo": {
        "key1": "value1", "key2": "VALUE", "key3": "value3", "group_add": ["a", "a", "b"],
        "deploy": {"resources": {"limits": {"cpus": "1", "memory": "1g"}}}}}}


def test_null_override_keeps_the_base_value() -> None:
    out = merge(docs("services:\n  a: {image: x, environment: [A=1], networks: [n]}\n", "base.yaml"),
                docs("services:\n  a: {image: null, environment: null, networks: null}\n", "over.yaml"))
    assert plain(out) == {"services": {"a": {"image": "x", "environment": {"A": "1"},
                                             "networks": {"n": None}}}}


def test_merging_a_list_into_a_mapping_is_an_error_with_both_places() -> None:
    with pytest.raises(SpecError) as info:
        merge(docs("services:\n  a:\n    deploy: {resources: {}}\n", "base.yaml"),
              docs("services:\n  a:\n    deploy: [x]\n", "over.yaml"))
    [problem] = info.value.problems
    assert problem.path == "services.a.deploy"
    assert problem.pos == Pos("over.yaml", 3, 13)
    assert "base.yaml:3:13" in problem.message


def test_new_services_and_resources_are_added() -> None:
    out = merge(docs("services:\n  a: {image: x}\nnetworks:\n  n1:\n", "base.yaml"),
                docs("services:\n  b: {image: y}\nnetworks:\n  n2: {driver: bridge}\n", "over.yaml"))
    assert plain(out) == {"services": {"a": {"image": "x"}, "b": {"image": "y"}},
                          "networks": {"n1": None, "n2": {"driver": "bridge"}}}


# ---- markers --------------------------------------------------------------------------------------

def test_reset_removes_keys_and_override_replaces_whole() -> None:
    base = docs("services:\n  app:\n    image: myapp\n    ports: ['8080:80']\n"
                "    environment: {FOO: BAR, X: y}\n    command: [a]\n", "base.yaml")
    over = docs("services:\n  app:\n    ports: !reset []\n    environment: {FOO: !reset null}\n"
                "    command: !override [b]\n    volumes: !reset\n", "over.yaml")
    assert plain(merge(base, over)) == {"services": {"app": {
        "image": "myapp", "environment": {"X": "y"}, "command": ["b"]}}}
    over = docs("services:\n  app:\n    ports: !override ['8443:443']\n", "over.yaml")
    assert plain(merge(base, over))["services"]["app"]["ports"] == [port(443, "8443")]


def test_markers_in_new_subtrees_are_resolved_by_merge() -> None:
    out = merge(docs("services: {}\n", "base.yaml"),
                docs("services:\n  new:\n    image: x\n    environment: {A: !reset null}\n"
                     "    ports: !override ['1:1']\n", "over.yaml"))
    assert out["services"]["new"]["environment"] == {}
    assert isinstance(out["services"]["new"]["ports"], Seq)


def test_keep_markers_leaves_applied_markers_for_a_later_merge() -> None:
    base = docs("services:\n  a: {ports: ['1:1'], command: [x], image: i}\n", "base.yaml")
    over = docs("services:\n  a: {ports: !override ['2:2'], command: !reset null}\n", "over.yaml")
    kept = merge(base, over, keep_markers=True)
    service = kept["services"]["a"]
    assert isinstance(service["ports"], Override) and plain(service["ports"]) == [port(2, "2")]
    assert isinstance(service["command"], Reset)
    assert plain(resolve_markers(kept)) == {"services": {"a": {"ports": [port(2, "2")], "image": "i"}}}
    later = merge(docs("services:\n  a: {ports: ['3:3'], command: [y]}\n", "older.yaml"), kept)
    assert plain(later) == {"services": {"a": {"ports": [port(2, "2")], "image": "i"}}}


def test_markers_on_the_base_side_count_as_their_value_or_absence() -> None:
    base = docs("services:\n  a: {ports: !override ['1:1'], command: !reset null}\n", "base.yaml")
    over = docs("services:\n  a: {ports: ['2:2'], command: [y]}\n", "over.yaml")
    assert plain(merge(base, over)) == {"services": {"a": {"ports": [port(1, "1"), port(2, "2")],
                                                           "command": ["y"]}}}


def test_resolve_markers_and_a_reset_in_a_single_file() -> None:
    doc = docs("services:\n  a:\n    image: x\n    command: !reset\n    ports: !override ['1:1']\n",
               "one.yaml")
    out = resolve_markers(doc)
    assert plain(out) == {"services": {"a": {"image": "x", "ports": [port(1, "1")]}}}
    unchanged = docs("services:\n  a: {image: x}\n", "one.yaml")
    assert resolve_markers(unchanged) is unchanged
    assert resolve_markers(Seq([1, Reset(), Override(2)])) == [1, 2]


# ---- unicity --------------------------------------------------------------------------------------

def test_unicity_within_one_file() -> None:
    doc = docs("""services:
  test:
    ports: ["9080:80", "9081:81", "9080:80", "5000", "6060:6060/udp", "9080:6060/udp"]
    volumes: ["va:/x", "vb:/x"]
    dns: [1.1.1.1, 1.1.1.1]
    group_add: [a, a]
""", "base.yaml")
    out = plain(enforce_unicity(doc))["services"]["test"]
    assert out["ports"] == [port(80, "9080"), port(81, "9081"), port(5000), port(6060, "6060", "udp"),
                            port(6060, "9080", "udp")]
    assert out["volumes"] == [{"type": "volume", "source": "vb", "target": "/x"}]
    assert out["dns"] == ["1.1.1.1"]
    assert out["group_add"] == ["a", "a"]  # no rule: left alone
    clean = docs("services:\n  a: {ports: ['1:1']}\n", "x.yaml")
    assert enforce_unicity(clean) is clean


# ---- positions and purity -------------------------------------------------------------------------

def test_positions_follow_the_winning_values() -> None:
    base = docs("services:\n  a:\n    image: x\n    user: root\n    ports: ['1:1']\n", "base.yaml")
    over = docs("services:\n  a:\n    image: y\n    ports: ['2:2']\n", "over.yaml")
    a = merge(base, over)["services"]["a"]
    assert a.key_pos["image"] == Pos("over.yaml", 3, 5)
    assert a.key_pos["user"] == Pos("base.yaml", 4, 5)
    assert a["ports"].item_pos == [Pos("base.yaml", 5, 13), Pos("over.yaml", 4, 13)]


def test_inputs_are_not_mutated() -> None:
    base = docs("services:\n  a: {environment: [A=1], ports: ['1:1'], networks: {n: {aliases: [x]}}}\n",
                "b.yaml")
    over = docs("services:\n  a: {environment: {A: !reset null}, ports: ['1:1'],\n"
                "      networks: {n: {aliases: [y]}}}\n", "o.yaml")
    before = (copy.deepcopy(base), copy.deepcopy(over))
    merge(base, over)
    enforce_unicity(base)
    resolve_markers(over)
    assert (base, over) == before
