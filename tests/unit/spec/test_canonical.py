"""Canonical long forms: every short syntax of a service or resource, markers, positions, errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stackd.errors import Pos, SpecError
from stackd.spec.canonical import canonicalize, shell_split
from stackd.spec.shortsyntax import scalar_text
from stackd.spec.tree import Map, Override, Reset, Seq, plain
from stackd.spec.yamlsrc import parse


def tree(text: str) -> Map:
    out = parse(text, "s.yaml")
    assert isinstance(out, Map)
    return out


def service(body: str) -> dict[str, Any]:
    """The canonical, plain form of one service written as YAML lines under ``services.web``."""
    text = "services:\n  web:\n" + "".join(f"    {line}\n" for line in body.strip("\n").split("\n"))
    out = plain(canonicalize(tree(text), file="s.yaml"))
    return out["services"]["web"]  # type: ignore[no-any-return]


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        canonicalize(tree(text), file="s.yaml")
    return [p.render() for p in info.value.problems]


# ---- mappings of strings --------------------------------------------------------------------------

def test_environment_list_and_map_become_string_maps() -> None:
    assert service("environment: [A=1, B, C=, D=x=y]")["environment"] == {
        "A": "1", "B": None, "C": "", "D": "x=y"}
    assert service("environment: {A: 1, B: 2.5, C: true, D: null, E: ''}")["environment"] == {
        "A": "1", "B": "2.5", "C": "true", "D": None, "E": ""}


def test_repeated_environment_key_keeps_first_place_and_last_value_and_position() -> None:
    text = "services:\n  web:\n    environment:\n      - A=1\n      - B=2\n      - A=3\n"
    env = canonicalize(tree(text), file="s.yaml")["services"]["web"]["environment"]
    assert list(env.items()) == [("A", "3"), ("B", "2")]
    assert env.key_pos["A"] == Pos("s.yaml", 6, 9)


def test_labels_annotations_sysctls_bare_key_is_empty_string() -> None:
    web = service("labels: [X, Y=2]\nannotations: [Z]\nsysctls: {net.core.somaxconn: 1024}")
    assert web["labels"] == {"X": "", "Y": "2"}
    assert web["annotations"] == {"Z": ""}
    assert web["sysctls"] == {"net.core.somaxconn": "1024"}


@pytest.mark.parametrize(("value", "text"), [
    (2.5, "2.5"), (100.0, "100"), (1e6, "1e+06"), (123456.5, "123456.5"), (0.0001, "0.0001"),
    (1e-05, "1e-05"), (-3.25, "-3.25"), (True, "true"), (False, "false"), (7, "7"),
])
def test_numbers_are_written_as_compose_writes_them(value: Any, text: str) -> None:
    assert scalar_text(value) == text


def test_environment_item_without_name_and_nested_value_are_errors() -> None:
    found = problems("services:\n  web:\n    environment: ['=x']\n    labels: {a: [1]}\n")
    assert any("services.web.environment[0]" in p and "missing a name" in p for p in found)
    assert any("services.web.labels.a" in p for p in found)


def test_extra_hosts_lists_and_maps_become_host_to_addresses() -> None:
    web = service('extra_hosts: ["a=1.1.1.1", "a:2.2.2.2", "v6=[::1]", "v4:::1", "a=1.1.1.1"]')
    assert web["extra_hosts"] == {"a": ["1.1.1.1", "2.2.2.2"], "v6": ["::1"], "v4": ["::1"]}
    assert service("extra_hosts: {a: 1.1.1.1, b: [2.2.2.2, 3.3.3.3]}")["extra_hosts"] == {
        "a": ["1.1.1.1"], "b": ["2.2.2.2", "3.3.3.3"]}
    assert any("expected HOST=IP" in p for p in problems("services:\n  w:\n    extra_hosts: [nohost]\n"))


# ---- lists and commands ---------------------------------------------------------------------------

def test_command_and_entrypoint_strings_are_shell_split() -> None:
    web = service("""command: /bin/ash -c "rm -rf /tmp/x" 'a b'\nentrypoint: [sh, -c]""")
    assert web["command"] == ["/bin/ash", "-c", "rm -rf /tmp/x", "a b"]
    assert web["entrypoint"] == ["sh", "-c"]
    assert service("command: null\nentrypoint: []") == {"command": None, "entrypoint": []}
    assert shell_split(r"a\ b 'c d'") == ["a b", "c d"]


def test_unbalanced_quote_in_command_is_an_error_at_its_line() -> None:
    found = problems('services:\n  web:\n    image: x\n    command: echo "oops\n')
    assert len(found) == 1
    assert found[0].startswith("s.yaml:4:") and "services.web.command" in found[0]


def test_string_lists() -> None:
    web = service("dns: 8.8.8.8\ndns_search: [a, b]\ntmpfs: /run\nexpose: [80, '90-91']")
    assert web["dns"] == ["8.8.8.8"]
    assert web["dns_search"] == ["a", "b"]
    assert web["tmpfs"] == ["/run"]
    assert web["expose"] == ["80", "90-91"]


def test_env_file_becomes_path_entries_with_required() -> None:
    assert service("env_file: a.env")["env_file"] == [{"path": "a.env", "required": True}]
    assert service("env_file: [a.env, {path: b.env, required: false}, {path: c.env, format: raw}]")[
        "env_file"] == [{"path": "a.env", "required": True}, {"path": "b.env", "required": False},
                        {"path": "c.env", "format": "raw", "required": True}]
    assert any("env_file[0]" in p for p in problems("services:\n  w:\n    env_file: [{required: true}]\n"))


# ---- mappings of names ----------------------------------------------------------------------------

def test_depends_on_list_gets_the_defaults_and_long_form_stays_as_written() -> None:
    assert service("depends_on: [db]")["depends_on"] == {
        "db": {"condition": "service_started", "required": True}}
    assert service("depends_on: {db: {required: false}}")["depends_on"] == {"db": {"required": False}}


def test_networks_list_becomes_map_of_null() -> None:
    assert service("networks: [front, back]")["networks"] == {"front": None, "back": None}
    assert service("networks: {front: {aliases: [a]}}")["networks"] == {"front": {"aliases": ["a"]}}


def test_secrets_configs_extends_ulimits_healthcheck_build() -> None:
    web = service("""secrets: [s, {source: t, target: /x}]
configs: [c]
extends: base
ulimits: {nproc: 65535, nofile: {soft: 1, hard: 2}}
healthcheck: {test: curl -f http://x, interval: 1m}
build: ./dir""")
    assert web["secrets"] == [{"source": "s"}, {"source": "t", "target": "/x"}]
    assert web["configs"] == [{"source": "c"}]
    assert web["extends"] == {"service": "base"}
    assert web["ulimits"] == {"nproc": {"soft": 65535, "hard": 65535}, "nofile": {"soft": 1, "hard": 2}}
    assert web["healthcheck"] == {"test": ["CMD-SHELL", "curl -f http://x"], "interval": "1m"}
    assert web["build"] == {"context": "./dir"}


def test_build_inner_forms() -> None:
    web = service("build: {context: ., args: [A=1, B], labels: [l], tags: t, extra_hosts: [h=1.2.3.4]}")
    assert web["build"] == {"context": ".", "args": {"A": "1", "B": None}, "labels": {"l": ""},
                            "tags": ["t"], "extra_hosts": {"h": ["1.2.3.4"]}}


def test_secret_without_source_is_an_error() -> None:
    assert any("missing `source`" in p for p in problems("services:\n  w:\n    secrets: [{target: /x}]\n"))


# ---- ports ----------------------------------------------------------------------------------------

def port(**fields: Any) -> dict[str, Any]:
    return {**fields, "protocol": fields.get("protocol", "tcp"), "mode": "ingress"}


@pytest.mark.parametrize(("spec", "expected"), [
    ("80", [port(target=80)]),
    ("8080:80", [port(target=80, published="8080")]),
    ("127.0.0.1:8080:80", [port(target=80, published="8080", host_ip="127.0.0.1")]),
    ("[::1]:6001:6001", [port(target=6001, published="6001", host_ip="::1")]),
    ("::1:6000:6000", [port(target=6000, published="6000", host_ip="::1")]),
    ("6060:6060/udp", [port(target=6060, published="6060", protocol="udp")]),
    ("3000-3001", [port(target=3000), port(target=3001)]),
    ("9090-9091:8080-8081", [port(target=8080, published="9090"), port(target=8081, published="9091")]),
    ("8000-9000:80", [port(target=80, published="8000-9000")]),
    (5000, [port(target=5000)]),
])
def test_short_ports_are_parsed_and_ranges_expanded(spec: Any, expected: list[dict[str, Any]]) -> None:
    assert service(f"ports: [{spec!r}]" if isinstance(spec, str) else f"ports: [{spec}]")["ports"] == expected


def test_long_port_keeps_its_fields_and_published_becomes_text() -> None:
    assert service("ports: [{target: 80, published: 8080, name: web}]")["ports"] == [
        {"target": 80, "published": "8080", "name": "web"}]


@pytest.mark.parametrize("spec", ["80:abc", "70000", "1-2:3-5", "80/xyz", "300.1.1.1:80:80", "0", "9-8"])
def test_bad_ports_are_errors_naming_the_item(spec: str) -> None:
    found = problems(f"services:\n  web:\n    ports: ['8080:80', {spec!r}]\n")
    assert len(found) == 1
    assert "services.web.ports[1]" in found[0] and spec in found[0]
    assert found[0].startswith("s.yaml:3:")


# ---- volumes --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "expected"), [
    ("./a:/a", {"type": "bind", "source": "./a", "target": "/a", "bind": {"create_host_path": True}}),
    ("/a:/a:ro", {"type": "bind", "source": "/a", "target": "/a", "read_only": True,
                  "bind": {"create_host_path": True}}),
    ("~/x:/x:rw", {"type": "bind", "source": "~/x", "target": "/x", "bind": {"create_host_path": True}}),
    ("data:/d", {"type": "volume", "source": "data", "target": "/d"}),
    ("data:/d:nocopy", {"type": "volume", "source": "data", "target": "/d", "volume": {"nocopy": True}}),
    ("/anon", {"type": "volume", "target": "/anon"}),
    ("a:/a", {"type": "volume", "target": "a:/a"}),
    ("c:/src:/dst", {"type": "bind", "source": "c:/src", "target": "/dst",
                     "bind": {"create_host_path": True}}),
    ("./a:/a:ro,z", {"type": "bind", "source": "./a", "target": "/a", "read_only": True,
                     "bind": {"create_host_path": True, "selinux": "z"}}),
    ("./a:/a:rshared", {"type": "bind", "source": "./a", "target": "/a",
                        "bind": {"create_host_path": True, "propagation": "rshared"}}),
    ("./a:/a:cached", {"type": "bind", "source": "./a", "target": "/a", "consistency": "cached",
                       "bind": {"create_host_path": True}}),
])
def test_short_volumes_follow_compose_go(spec: str, expected: dict[str, Any]) -> None:
    assert service(f"volumes: [{spec!r}]")["volumes"] == [expected]


@pytest.mark.parametrize("spec", ["ab::/b", "ab:/b:ro:x", "./a:/a:bogus", ""])
def test_bad_volumes_are_errors(spec: str) -> None:
    found = problems(f"services:\n  web:\n    volumes: [{spec!r}]\n")
    assert len(found) == 1 and "services.web.volumes[0]" in found[0]


def test_long_volume_without_target_is_an_error() -> None:
    found = problems("services:\n  web:\n    volumes:\n      - {type: bind, source: ./x}\n")
    assert found == ["s.yaml:4:9: services.web.volumes[0]: a volume needs a `target` (the path inside "
                     "the container)"]


# ---- top level, markers, positions, errors together -----------------------------------------------

def test_top_level_resources() -> None:
    out = plain(canonicalize(tree("""
networks:
  n: {labels: [a=b], driver_opts: {mtu: 1500}, ipam: {options: [x=1]}, external: {name: real}}
  m:
volumes:
  v: {labels: {k: 1}}
"""), file="s.yaml"))
    assert out["networks"] == {
        "n": {"labels": {"a": "b"}, "driver_opts": {"mtu": "1500"}, "ipam": {"options": {"x": "1"}},
              "external": True, "name": "real"},
        "m": None}
    assert out["volumes"] == {"v": {"labels": {"k": "1"}}}


def test_markers_are_kept_and_override_contents_canonicalised() -> None:
    out = canonicalize(tree("""
services:
  web:
    ports: !override ["80:80"]
    command: !reset []
    environment:
      FOO: !reset
      BAR: !override 1
"""), file="s.yaml")
    web = out["services"]["web"]
    assert isinstance(web["ports"], Override)
    assert plain(web["ports"].value) == [port(target=80, published="80")]
    assert web["ports"].pos == Pos("s.yaml", 4, 12)
    assert isinstance(web["command"], Reset)
    assert isinstance(web["environment"]["FOO"], Reset)
    assert web["environment"]["BAR"] == Override("1", Pos("s.yaml", 8, 12))


def test_items_from_a_short_string_get_its_position() -> None:
    out = canonicalize(tree("services:\n  web:\n    ports:\n      - 80\n      - 3000-3001\n"), file="s.yaml")
    ports = out["services"]["web"]["ports"]
    assert isinstance(ports, Seq)
    assert ports.item_pos == [Pos("s.yaml", 4, 9), Pos("s.yaml", 5, 9), Pos("s.yaml", 5, 9)]
    assert ports[2].key_pos["target"] == Pos("s.yaml", 5, 9)


def test_all_problems_of_a_file_are_reported_together() -> None:
    found = problems("""services:
  a:
    ports: ["x"]
    volumes: ["ab::b"]
  b:
    ports: "80:80"
    command: "'"
""")
    assert [p.split(": ")[1] for p in found] == [
        "services.a.ports[0]", "services.a.volumes[0]", "services.b.ports", "services.b.command"]


def test_keys_it_does_not_know_pass_through_and_input_is_not_mutated() -> None:
    src = tree("x-common: &c {a: 1}\nservices:\n  web:\n    image: x\n    privileged: yes\n"
               "    environment: [A=1]\n    whatever: [1, 2]\n")
    before = copy.deepcopy(plain(src))
    out = plain(canonicalize(src, file="s.yaml"))
    assert plain(src) == before
    assert out["x-common"] == {"a": 1}
    assert out["services"]["web"]["privileged"] == "yes"
    assert out["services"]["web"]["whatever"] == [1, 2]


def test_a_document_without_services_is_fine() -> None:
    assert plain(canonicalize(tree("name: x\n"), file="s.yaml")) == {"name": "x"}
