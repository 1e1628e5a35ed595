"""``extends``: same file and other files, inheritance rules, re-based paths, markers, errors."""

from __future__ import annotations

import copy
import os
from functools import reduce
from pathlib import Path
from typing import Any

import pytest

from stackd.errors import SpecError
from stackd.spec import yamlsrc
from stackd.spec.canonical import canonicalize
from stackd.spec.extends import resolve_extends
from stackd.spec.merge import enforce_unicity, merge, resolve_markers
from stackd.spec.tree import Map, Override, plain
from tests.conftest import conformance_dir


class Files:
    """Stack files in a directory, prepared the way the loader prepares them (load → resolve_extends)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loads: list[str] = []

    def write(self, name: str, text: str) -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)

    def prepare(self, path: str) -> Map:
        shown = os.path.relpath(path, self.root)
        tree = canonicalize(yamlsrc.read(path, display=shown), file=shown)
        return resolve_extends(tree, file=path, working_dir=os.path.dirname(path), load=self.load)

    def load(self, path: str) -> Map:
        self.loads.append(path)
        return self.prepare(path)

    def services(self, *names: str) -> dict[str, Any]:
        trees = [self.prepare(str(self.root / n)) for n in names]
        out = plain(resolve_markers(enforce_unicity(reduce(merge, trees[1:], trees[0]))))
        return out["services"]  # type: ignore[no-any-return]


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def resolve(text: str) -> dict[str, Any]:
    tree = canonicalize(yamlsrc.parse(text, "compose.yaml"), file="compose.yaml")
    out = resolve_extends(tree, file="compose.yaml", working_dir="/project", load=_no_files)
    return plain(resolve_markers(out))["services"]  # type: ignore[no-any-return]


def _no_files(path: str) -> Map:
    raise FileNotFoundError(path)


def errors(text: str) -> list[str]:
    tree = canonicalize(yamlsrc.parse(text, "compose.yaml"), file="compose.yaml")
    with pytest.raises(SpecError) as info:
        resolve_extends(tree, file="compose.yaml", working_dir="/project", load=_no_files)
    return [p.render() for p in info.value.problems]


# ---- the spec's examples --------------------------------------------------------------------------

def test_mappings_merge_key_by_key_and_the_extending_service_wins() -> None:
    cli = resolve("""services:
  common: {image: busybox, environment: {TZ: utc, PORT: 80}, security_opt: [label:role:ROLE]}
  cli:
    extends: {service: common}
    environment: {PORT: 8080}
    security_opt: [label:user:USER]
""")["cli"]
    assert cli == {"image": "busybox", "environment": {"TZ": "utc", "PORT": "8080"},
                   "security_opt": ["label:role:ROLE", "label:user:USER"]}


def test_volumes_merge_by_target() -> None:
    cli = resolve("""services:
  common: {image: busybox, volumes: ["common-volume:/var/lib/backup/data:rw"]}
  cli: {extends: {service: common}, volumes: ["cli-volume:/var/lib/backup/data:ro"]}
""")["cli"]
    assert cli["volumes"] == [{"type": "volume", "source": "cli-volume", "target": "/var/lib/backup/data",
                               "read_only": True}]


def test_extends_is_transitive_and_the_string_form_works() -> None:
    services = resolve("""services:
  base: {image: busybox, user: root}
  common: {image: busybox, extends: base}
  cli: {extends: {service: common}}
""")
    assert services["cli"] == {"image": "busybox", "user": "root"}
    assert services["common"] == {"image": "busybox", "user": "root"}


def test_everything_is_inherited_but_referenced_services_are_not_imported() -> None:
    bar = resolve("""services:
  base: {image: foo, depends_on: [zot], volumes_from: [zot], network_mode: "service:zot", links: [zot]}
  bar: {extends: base}
""")["bar"]
    assert bar == {"image": "foo", "depends_on": {"zot": {"condition": "service_started", "required": True}},
                   "volumes_from": ["zot"], "network_mode": "service:zot", "links": ["zot"]}


def test_extending_service_command_replaces_the_base_command() -> None:
    foo = resolve("""services:
  foo: {image: busybox, extends: {service: bar}, command: "/bin/ash -c \\"rm -rf /tmp/x\\""}
  bar: {image: alpine, command: "/bin/ash -c \\"echo Oh no...\\""}
""")["foo"]
    assert foo == {"image": "busybox", "command": ["/bin/ash", "-c", "rm -rf /tmp/x"]}


def test_a_null_base_service_adds_nothing() -> None:
    assert resolve("services:\n  base:\n  web: {extends: base, image: x}\n")["web"] == {"image": "x"}


def test_services_without_extends_and_documents_without_any_are_returned_as_they_are() -> None:
    tree = canonicalize(yamlsrc.parse("services:\n  a: {image: x}\n", "c.yaml"), file="c.yaml")
    assert resolve_extends(tree, file="c.yaml", working_dir="/p", load=_no_files) is tree


def test_input_tree_is_not_mutated() -> None:
    text = "services:\n  b: {image: x, ports: ['1:1']}\n  a: {extends: b, ports: ['2:2']}\n"
    tree = canonicalize(yamlsrc.parse(text, "c.yaml"), file="c.yaml")
    before = copy.deepcopy(tree)
    resolve_extends(tree, file="c.yaml", working_dir="/p", load=_no_files)
    assert tree == before


# ---- markers --------------------------------------------------------------------------------------

def test_override_in_the_extending_service_replaces_and_stays_for_the_file_merge() -> None:
    tree = canonicalize(yamlsrc.parse("""services:
  depend_one: {image: nginx}
  main_one: {image: nginx, depends_on: [depend_one]}
  main_two:
    extends: main_one
    depends_on: !override [depend_two]
  main: {extends: {service: main_two}, depends_on: [depend_base]}
""", "c.yaml"), file="c.yaml")
    services = resolve_extends(tree, file="c.yaml", working_dir="/p", load=_no_files)["services"]
    assert isinstance(services["main_two"]["depends_on"], Override)
    assert set(plain(services["main"]["depends_on"])) == {"depend_two", "depend_base"}
    assert not isinstance(services["main"]["depends_on"], Override)


def test_a_reset_in_the_base_is_applied_there_and_not_inherited_as_a_tag(files: Files) -> None:
    files.write("reset.yaml", "services:\n  init: {image: alpine, command: sleep infinity}\n"
                              "  base:\n    extends: {service: init}\n    command: !reset\n")
    files.write("first.yaml", "services:\n  test: {command: [keep, me]}\n")
    files.write("second.yaml", "services:\n  test:\n    extends: {file: reset.yaml, service: base}\n")
    assert files.services("second.yaml") == {"test": {"image": "alpine"}}
    assert files.services("first.yaml", "second.yaml") == {
        "test": {"image": "alpine", "command": ["keep", "me"]}}


def test_override_chain_across_three_files(files: Files) -> None:
    files.write("base.yaml", "services:\n  base:\n    volumes: [/foo:/foo]\n    networks: [foo]\n")
    files.write("override.yaml", "services:\n  override:\n    extends: {file: ./base.yaml, service: base}\n"
                                 "    volumes: !override [/bar:/bar]\n    networks: !override [bar]\n")
    files.write("compose.yaml", "services:\n  test:\n    image: test\n"
                                "    extends: {file: ./override.yaml, service: override}\n"
                                "    volumes: [/zot:/zot]\n    networks: !override [zot]\n")
    test = files.services("compose.yaml")["test"]
    assert [v["target"] for v in test["volumes"]] == ["/bar", "/zot"]
    assert test["networks"] == {"zot": None}


# ---- other files and paths ------------------------------------------------------------------------

def test_relative_paths_of_a_base_in_another_directory_are_rebased(files: Files) -> None:
    files.write("sub/common.yaml", """services:
  imported:
    image: nginx
    build: {context: ./app, additional_contexts: {lib: ../lib, img: "docker-image://x"}}
    env_file: ./extra.env
    volumes: ["./data:/data", "named:/named", "/abs:/abs", "~/home:/home"]
  remote:
    build: https://github.com/docker/compose.git
""")
    files.write("compose.yaml", "services:\n  web: {extends: {file: sub/common.yaml, service: imported}}\n"
                                "  r: {extends: {file: sub/common.yaml, service: remote}}\n")
    services = files.services("compose.yaml")
    web = services["web"]
    assert web["build"] == {"context": "sub/app", "additional_contexts": {"lib": "lib", "img": "docker-image://x"}}
    assert web["env_file"] == [{"path": "sub/extra.env", "required": True}]
    assert [v.get("source") for v in web["volumes"]] == ["sub/data", "named", "/abs", "~/home"]
    assert services["r"]["build"] == {"context": "https://github.com/docker/compose.git"}


def test_nested_files_resolve_relative_to_each_file(files: Files) -> None:
    files.write("dir/base.yaml", "services:\n  test: {image: hello-world, build: ./ctx}\n")
    files.write("dir/compose.yaml", "services:\n  test:\n    extends: {file: base.yaml, service: test}\n")
    files.write("compose.yaml", "services:\n  test:\n    extends: {file: dir/compose.yaml, service: test}\n")
    assert files.services("compose.yaml") == {
        "test": {"image": "hello-world", "build": {"context": "dir/ctx"}}}


def test_files_that_extend_each_other_without_a_service_cycle(files: Files) -> None:
    files.write("a.yaml", "services:\n  common: {image: x, user: root}\n"
                          "  web: {extends: {file: b.yaml, service: mid}, hostname: web}\n")
    files.write("b.yaml", "services:\n  mid: {extends: {file: a.yaml, service: common}, tty: true}\n")
    assert files.services("a.yaml")["web"] == {"image": "x", "user": "root", "tty": True, "hostname": "web"}


def test_a_cycle_across_files_is_an_error_naming_the_chain(files: Files) -> None:
    files.write("a.yaml", "services:\n  web:\n    extends: {file: b.yaml, service: base}\n")
    files.write("b.yaml", "services:\n  base:\n    extends: {file: a.yaml, service: web}\n")
    with pytest.raises(SpecError) as info:
        files.services("a.yaml")
    [problem] = info.value.problems
    assert problem.message == "extends cycle: web -> base (b.yaml) -> web"
    assert problem.pos is not None and problem.pos.file == "a.yaml" and problem.path == "services.web.extends"


def test_a_missing_file_is_an_error_at_the_extends_file_position(files: Files) -> None:
    files.write("compose.yaml", "services:\n  web:\n    extends:\n      service: x\n      file: nope.yaml\n")
    with pytest.raises(SpecError) as info:
        files.services("compose.yaml")
    [problem] = info.value.problems
    assert problem.render().startswith(
        "compose.yaml:5:7: services.web.extends.file: extends a file that does not exist: nope.yaml")


def test_an_unknown_service_in_another_file_names_the_file(files: Files) -> None:
    files.write("base.yaml", "services:\n  webapp: {image: x}\n")
    files.write("compose.yaml", "services:\n  web:\n    extends: {file: base.yaml, service: webap}\n")
    with pytest.raises(SpecError) as info:
        files.services("compose.yaml")
    [problem] = info.value.problems
    assert "no such service in base.yaml" in problem.message
    assert problem.hint == "did you mean 'webapp'?"


def test_each_file_is_loaded_once_per_resolution(files: Files) -> None:
    files.write("base.yaml", "services:\n  a: {image: x}\n  b: {image: y}\n")
    files.write("compose.yaml", "services:\n  one: {extends: {file: base.yaml, service: a}}\n"
                                "  two: {extends: {file: base.yaml, service: b}}\n")
    files.services("compose.yaml")
    assert files.loads == [str(files.root / "base.yaml")]


# ---- errors in one document -----------------------------------------------------------------------

def test_unknown_service_with_did_you_mean_at_the_service_position() -> None:
    [problem] = errors("services:\n  webapp: {image: x}\n  web:\n    extends:\n      service: webap\n")
    assert problem == ("compose.yaml:5:7: services.web.extends.service: service 'web' extends 'webap', but "
                       "there is no such service (did you mean 'webapp'?)")


def test_cycles_in_one_file_are_reported_once_with_the_chain() -> None:
    found = errors("services:\n  a: {extends: b}\n  b: {extends: c}\n  c: {extends: a}\n"
                   "  self: {extends: self}\n")
    assert sorted(p.split(": ", 2)[2].split(" (")[0] for p in found) == [
        "extends cycle: a -> b -> c -> a", "extends cycle: self -> self"]


def test_disabling_an_inherited_healthcheck_needs_override() -> None:
    text = ("services:\n  base: {image: x, healthcheck: {test: [CMD, true]}}\n"
            "  web:\n    extends: base\n    healthcheck:")
    [problem] = errors(text + " {disable: true}\n")
    assert "services.web.healthcheck.disable" in problem and "!override" in problem
    assert resolve(text + " !override {disable: true}\n")["web"]["healthcheck"] == {"disable": True}
    assert resolve(text.replace("test: [CMD, true]", "disable: true") + " {disable: true}\n")["web"][
        "healthcheck"] == {"disable": True}


def test_all_problems_of_a_document_are_reported_together() -> None:
    found = errors("services:\n  a: {extends: nope}\n  b: {extends: {file: x.yaml, service: y}}\n")
    assert len(found) == 2


# ---- compose-go's own extends fixtures ------------------------------------------------------------

LOADER = conformance_dir() / "compose-go" / "loader"


def prepared(path: Path) -> Map:
    tree = canonicalize(yamlsrc.read(str(path)), file=path.name)
    return resolve_extends(tree, file=str(path), working_dir=str(path.parent),
                           load=lambda p: prepared(Path(p)))


def loaded(*names: str) -> dict[str, Any]:
    trees = [prepared(LOADER / n) for n in names]
    merged = resolve_markers(enforce_unicity(reduce(merge, trees[1:], trees[0])))
    return plain(merged)["services"]  # type: ignore[no-any-return]


def test_compose_go_extends_fixtures() -> None:
    three = loaded("TRANSCRIBED-TestExtends.yaml")
    assert {n: (s["hostname"], s["image"]) for n, s in three.items()} == {
        "test1": ("test1", "base"), "test2": ("test2", "base"), "test3": ("test3", "base")}
    assert loaded("TRANSCRIBED-TestExtendsPort.yaml")["test"]["ports"][0]["target"] == 8000
    ulimits = loaded("TRANSCRIBED-TestExtendsUlimits.yaml")["test"]["ulimits"]
    assert ulimits["nproc"] == {"soft": 65535, "hard": 65535}
    assert "command" not in loaded("TRANSCRIBED-TestExtendsReset.yaml")["test"]
    two_files = loaded("testdata/extends/ports.yaml", "TRANSCRIBED-TestExtendsPortOverride.yaml")
    assert len(two_files["test"]["ports"]) == 1
    assert loaded("testdata/extends/withdir/compose.yaml")["test"] == {"image": "hello-world"}


def test_compose_go_extends_from_a_sub_directory() -> None:
    importer = loaded("testdata/compose-test-extends.yaml")["importer"]
    assert importer["env_file"] == [{"path": "subdir/extra.env", "required": True}]
    assert importer["volumes"][0]["source"] == "/opt/data"
    assert importer["container_name"] == "${SOURCE:-imported}"  # not interpolated here
