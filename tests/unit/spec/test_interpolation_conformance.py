"""Every row of the Compose interpolation corpus (``interpolation-cases/template-cases.yaml``).

The ``template`` suite exercises ``substitute`` alone (errors read "Invalid template" there) and,
for rows with ``compose_error_contains``, also the same template as a value in a stack file. The
``interpolation-*`` suites put the template where the reference loader's test put it, the value of
``services.myservice.environment.TESTVAR``, and run ``interpolate_tree`` on that tree.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml

from stackd.errors import Pos, SpecError
from stackd.spec.interpolate import InterpolationError, interpolate_tree, substitute
from stackd.spec.tree import Map
from tests.conftest import conformance_dir

KNOWN_DIFFERENCES: dict[str, str] = {}

TESTVAR_PATH = "services.myservice.environment.TESTVAR"
TESTVAR_POS = Pos("compose.yaml", 4, 7)


def _rows() -> list[Any]:
    path = conformance_dir() / "interpolation-cases" / "template-cases.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows: list[Any] = []
    seen: Counter[str] = Counter()
    for suite in data["suites"]:
        for case in suite["cases"]:
            base = f"{suite['name']}:{case['test'].split(' ')[0]}"
            seen[base] += 1
            case_id = f"{base}:{seen[base]}"
            env = case["env"] if "env" in case else suite["env"]
            marks = ([pytest.mark.xfail(reason=KNOWN_DIFFERENCES[case_id], strict=True)]
                     if case_id in KNOWN_DIFFERENCES else [])
            rows.append(pytest.param(suite["name"], case, {str(k): str(v) for k, v in env.items()},
                                     id=case_id, marks=marks))
    return rows


ROWS = _rows()


def _compose_tree(template: str) -> Map:
    """``services: {myservice: {environment: {TESTVAR: template}}}`` as if read from compose.yaml."""
    node = Map([("TESTVAR", template)], Pos("compose.yaml", 4, 5), {"TESTVAR": TESTVAR_POS})
    for line, key in ((3, "environment"), (2, "myservice"), (1, "services")):
        where = Pos("compose.yaml", line, 2 * line - 1)
        node = Map([(key, node)], where, {key: where})
    return node


def _in_tree(template: str, env: dict[str, str]) -> Any:
    out = interpolate_tree(_compose_tree(template), env.get)
    return out["services"]["myservice"]["environment"]["TESTVAR"]


def _tree_error(template: str, env: dict[str, str]) -> SpecError:
    with pytest.raises(SpecError) as info:
        interpolate_tree(_compose_tree(template), env.get)
    [problem] = info.value.problems
    assert problem.path == TESTVAR_PATH
    assert problem.pos == TESTVAR_POS
    return info.value


def test_corpus_is_complete() -> None:
    assert len(ROWS) == 97


@pytest.mark.parametrize(("suite", "case", "env"), ROWS)
def test_row(suite: str, case: dict[str, Any], env: dict[str, str]) -> None:
    template = case["template"]
    if suite == "template":
        unset: list[str] = []
        if "expected" in case:
            assert substitute(template, env.get, on_unset=unset.append) == case["expected"]
            if "warnings" in case:
                assert len(unset) == case["warnings"]
        else:
            with pytest.raises(InterpolationError) as info:
                substitute(template, env.get)
            assert case["error_contains"] in str(info.value)
        if "compose_error_contains" in case:
            assert case["compose_error_contains"] in str(_tree_error(template, env))
        return
    if "expected" in case:
        assert _in_tree(template, env) == case["expected"]
        assert substitute(template, env.get) == case["expected"]
    else:
        assert case["error_contains"] in str(_tree_error(template, env))
