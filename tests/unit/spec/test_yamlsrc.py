"""The YAML reader: positions, YAML 1.2 scalars, anchors and merge keys, tags, errors."""

from __future__ import annotations

import pytest

from stackd.errors import Pos, SpecError
from stackd.spec.tree import Map, Override, Reset, Seq, plain, position_of
from stackd.spec.yamlsrc import parse

DOC = """\
x-base: &base
  restart: always
  environment:
    A: "1"
services:
  web:
    <<: *base
    image: nginx
    ports:
      - "80:80"
      - 443
    enabled: yes
    flag: true
    count: 0x10
    ratio: 1.5
    empty:
  db:
    image: postgres
    ports: !reset []
    command: !override ["a", "b"]
"""


def test_positions_of_keys_and_items() -> None:
    tree = parse(DOC, "stack.yaml")
    assert isinstance(tree, Map)
    assert tree.key_pos["services"] == Pos("stack.yaml", 5, 1)
    web = tree["services"]["web"]
    assert web.key_pos["image"] == Pos("stack.yaml", 8, 5)
    assert isinstance(web["ports"], Seq)
    assert web["ports"].item_pos[1] == Pos("stack.yaml", 11, 9)
    assert position_of(tree, ("services", "web", "ports", 1)) == Pos("stack.yaml", 11, 9)
    # a path that does not exist resolves to its nearest ancestor
    assert position_of(tree, ("services", "web", "nope")) == Pos("stack.yaml", 6, 3)


def test_yaml_1_2_scalars() -> None:
    web = parse(DOC, "f")["services"]["web"]
    assert web["enabled"] == "yes"
    assert web["flag"] is True
    assert web["count"] == 16
    assert web["ratio"] == 1.5
    assert web["empty"] is None
    assert web["ports"][0] == "80:80"
    assert web["ports"][1] == 443


def test_merge_key_brings_anchor_values_explicit_keys_win() -> None:
    tree = parse(DOC + "  other:\n    <<: *base\n    restart: 'no'\n", "f")
    web = tree["services"]["web"]
    assert web["restart"] == "always"
    assert plain(web["environment"]) == {"A": "1"}
    assert tree["services"]["other"]["restart"] == "no"
    assert "<<" not in web


def test_reset_and_override_tags_become_markers() -> None:
    db = parse(DOC, "f")["services"]["db"]
    assert isinstance(db["ports"], Reset)
    assert isinstance(db["command"], Override)
    assert plain(db["command"]) == ["a", "b"]


def test_duplicate_key_is_an_error_with_line() -> None:
    with pytest.raises(SpecError) as info:
        parse("services:\n  web:\n    image: a\n    image: b\n", "dup.yaml")
    (problem,) = info.value.problems
    assert problem.pos == Pos("dup.yaml", 4, 5)
    assert "image" in problem.message


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(SpecError) as info:
        parse("services:\n  web:\n    image: [a\n", "bad.yaml")
    (problem,) = info.value.problems
    assert problem.pos is not None and problem.pos.file == "bad.yaml"
    assert problem.pos.line >= 3
    assert "not valid YAML" in problem.message


def test_empty_document_is_none() -> None:
    assert parse("", "e.yaml") is None
    assert parse("# only a comment\n", "e.yaml") is None


@pytest.mark.parametrize(("text", "value"), [("0440", 0o440), ("0o440", 0o440), ("0x1F", 31), ("0b101", 5),
                                             ("0", 0), ("-12", -12), ("089", 89.0), ("1e3", 1000.0)])
def test_integers_read_as_compose_reads_them(text: str, value: object) -> None:
    tree = parse(f"mode: {text}\n", "f")
    assert tree["mode"] == value
    assert type(tree["mode"]) is type(value)
