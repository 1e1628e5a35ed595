"""One test per row of the corpus's ``compose-go/PAIRS.tsv``: compose-go's loader tests, run through ``load``.

The rows' run options are free text, so each row is encoded here by hand as a ``Pair``: the files,
working directory, options and the check (a few inline assertions, an error text, or an
``*.EXPECTED.yaml`` compared with ``compose_compare``). Every run gets a clean environment with only
the variables the row names. stackd folds ``env_file`` into ``environment`` (the corpus allows it), so
an expected ``env_file`` entry is checked through the variables it brings instead.
``KNOWN_DIFFERENCES`` lists the rows where stackd deliberately differs (see docs/compatibility.md);
they are strict xfails.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackd.errors import SpecError
from stackd.spec.dotenv import read_dotenv
from stackd.spec.loader import load
from stackd.spec.options import ProjectOptions
from stackd.spec.validate import to_compose_dict
from tests.conftest import conformance_dir
from tests.unit.spec.compose_compare import MISSING, assert_matches, canonical_for_compare, get

CORPUS = conformance_dir()
LOADER = CORPUS / "compose-go" / "loader"
TESTDATA = LOADER / "testdata"
CLI = CORPUS / "compose-go" / "cli" / "testdata"

Model = dict[str, Any]


@dataclass(frozen=True)
class Pair:
    """One PAIRS.tsv row: how to load, and what must hold."""

    id: str
    files: tuple[str, ...] = ()
    cwd: Path = LOADER
    env: dict[str, str] = field(default_factory=dict)
    project_name: str | None = None
    project_directory: str | None = None
    env_files: tuple[str, ...] = ()
    resolve_paths: bool = True
    consistency: bool = True
    check: Callable[[Model], None] | None = None
    error: str | None = None
    expected: Path | None = None
    compare: str = "exact-canonical"
    scope: str | list[str] | None = None
    custom: Callable[[Pair, Path], None] | None = None

    def options(self) -> ProjectOptions:
        return ProjectOptions(files=self.files, cwd=str(self.cwd), environ=dict(self.env),
                              project_name=self.project_name, project_directory=self.project_directory,
                              env_files=self.env_files, resolve_paths=self.resolve_paths,
                              consistency=self.consistency)


def model(pair: Pair) -> Model:
    return to_compose_dict(load(pair.options()).stack)


def at(m: Model, path: str) -> Any:
    """The value at a dotted path of the canonical comparison form."""
    parts: list[str | int] = []
    for piece in path.split("."):
        name, _, index = piece.partition("[")
        parts.append(name)
        if index:
            parts.append(int(index.rstrip("]")))
    return get(canonical_for_compare(m), parts)


def without_env_files(expected: Model) -> Model:
    """An expectation with its ``env_file`` entries dropped (stackd folds them into ``environment``)."""
    services = {name: {k: v for k, v in svc.items() if k != "env_file"}
                for name, svc in (expected.get("services") or {}).items()}
    return {**expected, "services": services}


# ---- checks of single rows ------------------------------------------------------------------------

def _invalid_names(pair: Pair, _: Path) -> None:
    for bad in ("MY_PROJECT", "-my_project", "_my_project", "www.my.project"):
        for variant in (replace(pair, project_name=bad), replace(pair, env={"COMPOSE_PROJECT_NAME": bad})):
            with pytest.raises(SpecError, match="invalid project name"):
                load(variant.options())
    assert model(replace(pair, project_name="42my_project_num"))["name"] == "42my_project_num"


def _include_second_run(pair: Pair, _: Path) -> None:
    assert pair.expected is not None
    expected = without_env_files(yaml.safe_load(pair.expected.read_text()))
    actual = model(pair)
    assert_matches(actual, expected, "exact-canonical", "services")
    assert at(actual, "services.imported.environment") == {"SOURCE": "extends"}  # the env_file was read
    overridden = model(replace(pair, env={"SOURCE": "override"}))
    assert at(overridden, "services.imported.container_name") == "override"


def _dotenv_fixtures(_: Pair, __: Path) -> None:
    cases = yaml.safe_load((CORPUS / "dotenv-cases" / "dotenv-cases.yaml").read_text())["fixture_cases"]
    checked = 0
    for case in cases:
        if "format" in case:  # a parser registered by the Go test itself, not a Compose format
            continue
        path, env = str(CORPUS / case["file"]), case.get("os_env") or {}
        if "error_contains" in case:
            with pytest.raises(SpecError) as info:
                read_dotenv(path, lookup=env.get)
            line, _, text = case["error_contains"].partition(": ")
            problem = info.value.problems[0]
            assert problem.pos is not None and f"line {problem.pos.line}" == line and text in problem.message
        else:
            values = {k: v.replace("\r\n", "\n") for k, v in read_dotenv(path, lookup=env.get).items() if v}
            expected = {k: str(v) for k, v in case["expected"].items()}
            for key, value in expected.items():
                assert values.get(key, "") == value, f"{case['file']}: {key}"
            if case.get("exact"):
                assert set(values) <= set(expected), case["file"]
            for key in case.get("absent", []):
                assert key not in values
        checked += 1
    assert checked == len(cases) - 1


def _types_fixtures(_: Pair, tmp: Path) -> None:
    case = CORPUS / "merge-cases" / "env-file-precedence"
    shutil.copy(case / "compose.yaml", tmp / "compose.yaml")
    for name in ("base.env", "override.env"):  # the verbatim compose-go fixtures, not the case's copies
        shutil.copy(CORPUS / "compose-go" / "types" / "fixtures" / name, tmp / name)
    env = {"FOO": "FOO_from_os.env", "QIX": "QIX_from_os.env"}
    loaded = to_compose_dict(load(ProjectOptions(files=("compose.yaml",), cwd=str(tmp), environ=env)).stack)
    expected = yaml.safe_load((case / "expected.yaml").read_text())
    assert_matches(loaded, expected, "exact-canonical", ["services.*.environment"])


def _project_directory(m: Model) -> None:
    subdir = str(TESTDATA / "subdir")
    assert at(m, "services.service.build.context") == subdir
    assert at(m, "services.service.volumes[0].source") == f"{subdir}/compose-test-extends-imported.yaml"
    # env_file testdata/subdir/extra.env, folded: its one variable is there
    assert at(m, "services.service.environment") == {"SOURCE": "extends"}


def _extends_reset(m: Model) -> None:
    assert at(m, "services.test.command") is MISSING


def _one_port(m: Model) -> None:
    ports = at(m, "services.test.ports")
    assert len(ports) == 1, ports


def _dots(*pairs: tuple[str, Any]) -> Callable[[Model], None]:
    def check(m: Model) -> None:
        for path, value in pairs:
            assert at(m, path) == value, path
    return check


PAIRS: list[Pair] = [
    Pair("cli-simple-override", files=("compose.yaml", "compose-with-overrides.yaml"), cwd=CLI / "simple",
         project_name="my_project", check=_dots(("services.simple.image", "haproxy"))),
    Pair("cli-dotenv-interpolation", files=("compose-with-variables.yaml",), cwd=CLI / "simple",
         check=_dots(("services.simple.ports[0].published", "8000"))),
    Pair("cli-name-interpolated", files=("compose-name.yaml",), cwd=CLI / "simple", env={"TEST": "expected"},
         check=_dots(("name", "test-expected-test"))),
    Pair("cli-name-from-dir", files=("compose.yaml",), cwd=CLI / "simple", check=_dots(("name", "simple"))),
    Pair("cli-name-from-dir-normalized", files=("compose.yaml",), cwd=CLI / "UNNORMALIZED PATH",
         check=_dots(("name", "unnormalizedpath"))),
    Pair("cli-invalid-project-names", files=("compose.yaml",), cwd=CLI / "simple", custom=_invalid_names),
    Pair("cli-name-and-file-from-dotenv", cwd=CLI / "env-file",
         check=_dots(("name", "my_project_from_dot_env"))),
    Pair("cli-multiple-env-files", files=("compose-with-env-files.yaml",), cwd=CLI / "env-file",
         env_files=(".env", "override.env"), compare="subset",
         expected=CORPUS / "merge-cases" / "cli-env-file-flags-and-dotenv" / "expected-env-files.yaml"),
    Pair("loader-extends", files=("compose-test-extends.yaml",), cwd=TESTDATA,
         expected=TESTDATA / "compose-test-extends.EXPECTED.yaml", scope="services"),
    Pair("loader-extends-context-url", files=("compose-test-extends-with-context-url.yaml",), cwd=TESTDATA,
         expected=TESTDATA / "compose-test-extends-with-context-url.EXPECTED.yaml", scope="services"),
    Pair("loader-depends-on-cycle", files=("testdata/compose-depends-on-cycle.yaml",),
         error="dependency cycle detected: service1 -> service2 -> service3 -> service1"),
    Pair("loader-depends-on-self", files=("testdata/compose-depends-on-self.yaml",),
         error="dependency cycle detected: service1 -> service1"),
    Pair("loader-include-cycle", files=("compose-include-cycle.yaml",), cwd=TESTDATA,
         error="include cycle detected"),
    Pair("loader-empty-file", files=("testdata/empty.yaml",), error="empty compose file"),
    Pair("loader-include-extends-combined", files=("compose.yaml",), cwd=TESTDATA / "combined",
         project_name="test-load-combined", check=lambda m: None),
    Pair("loader-include-relative", files=("compose.yaml",), cwd=TESTDATA / "include", resolve_paths=False,
         check=_dots(("services.included.build.context", "."), ("services.included.volumes[0].source", "."))),
    Pair("loader-include-project-directory", files=("testdata/include/project-directory.yaml",),
         project_directory="testdata/include", project_name="test-load-project-directory",
         check=_project_directory),
    Pair("schema-using-variables", files=("../schema/using-variables.yaml",), check=lambda m: None),
    Pair("extends-transitive", files=("TRANSCRIBED-TestExtends.yaml",),
         check=_dots(("services.test1.hostname", "test1"), ("services.test2.hostname", "test2"),
                     ("services.test3.hostname", "test3"), ("services.test3.image", "base"))),
    Pair("extends-port", files=("TRANSCRIBED-TestExtendsPort.yaml",),
         check=_dots(("services.test.ports[0].target", 8000))),
    Pair("extends-ulimits", files=("TRANSCRIBED-TestExtendsUlimits.yaml",),
         check=_dots(("services.test.ulimits.nproc", {"soft": 65535, "hard": 65535}))),
    Pair("extends-reset", files=("TRANSCRIBED-TestExtendsReset.yaml",), check=_extends_reset),
    Pair("extends-interpolation", files=("TRANSCRIBED-TestExtendsWithInterpolation.yaml",),
         check=_dots(("services.test.volumes[0].source", "/dev/null"))),
    Pair("extends-port-override",
         files=("testdata/extends/ports.yaml", "TRANSCRIBED-TestExtendsPortOverride.yaml"),
         project_directory=".", resolve_paths=False, consistency=False, check=_one_port),
    Pair("include-with-extends", files=("TRANSCRIBED-TestIncludeWithExtends.yaml",), resolve_paths=False,
         consistency=False, check=_dots(("services.with-build.build.context", "testdata/extends"))),
    Pair("include-env-file", files=("TRANSCRIBED-TestLoadWithInclude.yaml",),
         expected=LOADER / "TRANSCRIBED-TestLoadWithInclude.EXPECTED.yaml", custom=_include_second_run),
    Pair("include-then-override", files=("TRANSCRIBED-TestLoadWithIncludeOverride-base.yaml",
                                         "TRANSCRIBED-TestLoadWithIncludeOverride-override.yaml"),
         check=_dots(("services.imported.image", "overridden"))),
    Pair("env-file-order", files=("TRANSCRIBED-TestDiscardEnvFileOption.yaml",),
         expected=LOADER / "TRANSCRIBED-TestDiscardEnvFileOption.EXPECTED.yaml",
         scope="services.web.environment"),
    Pair("label-file", files=("TRANSCRIBED-TestLoadWithLabelFile.yaml",), consistency=False,
         expected=LOADER / "TRANSCRIBED-TestLoadWithLabelFile.EXPECTED.yaml", scope="services.*.labels"),
    Pair("include-local-override", files=("TRANSCRIBED-TestLoadWithMultipleIncludeConflict.yaml",),
         env={"SOURCE": "override"}, scope="services.bar",
         expected=LOADER / "TRANSCRIBED-TestLoadWithMultipleIncludeConflict.EXPECTED.yaml"),
    Pair("dotenv-fixtures", custom=_dotenv_fixtures),
    Pair("types-env-file-fixtures", custom=_types_fixtures),
]

# row id → why stackd differs from Compose there (see docs/compatibility.md)
KNOWN_DIFFERENCES: dict[str, str] = {
    "schema-using-variables": (
        "the row checks compose-go's JSON schema on the file before interpolation; stackd has no such "
        "un-interpolated check: it validates the interpolated values with its own models, and with VARIABLE "
        "unset they are empty strings where numbers, booleans and names are needed (Compose's loader "
        "rejects the file for the same reason)"),
}


def _params() -> list[Any]:
    return [pytest.param(p, id=p.id, marks=[
        pytest.mark.xfail(strict=True, raises=SpecError, reason=KNOWN_DIFFERENCES[p.id])]
        if p.id in KNOWN_DIFFERENCES else []) for p in PAIRS]


@pytest.mark.parametrize("pair", _params())
def test_pair(pair: Pair, tmp_path: Path) -> None:
    if pair.custom is not None:
        pair.custom(pair, tmp_path)
        return
    if pair.error is not None:
        with pytest.raises(SpecError) as info:
            load(pair.options())
        assert any(p.message.startswith(pair.error) for p in info.value.problems), str(info.value)
        return
    actual = model(pair)
    if pair.check is not None:
        pair.check(actual)
    if pair.expected is not None:
        expected = without_env_files(yaml.safe_load(pair.expected.read_text()))
        assert_matches(actual, expected, pair.compare, pair.scope)


def test_every_row_is_encoded() -> None:
    rows = [line for line in (CORPUS / "compose-go" / "PAIRS.tsv").read_text().splitlines()
            if line and not line.startswith("#")][1:]
    assert len(rows) == len(PAIRS) == 32
    assert len({p.id for p in PAIRS}) == len(PAIRS)
    assert set(KNOWN_DIFFERENCES) <= {p.id for p in PAIRS}


def test_the_schema_row_fails_only_where_a_variable_is_empty() -> None:
    """The known difference above: every problem stackd reports is at a ``${VARIABLE}`` (or its item)."""
    pair = next(p for p in PAIRS if p.id == "schema-using-variables")
    lines = (LOADER / pair.files[0]).read_text().splitlines()
    with pytest.raises(SpecError) as info:
        load(pair.options())
    for problem in info.value.problems:
        assert problem.pos is not None, problem.render()
        if "neither an image nor a build" in problem.message:  # `image: ${VARIABLE}` came out empty
            assert "    image: ${VARIABLE}" in lines, problem.render()
            continue
        if "refers to undefined network" in problem.message:  # the fixture is a schema-only check:
            continue  # it attaches networks it never declares, which the full loader reports too
        assert "${VARIABLE}" in "\n".join(lines[problem.pos.line - 1:problem.pos.line + 1]), problem.render()
