"""The document tree every spec stage works on: plain dicts and lists that remember where they came from.

A stack file becomes a tree of ``Map`` (a ``dict`` with ``str`` keys), ``Seq`` (a ``list``) and
plain scalars (``str``, ``int``, ``float``, ``bool``, ``None``). Containers carry positions:

- ``Map.pos`` / ``Seq.pos``: where the container starts;
- ``Map.key_pos[key]``: where ``key`` is written (used for errors about the key or its value);
- ``Seq.item_pos[i]``: where item ``i`` starts.

Compose's merge tags are kept as markers until the merge stage resolves them:

- ``Reset(pos)`` stands for a value tagged ``!reset`` (whatever was written after the tag);
- ``Override(value, pos)`` wraps a value tagged ``!override``.

Stages never mutate a tree they were given; they build new containers and carry positions over
with ``Map.derive`` / ``Seq.derive``. This module only defines the data and small helpers to
walk it; it reads no files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stackd.errors import Pos

Scalar = str | int | float | bool | None


class Map(dict[str, Any]):
    """A YAML mapping with the position of itself and of each key."""

    __slots__ = ("key_pos", "pos")

    def __init__(self, items: Iterable[tuple[str, Any]] = (), pos: Pos | None = None,
                 key_pos: dict[str, Pos] | None = None) -> None:
        super().__init__(items)
        self.pos = pos
        self.key_pos: dict[str, Pos] = dict(key_pos or {})

    def derive(self, items: Iterable[tuple[str, Any]] = ()) -> Map:
        """A new Map with this one's positions (for the keys it still has)."""
        out = Map(items, self.pos)
        out.key_pos = {k: p for k, p in self.key_pos.items() if k in out}
        return out

    def where(self, key: str) -> Pos | None:
        return self.key_pos.get(key, self.pos)

    def __reduce__(self) -> Any:  # keep positions through copy/deepcopy
        return (_rebuild_map, (list(self.items()), self.pos, self.key_pos))


class Seq(list[Any]):
    """A YAML sequence with the position of itself and of each item."""

    __slots__ = ("item_pos", "pos")

    def __init__(self, items: Iterable[Any] = (), pos: Pos | None = None,
                 item_pos: list[Pos | None] | None = None) -> None:
        super().__init__(items)
        self.pos = pos
        self.item_pos: list[Pos | None] = list(item_pos) if item_pos is not None else [pos] * len(self)

    def derive(self, items: Iterable[tuple[Any, Pos | None]] = ()) -> Seq:
        """A new Seq from ``(value, position)`` pairs."""
        out = Seq((), self.pos, [])
        for value, p in items:
            out.append(value)
            out.item_pos.append(p)
        return out

    def with_pos(self) -> Iterator[tuple[Any, Pos | None]]:
        for i, v in enumerate(self):
            yield v, (self.item_pos[i] if i < len(self.item_pos) else self.pos)

    def where(self, index: int) -> Pos | None:
        return self.item_pos[index] if 0 <= index < len(self.item_pos) else self.pos

    def __reduce__(self) -> Any:
        return (_rebuild_seq, (list(self), self.pos, self.item_pos))


def _rebuild_map(items: list[tuple[str, Any]], pos: Pos | None, key_pos: dict[str, Pos]) -> Map:
    return Map(items, pos, key_pos)


def _rebuild_seq(items: list[Any], pos: Pos | None, item_pos: list[Pos | None]) -> Seq:
    return Seq(items, pos, item_pos)


@dataclass(frozen=True)
class Reset:
    """A value tagged ``!reset``: the merge removes the key (or empties the value)."""

    pos: Pos | None = None


@dataclass(frozen=True)
class Override:
    """A value tagged ``!override``: the merge replaces instead of merging."""

    value: Any
    pos: Pos | None = None


def position_of(root: Any, path: tuple[str | int, ...]) -> Pos | None:
    """The position of the node at ``path`` (or of its nearest ancestor that has one)."""
    best: Pos | None = getattr(root, "pos", None)
    node = root
    for part in path:
        if isinstance(node, Map) and isinstance(part, str) and part in node:
            best = node.key_pos.get(part, best)
            node = node[part]
        elif isinstance(node, Seq) and isinstance(part, int) and 0 <= part < len(node):
            best = node.where(part) or best
            node = node[part]
        else:
            break
        if isinstance(node, Override):
            node = node.value
    return best


def plain(node: Any) -> Any:
    """The tree as plain dicts and lists (markers resolved away: Override unwrapped, Reset → None)."""
    if isinstance(node, Override):
        return plain(node.value)
    if isinstance(node, Reset):
        return None
    if isinstance(node, dict):
        return {k: plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def to_tree(value: Any, pos: Pos | None = None) -> Any:
    """Wrap plain data (e.g. built by a stage) into Map/Seq with one position for all of it."""
    if isinstance(value, Map | Seq):
        return value
    if isinstance(value, dict):
        return Map(((str(k), to_tree(v, pos)) for k, v in value.items()), pos,
                   dict.fromkeys((str(k) for k in value), pos) if pos else {})
    if isinstance(value, list):
        return Seq((to_tree(v, pos) for v in value), pos)
    return value


def dotted(path: Iterable[str | int]) -> str:
    """``("services", "web", "ports", 0)`` → ``services.web.ports[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
