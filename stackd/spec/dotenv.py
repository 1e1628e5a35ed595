"""Parse ``.env`` files (the project ``.env``, ``--env-file`` and ``env_file:``) the way Compose does.

One statement per line, blank lines and ``#`` comment lines skipped::

    KEY=value            unquoted: trimmed; " #" starts a comment; ${VAR} is substituted
    export KEY=value     "export " is ignored
    KEY: value           the YAML-like form is accepted too
    KEY='literal'        single quotes: no escapes (except \\'), no substitution, may span lines
    KEY="text\\n"         double quotes: \\n \\r \\t \\a \\b \\f \\v \\\\ \\" \\$ \\0ooo escapes, then
                         substitution; may span lines
    KEY                  a bare name takes its value from the lookup (left out when unset)

Inside a value, ``${VAR}`` reads the lookup first (the process environment) and then the values
read so far (earlier lines, earlier files). Names may contain letters, digits, ``_ . - [ ]``.
After a closing quote the scan goes on on the same line (``A="x" # note`` is fine).

This module reads files and nothing else: it never changes the process environment.
"""

from __future__ import annotations

import bisect
import json
import re
import unicodedata
from collections.abc import Iterable

from stackd.errors import Pos, Problem, SpecError
from stackd.spec.interpolate import InterpolationError, Lookup, substitute

_SPACE = frozenset("\t\v\f\r \x85\xa0")  # blanks that do not end a line
_WHITE = frozenset("\t\n\v\f\r \x85\xa0")  # blanks between statements (plus Unicode Z* below)
_KEY_PUNCT = frozenset("_.-[]")
_EXPORT = re.compile(r"export[\t\n\f\r ]+")
_ESCAPE = re.compile(r"\\(?:[abcfnrtv$\"\\]|0[0-9]{0,3})")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\", '"': '"', "$": "$$"}
_BOM = "\ufeff"


def parse_dotenv(text: str, *, file: str = "<env>", lookup: Lookup | None = None) -> dict[str, str | None]:
    """The variables defined by ``text`` (the content of an env file named ``file``).

    ``lookup`` resolves bare names and comes first for ``${VAR}`` inside values. Mistakes are
    collected (a bad line is skipped, scanning resumes on the next line) and raised together as
    one ``SpecError`` whose problems name the file and line.
    """
    return _Parser(text, file, lookup, {}).parse()


def read_dotenv(path: str, *, lookup: Lookup | None = None,
                display: str | None = None) -> dict[str, str | None]:
    """Parse the env file at ``path``; ``display`` is the name used in errors (default: ``path``)."""
    name = display if display is not None else path
    return _Parser(_read_text(path, name), name, lookup, {}).parse()


def read_dotenv_files(paths: Iterable[str], lookup: Lookup | None = None) -> dict[str, str | None]:
    """Read several env files in order as one environment; a later file's keys win.

    ``${VAR}`` and bare names look at ``lookup`` first, then at every value read so far: the
    earlier lines of the same file and, below them, the earlier files (Compose's rule for
    repeated ``--env-file``). The first file with mistakes stops the reading.
    """
    merged: dict[str, str | None] = {}
    for path in paths:
        merged = _Parser(_read_text(path, path), path, lookup, merged).parse()
    return merged


def _read_text(path: str, name: str) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        raise SpecError(Problem(f"env file {name} not found", hint="create it or fix the path")) from None
    except IsADirectoryError:
        raise SpecError(Problem(f"env file {name} is a directory, not a file")) from None
    except UnicodeDecodeError as exc:
        raise SpecError(Problem(f"env file {name} is not valid UTF-8 (byte {exc.start})")) from None
    except OSError as exc:
        raise SpecError(Problem(f"env file {name} cannot be read: {exc.strerror}")) from None


# --- the scanner ---------------------------------------------------------------------------------


def _is_white(c: str) -> bool:
    return c in _WHITE or (c > "\xff" and unicodedata.category(c) in ("Zs", "Zl", "Zp"))


def _is_key_char(c: str) -> bool:
    if c.isascii():
        return c.isalnum() or c in _KEY_PUNCT
    return unicodedata.category(c)[0] in "LN"


def _rstrip_white(text: str) -> str:
    end = len(text)
    while end and _is_white(text[end - 1]):
        end -= 1
    return text[:end]


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


class _Parser:
    """A cursor over the text of one env file."""

    def __init__(self, text: str, file: str, lookup: Lookup | None, earlier: dict[str, str | None]) -> None:
        self.text = text.removeprefix(_BOM)
        self.file = file
        self.lookup = lookup
        self.out = dict(earlier)  # values read so far; this file's keys are added in order
        self.problems: list[Problem] = []
        self._newlines = [i for i, c in enumerate(text) if c == "\n"]

    def pos(self, offset: int) -> Pos:
        row = bisect.bisect_left(self._newlines, offset)
        start = self._newlines[row - 1] + 1 if row else 0
        return Pos(self.file, row + 1, offset - start + 1)

    def fail(self, offset: int, message: str, hint: str = "") -> None:
        self.problems.append(Problem(message, self.pos(offset), hint=hint))

    def resolve(self, name: str) -> str | None:
        if self.lookup is not None:
            value = self.lookup(name)
            if value is not None:
                return value
        return self.out.get(name)

    def parse(self) -> dict[str, str | None]:
        i = self.next_statement(0)
        while i >= 0:
            i = self.next_statement(self.statement(i))
        if self.problems:
            raise SpecError(self.problems)
        return self.out

    def next_statement(self, i: int) -> int:
        """Index of the next statement at or after ``i`` (blanks and comment lines skipped), or -1."""
        text = self.text
        n = len(text)
        while i < n:
            c = text[i]
            if c == "#":
                i = text.find("\n", i)
                if i < 0:
                    return -1
            elif _is_white(c):
                i += 1
            else:
                return i
        return -1

    def end_of_line(self, i: int) -> int:
        j = self.text.find("\n", i)
        return len(self.text) if j < 0 else j

    def statement(self, start: int) -> int:
        """Parse the statement at ``start``; returns where to look for the next one."""
        text = self.text
        n = len(text)
        i = start
        m = _EXPORT.match(text, i)
        if m:
            i += len("export")
            while i < n and text[i] in _SPACE:
                i += 1
        key_start = i
        while i < n and text[i] not in "=:\n":
            c = text[i]
            if c not in _SPACE and not _is_key_char(c):
                line = text[start:self.end_of_line(start)]
                self.fail(i, f"unexpected character {_quote(c)} in variable name {_quote(line)}",
                          "a name may contain letters, digits and _ . - [ ]; write NAME=VALUE")
                return self.end_of_line(i)
            i += 1
        key = _rstrip_white(text[key_start:i])
        if " " in key:
            self.fail(start, "key cannot contain a space", "write NAME=VALUE; quote a value that has spaces")
            return self.end_of_line(i)
        if i >= n or text[i] == "\n":  # a bare name: inherited from the lookup
            value = self.resolve(key)
            if value is not None:
                self.out[key] = value
            return i + 1
        i += 1
        while i < n and text[i] in _SPACE:
            i += 1
        quote = text[i] if i < n and text[i] in "'\"" else ""
        if not quote:
            end = self.end_of_line(i)
            raw = text[i:end]
            cut = raw.find(" #")
            if cut >= 0:
                raw = raw[:cut]
            self.assign(key, _rstrip_white(raw), i)
            return end + 1
        closed = self.quoted(i, quote)
        if closed is None:
            shown = text[i:self.end_of_line(i)]
            self.fail(i, f"unterminated quoted value {shown}", f"add the closing {quote}")
            return n
        raw, after = closed
        if quote == '"':
            self.assign(key, _unescape(raw), i)
        else:
            self.out[key] = raw
        return after

    def quoted(self, i: int, quote: str) -> tuple[str, int] | None:
        """The raw text between the quote at ``i`` and its partner, and the index after it."""
        text = self.text
        n = len(text)
        chars: list[str] = []
        j = i + 1
        start = j
        while j < n:
            c = text[j]
            if c == quote:
                chars.append(text[start:j])
                return "".join(chars), j + 1
            if c == "\\":
                if j + 1 >= n:
                    return None
                chars.append(text[start:j])
                nxt = text[j + 1]
                chars.append(nxt if nxt == quote else "\\" + nxt)
                j += 2
                start = j
                continue
            j += 1
        return None

    def assign(self, key: str, template: str, offset: int) -> None:
        try:
            self.out[key] = substitute(template, self.resolve)
        except InterpolationError as exc:
            self.fail(offset, *exc.in_file())


def _unescape(raw: str) -> str:
    """Decode the escapes of a double-quoted value (``\\$`` becomes ``$$``, i.e. a literal ``$``)."""
    return _ESCAPE.sub(_escape, raw)


def _escape(m: re.Match[str]) -> str:
    seq = m.group()
    if seq[1] != "0":
        return _SIMPLE_ESCAPES.get(seq[1], seq)
    digits = seq[2:]
    # "\0ooo" is an octal byte; anything shorter or not octal keeps its digits without the "0"
    if len(digits) == 3 and all(d in "01234567" for d in digits) and int(digits, 8) <= 0xFF:
        return chr(int(digits, 8))
    return "\\" + digits
