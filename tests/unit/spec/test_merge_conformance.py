"""The merge cases of the Compose corpus (``merge-cases/*/case.yaml``) that need only the merge stages.

Every ``raw-merge`` run, and the ``load`` runs that need nothing but canonical forms, ``extends``,
merging and ``!reset``/``!override``, go through: read each file → ``canonicalize`` →
``resolve_extends`` → fold ``merge`` → ``enforce_unicity`` → ``resolve_markers``, and are compared
with ``compose_compare``. The other runs need interpolation, .env files, env_file reading,
profiles, validation or the CLI: ``FULL_LOADER`` says which and why (the loader's own tests run
them); a test checks that every run of the corpus is in exactly one of the two groups.
"""

from __future__ import annotations

import os
from functools import reduce
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackd.errors import SpecError
from stackd.spec import yamlsrc
from stackd.spec.canonical import canonicalize
from stackd.spec.extends import resolve_extends
from stackd.spec.merge import enforce_unicity, merge, resolve_markers
from stackd.spec.tree import Map, plain
from tests.conftest import conformance_dir
from tests.unit.spec.compose_compare import assert_matches

CASES = conformance_dir() / "merge-cases"

# case (or case#run) → what beyond merge + extends it needs
FULL_LOADER: dict[str, str] = {
    "cli-env-file-flags-and-dotenv": "CLI: --env-file, .env discovery, COMPOSE_FILE/COMPOSE_PROJECT_NAME",
    "depends-on-cycle-error": "validation: depends_on cycle detection",
    "dotenv-compose-file-and-profiles": "CLI: .env discovery, COMPOSE_FILE, COMPOSE_PROFILES, "
                                        "--project-directory",
    "dotenv-default-value": "interpolation from .env",
    "dotenv-nested-dirs": "CLI: .env discovery from a sub directory, interpolation",
    "dotenv-shell-beats-dotenv": "interpolation from the shell and .env",
    "env-file-precedence": "reading env_file files and folding them into environment",
    "extends-undefined-dependency-error#0": "validation: depends_on an undefined service",
    "interp-environment-from-shell": "interpolation / environment from the caller",
    "interp-labels-and-drivers": "interpolation",
    "interp-nested-defaults-and-escapes": "interpolation",
    "interp-project-name-multi-file": "interpolation of COMPOSE_PROJECT_NAME, -p",
    "interp-required-error": "interpolation (required variables)",
    "profiles-activation": "profiles",
    "profiles-optional-dependency": "CLI: up with profiles (runtime)",
    "profiles-target-service-deps": "CLI: up with profiles (runtime)",
}


def _runs() -> list[tuple[str, int, dict[str, Any]]]:
    out = []
    for case_file in sorted(CASES.glob("*/case.yaml")):
        case = yaml.safe_load(case_file.read_text())
        for i, run in enumerate(case["runs"]):
            out.append((case_file.parent.name, i, {**run, "level": case["level"]}))
    return out


ALL_RUNS = _runs()


def _needs_full_loader(name: str, index: int) -> bool:
    return name in FULL_LOADER or f"{name}#{index}" in FULL_LOADER


OURS = [(name, i, run) for name, i, run in ALL_RUNS if not _needs_full_loader(name, i)]


def load_merged(case_dir: Path, run: dict[str, Any]) -> dict[str, Any]:
    """The files of a run through canonicalize, extends, merge, unicity and markers, as a plain model."""
    workdir = case_dir / run.get("working_dir", ".")

    def prepare(path: str) -> Map:
        shown = os.path.relpath(path, case_dir)
        tree = canonicalize(yamlsrc.read(path, display=shown), file=shown)
        return resolve_extends(tree, file=path, working_dir=os.path.dirname(path), load=load)

    def load(path: str) -> Map:
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        return prepare(path)

    trees = [prepare(os.path.normpath(workdir / f)) for f in run["files"]]
    merged = reduce(merge, trees[1:], trees[0])
    out = plain(resolve_markers(enforce_unicity(merged)))
    assert isinstance(out, dict)
    return out


def test_every_run_is_covered_once() -> None:
    names = {name for name, _, _ in ALL_RUNS}
    keys = names | {f"{name}#{i}" for name, i, _ in ALL_RUNS}
    assert set(FULL_LOADER) <= keys, f"stale entries: {set(FULL_LOADER) - keys}"
    assert all(run["level"] in ("raw-merge", "load") for _, _, run in OURS)
    assert {name for name, _, run in ALL_RUNS if run["level"] == "raw-merge"} <= {n for n, _, _ in OURS}


@pytest.mark.parametrize(("name", "index", "run"), OURS, ids=[f"{n}#{i}" for n, i, _ in OURS])
def test_merge_case(name: str, index: int, run: dict[str, Any]) -> None:
    case_dir = CASES / name
    if "expect_error" in run:
        with pytest.raises(SpecError) as info:
            load_merged(case_dir, run)
        assert run["expect_error"] in str(info.value)
        return
    actual = load_merged(case_dir, run)
    expected = None
    if "expected" in run:
        expected = plain(yamlsrc.read(str(case_dir / run["expected"])))
    assert expected is not None or run.get("expect_absent") or run.get("expect_success")
    assert_matches(actual, expected, run.get("compare", "exact-canonical"), run.get("scope"),
                   run.get("expect_absent"))
