"""The checks across a stack (stackd.spec.consistency), through ``bind``: references, names, ports, cycles."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stackd.errors import Pos, SpecError
from stackd.spec.canonical import canonicalize
from stackd.spec.validate import bind
from stackd.spec.yamlsrc import read
from tests.unit.spec.bindhelp import bound, one, problems, tree_of, with_service

# ---------------------------------------------------------------------------------------- references


def test_undefined_dependency_uses_compose_wording() -> None:
    p = one("services:\n  bar:\n    image: foo\n    depends_on: {zot: {condition: service_started}}\n")
    assert 'service "bar" depends on undefined service "zot"' in p.message
    assert (p.path, p.pos) == ("services.bar.depends_on.zot", Pos("stack.yaml", 4, 18))


def test_optional_dependency_on_a_missing_service_is_allowed() -> None:
    stack, _ = bound("services:\n  bar:\n    image: foo\n    depends_on: {zot: {required: false}}\n")
    assert stack.services["bar"].depends_on["zot"].required is False


@pytest.mark.parametrize("body", ["network_mode: service:zot\n", "volumes_from: [zot]\n",
                                  "volumes_from: [zot:ro]\n", "ipc: service:zot\n"])
def test_service_references_must_exist(body: str) -> None:
    p = one(with_service(body))
    assert p.message == 'service "web" depends on undefined service "zot"'


def test_container_references_are_not_checked() -> None:
    bound(with_service("volumes_from: ['container:other:ro']\n"))
    bound(with_service("network_mode: container:other\n"))


def test_undefined_network_with_suggestion() -> None:
    p = one(with_service("networks: {frontend: null}\n", "\nnetworks: {front-end: {}}\n"))
    assert p.message == 'service "web" refers to undefined network "frontend"'
    assert p.hint == "did you mean `front-end`?" and p.pos == Pos("stack.yaml", 4, 16)


def test_network_mode_excludes_networks() -> None:
    p = one(with_service("network_mode: host\nnetworks: {default: null}\n"))
    assert "cannot be used together" in p.message


@pytest.mark.parametrize(("body", "message"), [
    ("volumes: [{type: volume, source: dta, target: /d}]\n", 'refers to undefined volume "dta"'),
    ("secrets: [{source: pw}]\n", 'refers to undefined secret "pw"'),
    ("configs: [{source: conf}]\n", 'refers to undefined config "conf"'),
    ("build: {context: ., secrets: [{source: token}]}\n", 'refers to undefined secret "token"'),
])
def test_undeclared_resources(body: str, message: str) -> None:
    assert message in one(with_service(body)).message


def test_bind_mounts_and_anonymous_volumes_need_no_declaration() -> None:
    bound(with_service("volumes: [{type: bind, source: ./conf, target: /c},"
                       " {type: volume, target: /anon}]\n"))


def test_undeclared_group_with_suggestion() -> None:
    p = one(with_service("cgroup_parent: backgrnd\n", "\nx-stackd: {groups: {background: {}}}\n"))
    assert p.message == 'service "web" uses undefined group "backgrnd"'
    assert p.hint == "did you mean `background`?" and p.path == "services.web.cgroup_parent"


def test_absolute_cgroup_path_warns() -> None:
    stack, warnings = bound(with_service("cgroup_parent: /system.slice\n"))
    assert stack.services["web"].group == "default"
    assert [w.path for w in warnings] == ["services.web.cgroup_parent"]
    assert "only in its own groups" in warnings[0].message


def test_container_names_are_unique_and_single() -> None:
    found = problems("""\
        services:
          a: {image: x, container_name: app}
          b: {image: x, container_name: app}
          c: {image: x, container_name: solo, scale: 2}
        """)
    assert [(p.path, p.pos.line if p.pos else 0) for p in found] == [
        ("services.b.container_name", 3), ("services.c.container_name", 4)]
    assert 'already used by service "a"' in found[0].message and "2 replicas" in found[1].message


def test_scale_and_replicas_must_agree() -> None:
    assert "disagree" in one(with_service("scale: 2\ndeploy: {replicas: 3}\n")).message


def test_image_or_build_is_required() -> None:
    p = one("services:\n  web: {command: [run]}\n")
    assert "neither an image nor a build context" in p.message and p.path == "services.web"


def test_published_port_clash_between_services_warns() -> None:
    stack, warnings = bound("""\
        services:
          a: {image: x, ports: [{target: 80, published: "8080"}]}
          b: {image: x, ports: [{target: 81, published: "8080", host_ip: 127.0.0.1}]}
          c: {image: x, ports: [{target: 82, published: "8080", protocol: udp}]}
        """)
    assert set(stack.services) == {"a", "b", "c"}  # Compose loads such a file: so does stackd
    assert len(warnings) == 1
    w = warnings[0]
    assert w.message == ('host port 8080/tcp is also published by service "a"; '
                         '`stack up` will fail to start service "b"')
    assert (w.path, w.pos) == ("services.b.ports[0]", Pos("stack.yaml", 3, 38))


def test_port_clash_is_a_warning_even_without_consistency_checks() -> None:
    text = """\
        services:
          a: {image: x, ports: [{target: 80, published: "9000"}]}
          b: {image: x, ports: [{target: 80, published: 9000}]}
        """
    _, warnings = bind(tree_of(text), project="demo", consistency=False)
    assert [w.path for w in warnings] == ["services.b.ports[0]"]


def test_ports_on_other_addresses_or_protocols_do_not_clash() -> None:
    _, warnings = bound("""\
        services:
          a: {image: x, ports: [{target: 80, published: "8080", host_ip: 127.0.0.1}]}
          b: {image: x, ports: [{target: 80, published: "8080", host_ip: 127.0.0.2}]}
          c: {image: x, ports: [{target: 80, published: "8080", protocol: udp}]}
          d: {image: x, ports: [{target: 80, published: "8080", host_ip: "::1"}]}
        """)
    assert warnings == []


def test_consistency_off_skips_reference_checks_only() -> None:
    text = "services:\n  web:\n    volumes: [{type: volume, source: nowhere, target: /x}]\n"
    stack, _ = bind(tree_of(text), project="demo", consistency=False)
    assert stack.services["web"].volumes[0].source == "nowhere"
    p = one("services:\n  a: {depends_on: {a: {}}}\n", consistency=False)
    assert p.message.startswith("dependency cycle detected")


# ---------------------------------------------------------------------------------------- cycles


def test_cycle_is_reported_whole_from_its_smallest_service() -> None:
    p = one("""\
        services:
          web: {image: x, depends_on: {api: {}}}
          api: {image: x, volumes_from: [db]}
          db: {image: x, network_mode: "service:web"}
        """)
    assert p.message == "dependency cycle detected: api -> db -> web -> api"
    assert (p.path, p.pos) == ("services.api.volumes_from[0]", Pos("stack.yaml", 3, 34))


def test_self_dependency() -> None:
    p = one("services:\n  a: {image: x, depends_on: {a: {}}}\n")
    assert p.message == "dependency cycle detected: a -> a"


def test_each_separate_cycle_is_reported() -> None:
    found = problems("""\
        services:
          a: {image: x, depends_on: {b: {}}}
          b: {image: x, depends_on: {a: {}}}
          c: {image: x, depends_on: {d: {}}}
          d: {image: x, depends_on: {c: {}}}
          e: {image: x, depends_on: {a: {}}}
        """)
    assert [p.message for p in found] == ["dependency cycle detected: a -> b -> a",
                                          "dependency cycle detected: c -> d -> c"]


def test_shared_dependencies_are_not_a_cycle() -> None:
    stack, _ = bound("""\
        services:
          top: {image: x, depends_on: {left: {}, right: {}}}
          left: {image: x, depends_on: {base: {}}}
          right: {image: x, depends_on: {base: {}}, volumes_from: [base]}
          base: {image: x}
        """)
    assert set(stack.services["top"].depends_on) == {"left", "right"}


def test_a_cycle_behind_a_long_chain_is_found() -> None:
    chain = "".join(f"  s{i}: {{image: x, depends_on: {{s{i + 1}: {{}}}}}}\n" for i in range(50))
    p = one(f"services:\n{chain}  s50: {{image: x, depends_on: {{s48: {{}}}}}}\n")
    assert p.message == "dependency cycle detected: s48 -> s49 -> s50 -> s48"


def test_acyclic_stacks_are_checked_without_networkx(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "networkx", None)  # any `import networkx` now fails
    stack, _ = bound("""\
        services:
          web: {image: x, depends_on: {api: {}}}
          api: {image: x, depends_on: {db: {}}, network_mode: "service:db"}
          db: {image: x}
        """)
    assert list(stack.services) == ["web", "api", "db"]
    with pytest.raises(ImportError):  # a cycle is enumerated with networkx, imported only then
        bound("services:\n  a: {image: x, depends_on: {a: {}}}\n")


@pytest.mark.parametrize(("fixture", "expected"), [
    ("compose-depends-on-cycle.yaml",
     "dependency cycle detected: service1 -> service2 -> service3 -> service1"),
    ("compose-depends-on-self.yaml", "dependency cycle detected: service1 -> service1"),
])
def test_conformance_cycles(conformance: Path, fixture: str, expected: str) -> None:
    path = conformance / "merge-cases" / "depends-on-cycle-error" / fixture
    tree = canonicalize(read(str(path), display=fixture), file=fixture)
    with pytest.raises(SpecError) as info:
        bind(tree, project="depends-on-cycle")
    assert expected in info.value.render()
