"""Variable substitution beyond the corpus: laziness, errors, and the tree walk (positions, paths)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stackd.errors import Pos, SpecError, Warning_
from stackd.spec.interpolate import InterpolationError, interpolate_tree, substitute
from stackd.spec.tree import Map, Override, Reset, Seq, plain
from stackd.spec.yamlsrc import parse

ENV = {"FOO": "first", "EMPTY": "", "PORT": "8080"}


class RecordingLookup:
    """A lookup that remembers which names were asked for."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.asked: list[str] = []

    def __call__(self, name: str) -> str | None:
        self.asked.append(name)
        return self.env.get(name)


# --- substitute ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("template", "expected"), [
    ("$FOO$FOO", "firstfirst"),
    ("${FOO}${FOO}", "firstfirst"),
    ("$$FOO", "$FOO"),
    ("$$$FOO", "$first"),
    ("$1 $- $. $", "$1 $- $. $"),
    ("${FOO:-a}${UNSET:-b}", "firstb"),
    ("${UNSET:-${EMPTY:-${FOO}}}", "first"),
    ("${UNSET:-{a}{b}}", "{a}{b}"),
    ("${UNSET:-a}}", "a}"),
    ("${UNSET:-$}", "$"),
    ("${UNSET:-$$}", "$"),
    ("${UNSET-}", ""),
    ("${EMPTY:+x}", ""),
    ("${EMPTY+x}", "x"),
    ("${FOO:+[${FOO}]}", "[first]"),
    ("${foo_Bar9:-lower}", "lower"),
    ("multi\nline ${FOO}\n", "multi\nline first\n"),
    ("${UNSET:-line1\nline2}", "line1\nline2"),
    ("ünï ${FOO} ☃", "ünï first ☃"),
])
def test_substitute(template: str, expected: str) -> None:
    assert substitute(template, ENV.get) == expected


def test_text_without_dollar_is_returned_as_is() -> None:
    text = "no variables here {} }"
    assert substitute(text, ENV.get) is text


def test_unused_default_is_neither_looked_up_nor_checked_for_missing_values() -> None:
    lookup = RecordingLookup({"SET": "v"})
    assert substitute("${SET:-${OTHER:?boom}}", lookup) == "v"
    assert substitute("${SET?${MSG}}", lookup) == "v"
    assert substitute("${UNSET:+${X}}", lookup) == ""
    assert lookup.asked == ["SET", "SET", "UNSET"]


def test_used_default_is_expanded_and_can_fail() -> None:
    with pytest.raises(InterpolationError, match="required variable OTHER is missing a value: boom"):
        substitute("${UNSET:-${OTHER:?boom}}", ENV.get)


def test_unused_default_still_has_to_be_well_formed() -> None:
    with pytest.raises(InterpolationError) as info:
        substitute("${FOO:-${}}", ENV.get)
    assert info.value.syntax


def test_on_unset_reports_plain_references_only() -> None:
    unset: list[str] = []
    result = substitute("$A ${B} ${C:-c} ${D-d} ${E:+e} ${FOO}", ENV.get, on_unset=unset.append)
    assert result == "  c d  first"
    assert unset == ["A", "B"]


@pytest.mark.parametrize(("template", "detail"), [
    ("${", "missing variable name"),
    ("${}", "empty variable name"),
    ("${ FOO}", 'found " "'),
    ("${FOO", "missing closing '}'"),
    ("${FOO:x}", '":x"'),
    ("${FOO:}", '":}"'),
    ("${FOO!}", '"!"'),
    ("${FOO:-abc", "missing closing '}'"),
    ("${FOO:-{abc}", "missing closing '}'"),
    ("${FOO:-${BAR}", "missing closing '}'"),
    ("ok ${FOO} then ${9}", 'found "9"'),
])
def test_invalid_syntax(template: str, detail: str) -> None:
    with pytest.raises(InterpolationError) as info:
        substitute(template, ENV.get)
    assert info.value.syntax
    assert info.value.message.startswith('Invalid template: "')
    assert detail in info.value.message


def test_required_error_is_not_a_syntax_error() -> None:
    with pytest.raises(InterpolationError) as info:
        substitute("${EMPTY:?}", ENV.get)
    assert not info.value.syntax
    assert info.value.message == "required variable EMPTY is missing a value"


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    template = "${A:-" * 5000 + "x" + "}" * 5000
    with pytest.raises(InterpolationError, match="nested too deeply"):
        substitute(template, ENV.get)


def test_moderate_nesting_works() -> None:
    template = "${A:-" * 100 + "x" + "}" * 100
    assert substitute(template, ENV.get) == "x"


def test_long_template_with_many_variables() -> None:
    template = "${FOO}-" * 20000 + "$$"
    assert substitute(template, ENV.get) == "first-" * 20000 + "$"


# --- interpolate_tree -----------------------------------------------------------------------------------

COMPOSE = """\
services:
  web:
    image: "nginx:${TAG:-latest}"
    ports:
      - "${PORT}:80"
      - 443
    environment:
      ${KEY}: "$FOO"
      DEBUG: true
      RATIO: 1.5
      NOTHING:
    command: !override ["run", "${FOO}"]
    volumes: !reset []
"""


def _load(text: str = COMPOSE) -> Any:
    return parse(text, "compose.yaml")


def test_tree_values_are_substituted_and_keys_untouched() -> None:
    out = interpolate_tree(_load(), ENV.get)
    web = out["services"]["web"]
    assert web["image"] == "nginx:latest"
    assert web["ports"] == ["8080:80", 443]
    assert web["environment"] == {"${KEY}": "first", "DEBUG": True, "RATIO": 1.5, "NOTHING": None}


def test_non_string_scalars_keep_their_type() -> None:
    env = interpolate_tree(_load(), ENV.get)["services"]["web"]["environment"]
    assert env["DEBUG"] is True
    assert type(env["RATIO"]) is float
    assert env["NOTHING"] is None
    assert interpolate_tree(_load(), ENV.get)["services"]["web"]["ports"][1] == 443


def test_override_marker_is_rebuilt_with_substituted_value_and_reset_kept() -> None:
    tree = _load()
    out = interpolate_tree(tree, ENV.get)
    command = out["services"]["web"]["command"]
    assert isinstance(command, Override)
    assert command.value == ["run", "first"]
    assert isinstance(command.value, Seq)
    assert command.pos == tree["services"]["web"]["command"].pos
    assert isinstance(out["services"]["web"]["volumes"], Reset)


def test_positions_are_carried_over() -> None:
    tree = _load()
    out = interpolate_tree(tree, ENV.get)
    assert isinstance(out, Map)
    assert out["services"]["web"].key_pos == tree["services"]["web"].key_pos
    assert out["services"]["web"].pos == tree["services"]["web"].pos
    assert out["services"]["web"]["ports"].item_pos == tree["services"]["web"]["ports"].item_pos


def test_input_tree_is_not_mutated() -> None:
    tree = _load()
    before = copy.deepcopy(plain(tree))
    out = interpolate_tree(tree, ENV.get)
    assert plain(tree) == before
    assert out["services"] is not tree["services"]


def test_every_error_is_reported_with_position_and_path() -> None:
    text = """\
services:
  web:
    image: "${IMAGE:?set IMAGE}"
    ports:
      - "80"
      - "${}:80"
    labels:
      ok: "$FOO"
      bad: "${FOO "
    command: !override ["${MISSING?}"]
"""
    with pytest.raises(SpecError) as info:
        interpolate_tree(_load(text), ENV.get)
    found = [(p.pos, p.path, p.message) for p in info.value.problems]
    assert len(found) == 4
    assert found[0] == (Pos("compose.yaml", 3, 5), "services.web.image",
                        "required variable IMAGE is missing a value: set IMAGE")
    assert found[1][:2] == (Pos("compose.yaml", 6, 9), "services.web.ports[1]")
    assert found[1][2].startswith('invalid interpolation format: "${}:80"')
    assert found[2][:2] == (Pos("compose.yaml", 9, 7), "services.web.labels.bad")
    assert found[3][:2] == (Pos("compose.yaml", 10, 25), "services.web.command[0]")
    assert found[3][2] == "required variable MISSING is missing a value"
    assert all(p.hint for p in info.value.problems)


def test_tree_without_positions_names_the_file() -> None:
    tree = Map([("image", "${X:?}")])
    with pytest.raises(SpecError) as info:
        interpolate_tree(tree, ENV.get, file="compose.yaml")
    [problem] = info.value.problems
    assert problem.pos is not None and problem.pos.file == "compose.yaml"
    assert problem.path == "image"


def test_plain_containers_and_scalars_at_the_root() -> None:
    assert interpolate_tree("${FOO}", ENV.get) == "first"
    assert interpolate_tree(7, ENV.get) == 7
    assert interpolate_tree(Seq(["$FOO", Seq(["${PORT}"])]), ENV.get) == ["first", ["8080"]]


def test_warn_receives_unset_variables_with_their_place() -> None:
    warnings: list[Warning_] = []
    empty: dict[str, str] = {}
    out = interpolate_tree(_load(), empty.get, warn=warnings.append)
    assert out["services"]["web"]["ports"][0] == ":80"
    assert [(w.path, w.pos) for w in warnings] == [
        ("services.web.ports[0]", Pos("compose.yaml", 5, 9)),
        ("services.web.environment.${KEY}", Pos("compose.yaml", 8, 7)),
        ("services.web.command[1]", Pos("compose.yaml", 12, 32)),
    ]
    assert "PORT" in warnings[0].message
