"""docs/stack-file.md stays true to the code.

The key tables of the document must list exactly the keys the models accept, with the status the
code gives them (implemented, or accepted with a warning: ``stackd.spec.unsupported``); every field
of a nested long form must be named in its key's rows; the group table must give the model's
ranges; and every example marked ``<!-- checked example -->`` must print exactly what ``stack``
prints for it. Nothing here edits the document or the code: a failure names what drifted.
"""

from __future__ import annotations

import io
import re
import shlex
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from stackd.cli.main import run
from stackd.plan.hashing import service_hash
from stackd.spec.loader import load
from stackd.spec.models import Group, Service, Stack
from stackd.spec.options import ProjectOptions
from stackd.spec.unsupported import (
    LOGGING_DRIVERS,
    RESOURCE_KEYS,
    SERVICE_KEYS,
    SERVICE_SUBKEYS,
    TOP_LEVEL_UNIMPLEMENTED,
)
from stackd.spec.validate import allowed_keys

DOC = Path(__file__).resolve().parents[2] / "docs" / "stack-file.md"

# keys the loader folds into others before validation (so they never reach the warning tables);
# ``test_folded_keys_are_folded`` proves each one really is folded
FOLDED = {"label_file": "labels"}
OBSOLETE = {"version"}  # top-level keys ignored with a "remove it" warning (validate._pre_checks)
PARTLY_BY_VALUE = {"logging"}  # implemented, but some values (drivers) only warn

Path_ = tuple[str, ...]

# ---------------------------------------------------------------------------------------- reading the doc


@dataclass(frozen=True)
class Row:
    keys: tuple[str, ...]
    status: str
    text: str


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _headings() -> dict[int, str]:
    """Line number → title of every heading (lines inside code blocks are not headings)."""
    out: dict[int, str] = {}
    fenced = False
    for i, line in enumerate(_doc().splitlines()):
        fenced = fenced != line.startswith("```")
        found = None if fenced else re.fullmatch(r"#+ (.+)", line)
        if found:
            out[i] = found.group(1)
    return out


def _section(heading: str) -> str:
    """The text below the heading ``heading`` (exact title, any level) up to the next heading."""
    lines = _doc().splitlines()
    headings = _headings()
    titles = [i for i, title in headings.items() if title == heading]
    assert len(titles) == 1, f"docs/stack-file.md needs exactly one heading {heading!r}"
    end = min((i for i in headings if i > titles[0]), default=len(lines))
    return "\n".join(lines[titles[0] + 1:end])


def _cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _table(heading: str) -> list[list[str]]:
    """The cells of the first table under ``heading`` (header and separator left out)."""
    lines = [line for line in _section(heading).splitlines() if line.startswith("|")]
    assert len(lines) > 2, f"no table under {heading!r}"
    return [_cells(line) for line in lines[2:]]


def _ticked(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def _rows(heading: str) -> dict[str, Row]:
    """Key → row of a key table (first column: one or more keys in backticks; last column: status)."""
    out: dict[str, Row] = {}
    for cells in _table(heading):
        keys = tuple(k for k in _ticked(cells[0]) if k != "x-…")
        assert keys, f"a row under {heading!r} names no key: {cells[0]!r}"
        row = Row(keys, cells[-1], " ".join(cells))
        for key in keys:
            assert key not in out, f"{key!r} is listed twice under {heading!r}"
            out[key] = row
    return out


def _words(text: str) -> set[str]:
    """Every name written in backticks in ``text`` (``a.b`` and ``a (b)`` give a and b)."""
    return {w for tick in _ticked(text) for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", tick)}


# ---------------------------------------------------------------------------------------- reading the models


def _alternatives(tp: Any) -> list[Any]:
    """Every type an annotation is made of (Annotated, unions, list and dict arguments unwrapped)."""
    if get_origin(tp) is Annotated:
        return _alternatives(get_args(tp)[0])
    if get_origin(tp) in (Union, types.UnionType, list, dict, tuple):
        return [t for arg in get_args(tp) for t in _alternatives(arg)]
    return [tp]


def _models(tp: Any) -> list[type[BaseModel]]:
    return [t for t in _alternatives(tp) if isinstance(t, type) and issubclass(t, BaseModel)]


def _yaml_name(name: str, info: FieldInfo) -> str:
    return info.alias or name


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    return next((f for n, f in model.model_fields.items() if _yaml_name(n, f) == key), None)


def _nested_fields(tp: Any) -> set[str]:
    """The YAML names of every field of every model reachable from annotation ``tp``."""
    found: set[str] = set()
    seen: set[type[BaseModel]] = set()
    todo = _models(tp)
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            found.add(_yaml_name(name, info))
            todo.extend(_models(info.annotation))
    return found


def _loc(path: Path_) -> tuple[str, ...]:
    return tuple("x" if p == "*" else p for p in path)


def _shown(path: Path_) -> str:
    return ".".join("<name>" if p == "*" else p for p in path)


def _sub_status(path: Path_) -> str:
    """Status of a service sub-key path (``("deploy", "resources")``) under SERVICE_SUBKEYS."""
    parent = SERVICE_SUBKEYS.get(path[:-1])
    if parent is not None and path[-1] not in parent:
        return "warns"
    for child_pattern in (path, (*path, "*")):
        if child_pattern in SERVICE_SUBKEYS:
            fields = allowed_keys(("services", "s", *_loc(child_pattern)))
            if any(_sub_status((*child_pattern, f)) != "yes" for f in fields):
                return "partly"
    return "yes"


def _service_status(key: str) -> str:
    if key not in SERVICE_KEYS:
        return "yes" if key in FOLDED else "warns"
    if key in PARTLY_BY_VALUE:
        return "partly"
    return _sub_status((key,))


def _expected_subkeys() -> dict[str, str]:
    out: dict[str, str] = {}
    for pattern in SERVICE_SUBKEYS:
        for f in allowed_keys(("services", "s", *_loc(pattern))):
            out[_shown((*pattern, f))] = _sub_status((*pattern, f))
    return out


# ---------------------------------------------------------------------------------------- the tables


def _compare(heading: str, doc: dict[str, Row], expected: dict[str, str]) -> None:
    missing = sorted(set(expected) - set(doc))
    extra = sorted(set(doc) - set(expected))
    wrong = sorted(f"{k}: doc says {doc[k].status!r}, code says {v!r}"
                   for k, v in expected.items() if k in doc and doc[k].status != v)
    assert not (missing or extra or wrong), (
        f"docs/stack-file.md, table under {heading!r}: missing {missing}, not in the code {extra}, "
        f"wrong status {wrong}")


def test_the_code_gives_the_tables_something_to_check() -> None:
    service_keys = allowed_keys(("services", "s"))
    assert {"image", "ports", "deploy", "cgroup_parent"} <= set(service_keys)
    assert "name" not in service_keys  # injected from the service's key, never written
    assert _service_status("image") == "yes"
    assert _service_status("deploy") == "partly"
    assert any(s == "warns" for s in map(_service_status, service_keys))


def test_top_level_table_matches_the_stack_model() -> None:
    heading = "Top-level keys"
    keys = [*allowed_keys(()), *Stack.IGNORED_KEYS]
    expected = {k: "warns" if k in TOP_LEVEL_UNIMPLEMENTED else "obsolete" if k in OBSOLETE else "yes"
                for k in keys}
    _compare(heading, _rows(heading), expected)


def test_service_table_lists_every_service_field_with_its_status() -> None:
    heading = "Service keys"
    keys = {*allowed_keys(("services", "s")), *SERVICE_KEYS}
    _compare(heading, _rows(heading), {k: _service_status(k) for k in keys})


def test_sub_key_table_lists_every_partly_implemented_sub_key() -> None:
    heading = "Partly implemented service keys"
    _compare(heading, _rows(heading), _expected_subkeys())


@pytest.mark.parametrize("section", sorted(RESOURCE_KEYS))
def test_resource_tables_match_their_models(section: str) -> None:
    heading = f"{section.capitalize()} (`{section}.<name>`)"
    expected = {k: "yes" if k in RESOURCE_KEYS[section] else "warns" for k in allowed_keys((section, "x"))}
    _compare(heading, _rows(heading), expected)


def test_warns_in_the_doc_is_exactly_what_the_code_warns_for() -> None:
    """The union of the "warns" rows equals the keys outside unsupported.py's implemented tables."""
    doc: set[str] = set()
    for heading, prefix in [("Top-level keys", ""), ("Service keys", "services.<service>."),
                            ("Partly implemented service keys", "services.<service>."),
                            *((f"{s.capitalize()} (`{s}.<name>`)", f"{s}.<name>.") for s in RESOURCE_KEYS)]:
        doc |= {prefix + k for k, row in _rows(heading).items() if row.status == "warns"}
    code = {k for k in allowed_keys(()) if k in TOP_LEVEL_UNIMPLEMENTED}
    code |= {f"services.<service>.{k}" for k in allowed_keys(("services", "s"))
             if k not in SERVICE_KEYS and k not in FOLDED}
    code |= {f"services.<service>.{k}" for k, status in _expected_subkeys().items() if status == "warns"}
    code |= {f"{s}.<name>.{k}" for s, allowed in RESOURCE_KEYS.items()
             for k in allowed_keys((s, "x")) if k not in allowed}
    assert doc == code


def test_logging_drivers_named_are_the_implemented_ones() -> None:
    text = " ".join(_section("Partly implemented service keys").split())
    found = re.search(r"`logging`: the drivers (.*?) are implemented", text)
    assert found, "the sub-key section must say which logging drivers are implemented"
    assert set(_ticked(found.group(1))) == set(LOGGING_DRIVERS)


def test_long_forms_name_every_nested_field() -> None:
    """A key whose value has a long form names all of its fields (at any depth) in its rows."""
    service_rows = {**_rows("Service keys"), **_rows("Partly implemented service keys")}
    problems: list[str] = []
    for key in allowed_keys(("services", "s")):
        info = _field(Service, key)
        assert info is not None
        text = " ".join(r.text for k, r in service_rows.items() if k == key or k.startswith(key + "."))
        missing = _nested_fields(info.annotation) - _words(text)
        problems += [f"services.*.{key}: {sorted(missing)}"] if missing else []
    for section in RESOURCE_KEYS:
        section_field = _field(Stack, section)
        assert section_field is not None
        model = _models(section_field.annotation)[0]
        for key, row in _rows(f"{section.capitalize()} (`{section}.<name>`)").items():
            info = _field(model, key)
            missing = _nested_fields(info.annotation) - _words(row.text) if info else set()
            problems += [f"{section}.*.{key}: {sorted(missing)}"] if missing else []
    for key, row in _rows("Top-level keys").items():
        info = _field(Stack, key)
        if info is None or key in RESOURCE_KEYS or key == "services":
            continue  # not a model field, or has a table of its own
        missing = _nested_fields(info.annotation) - _words(row.text)
        problems += [f"{key}: {sorted(missing)}"] if missing else []
    assert not problems, f"fields not named in their key's rows: {problems}"


def _bounds(info: FieldInfo) -> str | None:
    """The model's range of a numeric field, written as the group table writes it."""
    found: dict[str, Any] = {}
    for tp in [info.annotation, *(get_args(info.annotation))]:
        if get_origin(tp) is Annotated:
            for meta in get_args(tp)[1:]:
                for item in [meta, *getattr(meta, "metadata", [])]:
                    if isinstance(item, annotated_types.Ge):
                        found["Ge"] = item.ge
                    elif isinstance(item, annotated_types.Gt):
                        found["Gt"] = item.gt
                    elif isinstance(item, annotated_types.Le):
                        found["Le"] = item.le
    if "Ge" in found and "Le" in found:
        return f"{found['Ge']}\N{EN DASH}{found['Le']}"
    if "Gt" in found:
        return f"> {found['Gt']}"
    if "Ge" in found:
        return f"≥ {found['Ge']}"
    return None


def test_group_table_matches_the_group_model() -> None:
    heading = "Groups (`x-stackd.groups.<name>`)"
    rows = {_ticked(cells[0])[0]: cells for cells in _table(heading)}
    assert set(rows) == set(allowed_keys(("groups", "x"))) == set(Group.model_fields)
    for name, info in Group.model_fields.items():
        bounds = _bounds(info)
        if bounds is not None:
            assert rows[name][2] == bounds, f"x-stackd.groups.*.{name}: range"
    assert _bounds(Group.model_fields["cpu_weight"]) is not None  # the reader still understands the model


def test_links_inside_the_doc_point_at_its_headings() -> None:
    """GitHub's anchors: lower case, punctuation other than ``-`` and ``_`` dropped, spaces → ``-``."""
    text = _doc()
    anchors = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in _headings().values()}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links, "the doc links its own sections"
    assert links <= anchors, f"links to missing sections: {sorted(links - anchors)}"


# ---------------------------------------------------------------------------------------- the examples


@dataclass(frozen=True)
class Example:
    yaml: str
    argv: list[str]
    output: str
    code: int


def _examples() -> list[Example]:
    out: list[Example] = []
    for part in _doc().split("<!-- checked example -->")[1:]:
        blocks = re.findall(r"```(\w+)\n(.*?)```", part, re.S)
        assert [b[0] for b in blocks[:2]] == ["yaml", "console"], "a checked example: a yaml, a console block"
        console = blocks[1][1].splitlines()
        assert console[0].startswith("$ stack ") and console[-2] == "$ echo $?", (
            "a console block runs `$ stack ...` and ends with `$ echo $?` and the exit code")
        output = "".join(line + "\n" for line in console[1:-2])
        out.append(Example(blocks[0][1], shlex.split(console[0][2:])[1:], output, int(console[-1])))
    return out


def test_the_doc_has_checked_examples_of_errors_and_warnings() -> None:
    outputs = [e.output for e in _examples()]
    assert any(o.startswith("error: ") for o in outputs)
    assert any(o.startswith("warning: ") for o in outputs)


@pytest.mark.parametrize("number", range(len(_examples())))
def test_examples_print_what_stack_prints(number: int, tmp_path: Path) -> None:
    example = _examples()[number]
    project = tmp_path / "project"
    project.mkdir()
    (project / "stack.yaml").write_text(example.yaml, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = run(example.argv, environ={}, cwd=str(project), out=out, err=err)
    assert err.getvalue() + out.getvalue() == example.output
    assert code == example.code


def test_folded_keys_are_folded(tmp_path: Path) -> None:
    """What FOLDED says: the key is read (into another key) and dropped, so it never warns."""
    (tmp_path / "extra.txt").write_text("tier=front\n", encoding="utf-8")
    body = "".join(f"    {key}: ./extra.txt\n" for key in FOLDED)
    (tmp_path / "stack.yaml").write_text(f"services:\n  web:\n    image: nginx\n{body}", encoding="utf-8")
    loaded = load(ProjectOptions(environ={}, cwd=str(tmp_path)))
    svc = loaded.stack.services["web"]
    for key, into in FOLDED.items():
        assert getattr(svc, into) == {"tier": "front"}
        assert key not in loaded.tree["services"]["web"]
    assert not loaded.warnings


@pytest.mark.parametrize("changed", ["secret.txt", "config.txt"])
def test_a_changed_secret_or_config_file_changes_only_its_users(changed: str, tmp_path: Path) -> None:
    """What the "Digests" paragraph says: the file's content is in the hash of the services mounting it."""
    (tmp_path / "stack.yaml").write_text(
        "services:\n"
        "  user: {image: app, secrets: [token], configs: [site]}\n"
        "  other: {image: app}\n"
        "secrets: {token: {file: ./secret.txt}}\n"
        "configs: {site: {file: ./config.txt}}\n", encoding="utf-8")
    for name in ("secret.txt", "config.txt"):
        (tmp_path / name).write_text("one\n", encoding="utf-8")

    def hashes() -> dict[str, str]:
        stack = load(ProjectOptions(environ={}, cwd=str(tmp_path))).stack
        return {name: service_hash(stack, name) for name in stack.services}

    before = hashes()
    (tmp_path / changed).write_text("two\n", encoding="utf-8")
    after = hashes()
    assert after["user"] != before["user"]
    assert after["other"] == before["other"]
