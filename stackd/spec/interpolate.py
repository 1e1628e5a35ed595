"""Compose variable substitution: ``$VAR``, ``${VAR}``, ``${VAR:-default}`` and friends.

``substitute`` expands one string; ``interpolate_tree`` expands every string value of a document
tree (mapping keys are left alone) and reports all failures at once as one ``SpecError``.

The syntax, with the behaviour of Compose's reference loader:

- ``$$`` is a literal ``$``; a ``$`` not followed by a name or ``{`` is kept as it is (``a $ b``).
- ``$NAME`` and ``${NAME}``: NAME is ``[A-Za-z_][A-Za-z0-9_]*``; an unset variable gives ``""``.
- ``${NAME:-word}`` / ``${NAME-word}``: ``word`` when NAME is unset or empty / only when unset.
- ``${NAME:+word}`` / ``${NAME+word}``: ``word`` when NAME is set and not empty / when set at all,
  otherwise NAME's own value (``""``).
- ``${NAME:?msg}`` / ``${NAME?msg}``: fail with ``msg`` when NAME is unset or empty / unset.
- ``word`` and ``msg`` are templates themselves (``${A:-${B:-x}}``); their ``{`` and ``}`` must
  balance (``${X:-{"a":1}}`` is the JSON text ``{"a":1}``). They are expanded only when used, so an
  unused default never looks anything up and never fails on a missing variable.
- Anything else after ``${`` (``${}``, ``${ x}``, ``${x }``, ``${x!}``, ``${x:y}``, an unclosed ``${x``)
  is invalid.

The scanner reads each character once (nested defaults are parsed in the same pass), so the work
is linear in the length of the template. This module does no I/O: the caller supplies the lookup,
which must not have side effects beyond reading.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from stackd.errors import Pos, Problem, SpecError, Warning_
from stackd.spec.tree import Map, Override, Seq, dotted

Lookup = Callable[[str], str | None]
"""The value of a variable, or ``None`` when it is not set."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_IN_WORD = re.compile(r"[${}]")
_OPERATORS = frozenset("-+?")
_MAX_DEPTH = 200

Path = tuple[str | int, ...]
_LEAVES = frozenset({int, float, bool, type(None)})

_HINT_SYNTAX = "write $$ for a literal $; a variable reads ${NAME}, ${NAME:-default} or ${NAME:?error}"


class InterpolationError(Exception):
    """A template that cannot be expanded: bad syntax, or a required variable without a value.

    ``message`` is the full text; ``syntax`` tells a malformed template (fixable in the file) from
    a missing required variable (fixable in the environment). The caller adds file, line and path.
    """

    def __init__(self, message: str, *, syntax: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.syntax = syntax

    def in_file(self) -> tuple[str, str]:
        """The message and hint to show when the template was written in one of the user's files."""
        if self.syntax:
            detail = self.message.removeprefix("Invalid template: ")
            return f"invalid interpolation format: {detail}", _HINT_SYNTAX
        return self.message, "set the variable in the environment or in the .env file"


def substitute(template: str, lookup: Lookup, *, on_unset: Callable[[str], None] | None = None) -> str:
    """``template`` with every variable reference expanded through ``lookup``.

    ``on_unset(name)`` is called for each plain ``$NAME``/``${NAME}`` whose variable is unset (the
    value used is ``""``); references with an operator handle unset variables themselves and are
    not reported. Raises ``InterpolationError``.
    """
    if "$" not in template:
        return template
    return _expand(template, lookup, on_unset)


def interpolate_tree(tree: Any, lookup: Lookup, *, file: str = "",
                     warn: Callable[[Warning_], None] | None = None,
                     problems: list[Problem] | None = None) -> Any:
    """A new tree where every string value (at any depth, also inside ``Override``) is substituted.

    Mapping keys, non-string scalars and ``Reset`` markers are kept as they are; positions are
    carried over. Every failing value becomes a ``Problem`` with its dotted path, placed where the
    value is written (its key's position in a mapping, the item's in a sequence; line 1 of ``file``
    when the tree has no positions); all of them are raised together as one ``SpecError``.
    ``warn`` receives a ``Warning_`` for each unset variable that defaults to an empty string.
    With ``problems`` given, failures are appended there (the failing values stay as written)
    instead of raised, so that a caller can go on and report later stages' problems too.
    """
    walker = _TreeWalker(lookup, file, warn)
    result = walker.walk(tree, (), getattr(tree, "pos", None))
    if walker.problems:
        if problems is None:
            raise SpecError(walker.problems)
        problems.extend(walker.problems)
    return result


# --- the scanner ---------------------------------------------------------------------------------


def _expand(template: str, lookup: Lookup, on_unset: Callable[[str], None] | None) -> str:
    scanner = _Scanner(template, lookup, on_unset)
    try:
        text, _ = scanner.run(0, in_word=False, active=True, depth=0)
    except _Invalid as exc:
        raise InterpolationError(f"Invalid template: {_quote(template)}: {exc.detail}", syntax=True) from None
    return text


class _Invalid(Exception):
    """Internal: a syntax error, turned into an ``InterpolationError`` naming the whole template."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Scanner:
    """One left-to-right pass over a template; nested words are scanned by recursive calls."""

    __slots__ = ("lookup", "on_unset", "text")

    def __init__(self, text: str, lookup: Lookup, on_unset: Callable[[str], None] | None) -> None:
        self.text = text
        self.lookup = lookup
        self.on_unset = on_unset

    def run(self, i: int, *, in_word: bool, active: bool, depth: int) -> tuple[str, int]:
        """Expand from ``i``; in a word (a default, replacement or message) stop at its closing ``}``.

        Returns the expansion and the index just past what was consumed. With ``active`` false the
        text is only checked for syntax: nothing is looked up and nothing fails for a missing value.
        """
        if depth > _MAX_DEPTH:
            raise _Invalid("variables are nested too deeply")
        text = self.text
        n = len(text)
        out: list[str] = []
        braces = 0  # literal "{" ... "}" pairs inside a word
        while True:
            if in_word:
                m = _SPECIAL_IN_WORD.search(text, i)
                j = m.start() if m else -1
            else:
                j = text.find("$", i)
            if j < 0:
                if in_word:
                    raise _Invalid("missing closing '}'")
                out.append(text[i:])
                return "".join(out), n
            out.append(text[i:j])
            c = text[j]
            if c == "{":
                braces += 1
                out.append(c)
                i = j + 1
                continue
            if c == "}":
                if braces == 0:
                    return "".join(out), j + 1
                braces -= 1
                out.append(c)
                i = j + 1
                continue
            nxt = text[j + 1] if j + 1 < n else ""
            if nxt == "$":
                out.append("$")
                i = j + 2
            elif nxt == "{":
                value, i = self.braced(j + 2, active=active, depth=depth)
                out.append(value)
            else:
                m = _NAME.match(text, j + 1)
                if m is None:
                    out.append("$")
                    i = j + 1
                else:
                    out.append(self.plain(m.group(), active))
                    i = m.end()

    def plain(self, name: str, active: bool) -> str:
        if not active:
            return ""
        value = self.lookup(name)
        if value is None:
            if self.on_unset is not None:
                self.on_unset(name)
            return ""
        return value

    def braced(self, i: int, *, active: bool, depth: int) -> tuple[str, int]:
        """Expand ``${...}`` whose name starts at ``i``; returns the value and the index after ``}``."""
        text = self.text
        m = _NAME.match(text, i)
        if m is None:
            found = text[i] if i < len(text) else ""
            if found == "}":
                raise _Invalid("empty variable name in '${}'")
            if not found:
                raise _Invalid("missing variable name and closing '}' after '${'")
            raise _Invalid(f"a variable name must follow '${{', found {_quote(found)}")
        name = m.group()
        k = m.end()
        c = text[k] if k < len(text) else ""
        if c == "}":
            return self.plain(name, active), k + 1
        colon = c == ":"
        op = text[k + 1] if colon and k + 1 < len(text) else ("" if colon else c)
        if op not in _OPERATORS:
            if not c:
                raise _Invalid(f"missing closing '}}' after '${{{name}'")
            raise _Invalid(f"unexpected {_quote(text[k:k + 2] if colon else c)} after '${{{name}': "
                           "expected '}' or one of :- - :+ + :? ?")
        start = k + 2 if colon else k + 1
        value = self.lookup(name) if active else None
        if op == "-":
            use_word = active and (value is None or (colon and value == ""))
        elif op == "+":
            use_word = active and value is not None and (not colon or value != "")
        else:  # "?": the message is needed only when the check fails
            use_word = active and (value is None or (colon and value == ""))
        word, end = self.run(start, in_word=True, active=use_word, depth=depth + 1)
        if op == "?":
            if use_word:
                reason = f": {word}" if word else ""
                raise InterpolationError(f"required variable {name} is missing a value{reason}")
            return value or "", end
        if use_word:
            return word, end
        return value or "", end


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# --- the tree walk ---------------------------------------------------------------------------------


class _TreeWalker:
    """Rebuilds a tree with substituted strings, collecting one ``Problem`` per failing value."""

    def __init__(self, lookup: Lookup, file: str, warn: Callable[[Warning_], None] | None) -> None:
        self.lookup = lookup
        self.file = file
        self.warn = warn
        self.problems: list[Problem] = []

    def walk(self, node: Any, path: Path, pos: Pos | None) -> Any:
        kind = type(node)
        if kind is str or kind in _LEAVES:  # the common cases first: this runs for every node
            return self.string(node, path, pos) if kind is str and "$" in node else node
        if isinstance(node, Map):
            key_pos, default = node.key_pos, node.pos
            items: list[tuple[str, Any]] = []
            changed = False
            for key, value in node.items():
                if type(value) in _LEAVES or (type(value) is str and "$" not in value):
                    items.append((key, value))
                else:
                    new = self.walk(value, (*path, key), key_pos.get(key, default))
                    changed = changed or new is not value
                    items.append((key, new))
            return node.derive(items) if changed else node  # unchanged subtrees are shared, not copied
        if isinstance(node, Seq):
            pairs: list[tuple[Any, Pos | None]] = []
            changed = False
            for i, (value, where) in enumerate(node.with_pos()):
                if type(value) in _LEAVES or (type(value) is str and "$" not in value):
                    pairs.append((value, where))
                else:
                    new = self.walk(value, (*path, i), where)
                    changed = changed or new is not value
                    pairs.append((new, where))
            return node.derive(pairs) if changed else node
        if isinstance(node, Override):
            return Override(self.walk(node.value, path, node.pos or pos), node.pos)
        if isinstance(node, str):  # a str subclass
            return self.string(node, path, pos) if "$" in node else node
        return node

    def string(self, value: str, path: Path, pos: Pos | None) -> str:
        where = pos if pos is not None else (Pos(self.file, 1) if self.file else None)
        on_unset = None if self.warn is None else partial(self.unset, where, path)
        try:
            return _expand(value, self.lookup, on_unset)
        except InterpolationError as exc:
            message, hint = exc.in_file()
            self.problems.append(Problem(message, where, dotted(path), hint))
            return value

    def unset(self, where: Pos | None, path: Path, name: str) -> None:
        if self.warn is not None:
            self.warn(Warning_(f"variable {name} is not set, using an empty string", where, dotted(path)))
