"""Read YAML text into a position-keeping tree (``stackd.spec.tree``).

libyaml (through PyYAML's C parser) builds the node graph; this module turns nodes into
``Map``/``Seq``/scalars itself so that every key and item keeps its file, line and column.
Scalars follow the YAML 1.2 core schema, as Compose's Go loader does: ``yes``/``no``/``on``/
``off`` stay strings, only ``true``/``false`` are booleans. Anchors, aliases and ``<<`` merge
keys work; ``!reset`` and ``!override`` become ``Reset``/``Override`` markers. Duplicate keys
are an error. This module reads text only: finding files is the loader's job.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from stackd.errors import Pos, Problem, SpecError
from stackd.spec.tree import Map, Override, Reset, Seq

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_INT = re.compile(r"^[-+]?(?:[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|0b[01]+)$")
_LEGACY_OCTAL = re.compile(r"^[-+]?0[0-7]+$")  # `mode: 0440` is octal for Compose's Go YAML reader
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$"
                    r"|^\.(?:nan|NaN|NAN)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = {"", "~", "null", "Null", "NULL"}
_QUOTED = ("'", '"', "|", ">")



class _Resolver(yaml.resolver.BaseResolver):
    """Resolves nothing: scalars are typed by ``_typed`` with YAML 1.2 rules, and only explicit
    tags (``!reset``, ``!override``) matter. Skipping PyYAML's regex resolvers is most of the
    parse time saved on large files."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        return ""


class _Loader(_Base, _Resolver):  # type: ignore[misc]
    def __init__(self, stream: str) -> None:
        super().__init__(stream)  # type: ignore[call-arg]


def _typed(value: str) -> Any:
    if value in _NULL:
        return None
    if value in _BOOL:
        return _BOOL[value]
    if _INT.match(value):
        text = value.replace("_", "")
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-")
        if text.startswith("0o"):
            return sign * int(text[2:], 8)
        if text.startswith("0x"):
            return sign * int(text[2:], 16)
        if text.startswith("0b"):
            return sign * int(text[2:], 2)
        if len(text) > 1 and text.startswith("0"):  # 0-prefixed: octal, or not an int at all ("089")
            return sign * int(text, 8) if _LEGACY_OCTAL.match(value) else float(value)
        return sign * int(text, 10)
    if _FLOAT.match(value):
        low = value.lower()
        if low.endswith("inf"):
            return -math.inf if low.startswith("-") else math.inf
        if low.endswith("nan"):
            return math.nan
        return float(value)
    return value


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._active: set[int] = set()

    def pos(self, node: yaml.Node) -> Pos:
        mark = node.start_mark
        return Pos(self.file, mark.line + 1, mark.column + 1)

    def build(self, node: yaml.Node) -> Any:
        tag = node.tag or ""
        if tag == "!reset":
            return Reset(self.pos(node))
        if tag == "!override":
            return Override(self._build_untagged(node), self.pos(node))
        return self._build_untagged(node)

    def _build_untagged(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            if node.style in _QUOTED:
                return node.value
            return _typed(node.value)
        key = id(node)
        if key in self._active:
            self.problems.append(Problem("recursive alias", self.pos(node)))
            return None
        self._active.add(key)
        try:
            if isinstance(node, yaml.SequenceNode):
                seq = Seq((), self.pos(node), [])
                for item in node.value:
                    seq.append(self.build(item))
                    seq.item_pos.append(self.pos(item))
                return seq
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node)
        finally:
            self._active.discard(key)

    def _mapping(self, node: yaml.MappingNode) -> Map:
        out = Map((), self.pos(node))
        merged: list[tuple[str, Any, Pos]] = []
        explicit: set[str] = set()
        for key_node, value_node in node.value:
            is_scalar = isinstance(key_node, yaml.ScalarNode)
            if is_scalar and key_node.value == "<<" and key_node.style not in _QUOTED:
                for source in self._merge_sources(value_node):
                    for k, v in source.items():
                        merged.append((k, v, source.key_pos.get(k, self.pos(value_node))))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem("a mapping key must be a scalar", self.pos(key_node)))
                continue
            raw = self._build_untagged(key_node)
            key = _key_text(raw)
            if key in explicit:
                self.problems.append(Problem(f"mapping key {key!r} is already defined", self.pos(key_node),
                                             hint="remove one of the two"))
                continue
            explicit.add(key)
            out[key] = self.build(value_node)
            out.key_pos[key] = self.pos(key_node)
        for k, v, p in merged:  # explicit keys win over merged ones; earlier merge sources win
            if k not in out:
                out[k] = v
                out.key_pos[k] = p
        return out

    def _merge_sources(self, node: yaml.Node) -> list[Map]:
        value = self.build(node)
        if isinstance(value, Map):
            return [value]
        if isinstance(value, Seq) and all(isinstance(v, Map) for v in value):
            return list(value)
        self.problems.append(Problem("the value of a '<<' merge key must be a mapping or a list of mappings",
                                     self.pos(node)))
        return []


def _key_text(raw: Any) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def parse(text: str, file: str) -> Any:
    """Parse one YAML document into a tree. Raises SpecError naming the file and line."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Pos(file, mark.line + 1, mark.column + 1) if mark else Pos(file, 1)
        raise SpecError(Problem(f"not valid YAML: {exc.problem or exc.context}", pos)) from None
    except yaml.YAMLError as exc:
        raise SpecError(Problem(f"not valid YAML: {exc}", Pos(file, 1))) from None
    if node is None:
        return None
    builder = _Builder(file)
    tree = builder.build(node)
    if builder.problems:
        raise SpecError(builder.problems)
    return tree


def read(path: str, display: str | None = None) -> Any:
    """Read and parse a YAML file; ``display`` is the name used in messages."""
    name = display or path
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise SpecError(Problem(f"no such file: {name}")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem(f"cannot read {name}: {exc}")) from None
    return parse(text, name)
