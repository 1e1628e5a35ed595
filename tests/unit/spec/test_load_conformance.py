"""Every ``load``- and ``cli``-level run of the Compose corpus (``merge-cases/*/case.yaml``) through ``load``.

Each run gets exactly the environment its case lists (nothing leaks in from the process), its
files (``[]``: discovery, ``COMPOSE_FILE`` from ``.env``...), ``--env-file``s, working directory,
project directory, project name, profiles and consistency setting, as the corpus README says.
The loaded stack is turned back into Compose's long form (``to_compose_dict``) and compared with
``compose_compare``. For ``run X`` / ``up [-d] X...`` commands the named services are passed as
``ProjectOptions.services`` and the "active services" are the services left in the loaded stack.
What only a running container shows (``expected_stdout_contains``) is outside the spec layer and
not checked here; the interpolated command that produces it is. Paths are made absolute in every
run: no run of these levels compares a relative path.

``KNOWN_DIFFERENCES`` lists the runs where stackd deliberately differs from Compose (each one
explained in docs/compatibility.md); they are strict xfails, so one that starts passing fails.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackd.errors import SpecError
from stackd.spec import unsupported
from stackd.spec.loader import load
from stackd.spec.options import ProjectOptions
from stackd.spec.validate import allowed_keys, to_compose_dict
from tests.conftest import conformance_dir
from tests.unit.spec.compose_compare import assert_matches
from tests.unit.spec.test_pairs import KNOWN_DIFFERENCES as PAIR_DIFFERENCES

CASES = conformance_dir() / "merge-cases"
LEVELS = ("load", "cli")

# "case#run" → why stackd differs from Compose there (each one is explained in docs/compatibility.md);
# such a run must fail with a SpecError, anything else fails the test
KNOWN_DIFFERENCES: dict[str, str] = {}

_RUN_KEYS = {"files", "env", "env_files", "dotenv", "working_dir", "project_directory", "project_name",
             "profiles", "consistency", "command", "expected", "compare", "scope", "expect_absent",
             "expect_error", "expect_success", "expected_active_services", "expected_inactive_services",
             "expected_stdout_contains", "note"}


def _runs() -> list[tuple[str, int, Path, dict[str, Any]]]:
    out = []
    for case_file in sorted(CASES.glob("*/case.yaml")):
        case = yaml.safe_load(case_file.read_text())
        if case["level"] not in LEVELS:
            continue
        for i, run in enumerate(case["runs"]):
            out.append((case_file.parent.name, i, case_file.parent, run))
    return out


RUNS = _runs()


def _params() -> list[Any]:
    params = []
    for name, i, case_dir, run in RUNS:
        run_id = f"{name}#{i}"
        marks = [pytest.mark.xfail(strict=True, raises=SpecError, reason=KNOWN_DIFFERENCES[run_id])] \
            if run_id in KNOWN_DIFFERENCES else []
        params.append(pytest.param(case_dir, run, id=run_id, marks=marks))
    return params


def targets(command: str | None) -> tuple[str, ...]:
    """The services a corpus command names: ``run echo`` → (echo,), ``up -d foo`` → (foo,)."""
    words = shlex.split(command or "")
    if not words or words[0] not in ("run", "up"):
        return ()
    names = [w for w in words[1:] if not w.startswith("-")]
    return tuple(names[:1]) if words[0] == "run" else tuple(names)


def options_for(case_dir: Path, run: dict[str, Any]) -> ProjectOptions:
    """The ProjectOptions a run describes, with a clean environment."""
    return ProjectOptions(
        files=tuple(run.get("files") or ()),
        env_files=tuple(run.get("env_files") or ()),
        project_name=run.get("project_name"),
        project_directory=run.get("project_directory"),
        profiles=tuple(run.get("profiles") or ()),
        services=targets(run.get("command")),
        environ={str(k): str(v) for k, v in (run.get("env") or {}).items()},
        cwd=str(case_dir / run.get("working_dir", ".")),
        consistency=run.get("consistency", True) is not False,
    )


def _expected(case_dir: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    name = run.get("expected")
    if not name:
        return None
    data: dict[str, Any] = yaml.safe_load((case_dir / name).read_text())
    return data


@pytest.mark.parametrize(("case_dir", "run"), _params())
def test_load_run(case_dir: Path, run: dict[str, Any]) -> None:
    options = options_for(case_dir, run)
    if "expect_error" in run:
        with pytest.raises(SpecError) as info:
            load(options)
        assert run["expect_error"] in str(info.value), str(info.value)
        return
    loaded = load(options)
    actual = to_compose_dict(loaded.stack)
    expected = _expected(case_dir, run)
    if expected is not None or run.get("expect_absent"):
        assert_matches(actual, expected, run.get("compare", "exact-canonical"), run.get("scope"),
                       run.get("expect_absent"))
    services = set(loaded.stack.services)
    if "expected_active_services" in run:
        assert services == set(run["expected_active_services"])
    for name in run.get("expected_inactive_services", []):
        assert name not in services


def test_every_run_is_checked_for_something() -> None:
    """A run that this module would load without checking anything is a gap in the harness."""
    checks = ("expected", "expect_absent", "expect_error", "expect_success", "expected_active_services")
    for name, i, _, run in RUNS:
        assert any(k in run for k in checks), f"{name}#{i} has no check stackd runs"
        unknown = set(run) - _RUN_KEYS
        assert not unknown, f"{name}#{i} uses keys this harness does not know: {unknown}"


def test_the_corpus_has_the_runs_this_module_expects() -> None:
    assert len({name for name, *_ in RUNS}) == 26
    assert len(RUNS) == 35


def test_known_differences_name_real_runs() -> None:
    ids = {f"{name}#{i}" for name, i, *_ in RUNS}
    assert set(KNOWN_DIFFERENCES) <= ids


def test_command_targets() -> None:
    assert targets("run echo") == ("echo",)
    assert targets("up -d foo") == ("foo",)
    assert targets("up -d") == ()
    assert targets("config") == ()
    assert targets(None) == ()


# ---- docs/compatibility.md ----------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[3] / "docs" / "compatibility.md"
_BEGIN = "<!-- unimplemented:begin (generated from stackd/spec/unsupported.py; do not edit by hand) -->"
_END = "<!-- unimplemented:end -->"
# service keys the loader folds away before binding, so they never reach the warnings
_FOLDED_BY_LOADER = frozenset({"label_file"})


def unimplemented_table() -> str:
    """The markdown table of keys Compose accepts and stackd ignores, from ``stackd.spec.unsupported``."""
    rows: list[tuple[str, list[str]]] = [("top level", sorted(unsupported.TOP_LEVEL_UNIMPLEMENTED))]
    service = ("services", "x")
    ignored = set(allowed_keys(service)) - unsupported.SERVICE_KEYS - _FOLDED_BY_LOADER
    rows.append(("`services.*`", sorted(ignored)))
    for pattern, allowed in unsupported.SERVICE_SUBKEYS.items():
        loc = (*service, *("n" if part == "*" else part for part in pattern))
        rows.append((f"`services.*.{'.'.join(pattern)}`", sorted(set(allowed_keys(loc)) - allowed)))
    for section, allowed in unsupported.RESOURCE_KEYS.items():
        rows.append((f"`{section}.*`", sorted(set(allowed_keys((section, "n"))) - allowed)))
    lines = ["| where | accepted and ignored, with a warning |", "| --- | --- |"]
    lines += [f"| {where} | {', '.join(f'`{k}`' for k in keys)} |" for where, keys in rows if keys]
    drivers = ", ".join(f"`{d}`" for d in sorted(unsupported.LOGGING_DRIVERS))
    lines += ["", f"Logging drivers other than {drivers} are accepted and replaced by `json-file`, "
              "with a warning."]
    return "\n".join(lines)


def test_compatibility_doc_lists_the_unimplemented_keys() -> None:
    text = DOC.read_text()
    assert _BEGIN in text and _END in text
    current = text.split(_BEGIN, 1)[1].split(_END, 1)[0].strip()
    assert current == unimplemented_table(), (
        "docs/compatibility.md is out of date; put this between its unimplemented markers:\n\n"
        + unimplemented_table())


def test_compatibility_doc_explains_every_known_difference() -> None:
    text = DOC.read_text()
    for run_id in [*KNOWN_DIFFERENCES, *PAIR_DIFFERENCES]:
        assert f"`{run_id}`" in text, f"{run_id} is an expected failure that the doc does not explain"
