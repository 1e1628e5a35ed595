"""Bind the merged tree to the frozen models, with every mistake reported at its line; and back to data.

``bind(tree, project=...)`` runs pydantic once over the whole stack, turns each validation error
into a ``Problem`` (file:line from the tree, dotted YAML path, a plain message and a "did you mean"
hint), adds the checks across the tree (``stackd.spec.consistency``: references, container
names, dependency cycles...) and raises ONE ``SpecError`` with all of them. Keys Compose accepts
but stackd ignores, and files that load but cannot run as written, come back as warnings.
``to_compose_dict(stack)`` is the inverse, for ``stack config``. Pure: no I/O, nothing printed,
no process-wide state touched.
"""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from stackd.errors import Pos, Problem, SpecError, Warning_
from stackd.spec.consistency import cross_checks
from stackd.spec.hints import did_you_mean, show
from stackd.spec.models import Config, DependsOn, EnvFile, Port, Secret, Service, Stack
from stackd.spec.tree import Map, dotted, position_of
from stackd.spec.unsupported import unimplemented

Path = tuple[str | int, ...]

# fields of the models that are filled by stackd and never read from a file
_INTERNAL: dict[type[BaseModel], frozenset[str]] = {
    Stack: frozenset({"groups"}), Service: frozenset({"name"}), Secret: frozenset({"digest", "value"}),
    Config: frozenset({"digest", "value"}),
}
# fields written by ``to_compose_dict`` even when left at their default (Compose's ``config`` shows them)
_SHOWN: dict[type[BaseModel], frozenset[str]] = {
    DependsOn: frozenset({"condition", "required"}), Port: frozenset({"protocol", "mode"}),
    EnvFile: frozenset({"required"}),
}
_EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "int_parsing": "an integer",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "list_type": "a list",
    "none_required": "null",
}
_BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "greater than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


# ---------------------------------------------------------------------------------------- errors → problems


def _tree_path(tree: Any, loc: tuple[Any, ...]) -> tuple[Path, bool]:
    """Follow a pydantic ``loc`` through the tree: (YAML path, whether parts of loc were not in the tree)."""
    path: list[str | int] = []
    node = tree
    skipped = False
    for part in loc:
        fits = (isinstance(node, dict) and isinstance(part, str) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if not fits:
            skipped = True
            continue
        node = node[part]
        path.append(part)
    return tuple(path), skipped


def _strip(tp: Any) -> list[Any]:
    """The alternatives of an annotation (Annotated and Optional unwrapped)."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        out: list[Any] = []
        for arg in get_args(tp):
            if arg is not type(None):
                out.extend(_strip(arg))
        return out
    return [tp]


def _step(tp: Any, part: Any) -> Any:
    for alt in _strip(tp):
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            if part == alt.__name__:
                return alt
            if isinstance(part, str) and part in alt.model_fields:
                return alt.model_fields[part].annotation
        elif get_origin(alt) is dict and isinstance(part, str):
            return get_args(alt)[1]
        elif get_origin(alt) is list and isinstance(part, int):
            return get_args(alt)[0]
    return None


def allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys a file may write in the mapping at pydantic ``loc`` (empty when unknown)."""
    tp: Any = Stack
    for part in loc:
        if isinstance(part, str) and part.endswith("]") and "[" in part:
            continue  # a union alternative's tag (``dict[str,X]``, ``function-after[...]``), not a key
        tp = _step(tp, part)
        if tp is None:
            return []
    keys: list[str] = []
    for alt in _strip(tp):
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            keys.extend(k for k in alt.model_fields if k not in _INTERNAL.get(alt, ()))
            if alt is Stack:
                keys.append("x-stackd")
    return keys


def _describe(e: ErrorDetails, loc: tuple[Any, ...]) -> tuple[str | None, str, str]:
    """(what was expected, full message, hint) for one pydantic error."""
    kind, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    if kind in _EXPECTED:
        return _EXPECTED[kind], f"expected {_EXPECTED[kind]}, got {show(value)}", ""
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        shown = ", ".join(f"`{o}`" for o in options)
        hint = did_you_mean(str(value), options) if isinstance(value, str) else ""
        return f"one of {shown}", f"expected one of {shown}, got {show(value)}", hint
    if kind == "extra_forbidden":
        key = str(loc[-1])
        return None, f"unknown key `{key}`", did_you_mean(key, allowed_keys(loc[:-1]))
    if kind == "missing":
        return None, f"missing required key `{loc[-1]}`", ""
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return None, f"must be {words} {ctx.get(name)}, got {show(value)}", ""
    if kind == "string_pattern_mismatch":
        if loc == ("name",):
            return None, f"invalid project name {show(value)}", (
                "use lowercase letters, digits, dashes and underscores, starting with a letter or a digit")
        if loc and loc[-1] == "[key]":
            return None, f"invalid name {show(value)}", "use letters, digits, `.`, `_` and `-`"
        if loc and loc[-1] == "container_name":
            return None, f"invalid container name {show(value)}", (
                "use letters, digits, `.`, `_` and `-`, starting with a letter or a digit")
        return None, f"{show(value)} does not have the expected form", ""
    if kind in ("value_error", "assertion_error"):
        return None, str(ctx.get("error", e["msg"])), ""
    return None, e["msg"][:1].lower() + e["msg"][1:], ""


def problems_from(exc: ValidationError, tree: Any) -> list[Problem]:
    """Every error of one validation, as problems at the right line (union alternatives folded)."""
    entries: list[tuple[Path, bool, ErrorDetails, tuple[Any, ...]]] = []
    for e in exc.errors(include_url=False):
        loc = tuple(e["loc"])
        tree_loc = ("x-stackd", *loc) if loc[:1] == ("groups",) else loc
        path, skipped = _tree_path(tree, tree_loc)
        if e["type"] == "missing":
            path = (*path, str(loc[-1]))
        entries.append((path, skipped and (not loc or loc[-1] != "[key]"), e, loc))
    below = {p[:i] for p, _, _, _ in entries for i in range(len(p))}
    grouped: dict[Path, list[tuple[str | None, str, str]]] = {}
    for path, skipped, e, loc in entries:
        if skipped and path in below:  # a union alternative that did not fit; a deeper error explains
            continue
        grouped.setdefault(path, []).append(_describe(e, loc))
    out: list[Problem] = []
    for path, described in grouped.items():
        expected = [d[0] for d in described]
        _, message, hint = described[0]
        if len(described) > 1 and all(expected):  # alternatives of a union: "expected a or b, got c"
            got = message.rsplit(", got ", 1)[-1]
            message = f"expected {' or '.join(dict.fromkeys(x for x in expected if x))}, got {got}"
            hint = next((d[2] for d in described if d[2]), "")
        where = path[:-1] if path and described[0][1].startswith("missing required key") else path
        out.append(Problem(message, position_of(tree, where), dotted(path), hint))
    return out


# ---------------------------------------------------------------------------------------- bind


def _pre_checks(tree: Map) -> tuple[list[Problem], list[Warning_]]:
    """Keys that pydantic cannot judge: stackd's own fields written in a file, ``x-stackd``, ``version``."""
    problems: list[Problem] = []
    warnings: list[Warning_] = []
    if "version" in tree:
        warnings.append(Warning_("obsolete and ignored; remove it", tree.where("version"), "version"))
    if "include" in tree:
        warnings.append(Warning_("not resolved while loading; ignored", tree.where("include"), "include"))
    if "groups" in tree:
        problems.append(Problem("unknown key `groups`", tree.where("groups"), "groups",
                                "stackd groups are declared under `x-stackd.groups`"))
    ext = tree.get("x-stackd")
    if "x-stackd" in tree and not isinstance(ext, dict):
        problems.append(Problem(f"expected a mapping, got {show(ext)}", tree.where("x-stackd"), "x-stackd"))
    elif isinstance(ext, Map):
        for key in ext:
            if key != "groups":
                problems.append(Problem(f"unknown key `{key}`", ext.where(key), f"x-stackd.{key}",
                                        did_you_mean(key, ["groups"]) or "x-stackd has only `groups`"))
    internal = (("services", "name"), ("secrets", "digest"), ("secrets", "value"), ("configs", "digest"),
                ("configs", "value"))
    for section, field in internal:
        entries = tree.get(section)
        if isinstance(entries, Map):
            for name, spec in entries.items():
                if isinstance(spec, Map) and field in spec:
                    problems.append(Problem(f"unknown key `{field}`", spec.where(field),
                                            dotted((section, name, field))))
    return problems, warnings


def bind(tree: Map, *, project: str, consistency: bool = True) -> tuple[Stack, list[Warning_]]:
    """Validate the merged, canonical tree and bind it; raise one SpecError with every problem found.

    ``project`` becomes ``Stack.name``. ``consistency=False`` skips the checks that every name used is
    declared (see ``cross_checks``). Returns the stack and the warnings, in file order.
    """
    if not isinstance(tree, Map):
        raise SpecError(Problem(f"the top level of a stack must be a mapping, got {show(tree)}"))
    problems, warnings = _pre_checks(tree)
    data = {k: v for k, v in tree.items() if k != "groups"}
    data["name"] = project
    stack: Stack | None = None
    try:
        stack = Stack.model_validate(data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, tree))
    found, cross_warnings = cross_checks(tree, references=consistency)
    problems.extend(found)
    if problems:
        raise SpecError(problems)
    assert stack is not None
    found_warnings = [*warnings, *cross_warnings, *unimplemented(tree)]
    return stack, sorted(found_warnings, key=lambda w: (w.pos is None, w.pos or Pos("", 0)))


# ---------------------------------------------------------------------------------------- back to data


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _dump_model(value)
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    return value


_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}


def _defaults(cls: type[BaseModel]) -> dict[str, Any]:
    if cls not in _DEFAULTS:
        fields = cls.model_fields.items()
        _DEFAULTS[cls] = {name: f.get_default(call_default_factory=True) for name, f in fields}
    return _DEFAULTS[cls]


def _dump_model(model: BaseModel) -> dict[str, Any]:
    """Fields set, shown or not at their default; never None, never an empty default collection."""
    out: dict[str, Any] = {}
    cls = type(model)
    skip = _INTERNAL.get(cls, frozenset())
    fields_set = model.model_fields_set | _SHOWN.get(cls, frozenset())
    for name, default in _defaults(cls).items():
        value = getattr(model, name)
        if value is None or name in skip:
            continue
        if value == default and (isinstance(value, dict | list) or name not in fields_set):
            continue
        out[name] = _dump(value)
    return out


def to_compose_dict(stack: Stack) -> dict[str, Any]:
    """The stack as plain data in Compose's long form and key order (for ``stack config``)."""
    body = _dump_model(stack)
    out: dict[str, Any] = {"name": stack.name}
    for key in ("services", "networks", "volumes", "secrets", "configs", "models"):
        if key in body:
            out[key] = body[key]
    implicit = any(svc.group == "default" for svc in stack.services.values())  # see Stack._prepare
    groups = {name: _dump_model(g) for name, g in stack.groups.items()
              if not (name == "default" and implicit and g == type(g)())}
    if groups:
        out["x-stackd"] = {"groups": groups}
    return out


__all__ = ["allowed_keys", "bind", "cross_checks", "did_you_mean", "problems_from", "show", "to_compose_dict"]
