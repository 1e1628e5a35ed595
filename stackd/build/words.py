"""Docker's word rules for Dockerfile arguments: splitting a line into words, and substituting
``$VAR`` / ``${VAR}`` / ``${VAR:-word}`` (and the other forms) with quotes and escapes processed.

``split_words`` finds word boundaries the way the Dockerfile parser does (whitespace outside quotes
ends a word) but keeps quotes and escape characters in the words: they are processed later, by
``expand``, when the instruction's values are substituted. ``expand`` follows BuildKit's shell
lexer: single quotes are literal; in double quotes only ``$``, ``"`` and the escape character
can be escaped; outside quotes the escape character makes the next character literal; an unset
variable is empty. Modifiers: ``:-`` ``-`` (default), ``:+`` ``+`` (alternative), ``:?`` ``?``
(error when unset/empty). Any other modifier is an error, as it is for Docker.

Pure string functions: errors are ``WordError`` (a ``ValueError``) carrying a message that the
caller places at a file and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_MODIFIERS = frozenset({":-", "-", ":+", "+", ":?", "?"})


class WordError(ValueError):
    """A word that cannot be processed (an unterminated quote, a bad substitution)."""


@dataclass(frozen=True)
class Word:
    """One word of a line as written (quotes and escapes kept) and where it is in the line."""

    text: str
    start: int
    end: int


def split_words(line: str, escape: str = "\\") -> list[Word]:
    """The whitespace-separated words of ``line``; quoted whitespace does not split, and an escape
    character keeps the character after it in the word (both are kept)."""
    words: list[Word] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        quote = ""
        while i < n:
            ch = line[i]
            if not quote and ch.isspace():
                break
            if ch == escape and quote != "'":
                i += 2 if i + 1 < n else 1
                continue
            if quote and ch == quote:
                quote = ""
            elif not quote and ch in "'\"":
                quote = ch
            i += 1
        words.append(Word(line[start:i], start, i))
    return words


def expand(word: str, env: Mapping[str, str], escape: str = "\\", *, quotes: bool = True) -> str:
    """``word`` with variables substituted from ``env`` and quotes/escapes processed.
    With ``quotes=False`` (heredoc bodies) quote characters are kept as they are."""
    return _Expander(word, env, escape, quotes).until("")


class _Expander:
    def __init__(self, text: str, env: Mapping[str, str], escape: str, quotes: bool) -> None:
        self.text = text
        self.i = 0
        self.env = env
        self.escape = escape
        self.quotes = quotes

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def take(self) -> str:
        ch = self.peek()
        self.i += 1 if ch else 0
        return ch

    def until(self, stop: str) -> str:
        """Process up to ``stop`` (consumed) or, when ``stop`` is empty, to the end."""
        out: list[str] = []
        while self.i < len(self.text):
            ch = self.text[self.i]
            if stop and ch == stop:
                self.i += 1
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
            elif self.quotes and ch == "'":
                out.append(self.single_quoted())
            elif self.quotes and ch == '"':
                out.append(self.double_quoted())
            else:
                self.i += 1
                if ch == self.escape:
                    if self.i >= len(self.text):
                        break  # an escape at the very end is dropped
                    ch = self.take()
                out.append(ch)
        if stop:
            raise WordError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(out)

    def single_quoted(self) -> str:
        self.i += 1
        end = self.text.find("'", self.i)
        if end < 0:
            raise WordError("unexpected end of statement while looking for matching single-quote")
        value = self.text[self.i:end]
        self.i = end + 1
        return value

    def double_quoted(self) -> str:
        self.i += 1
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise WordError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.i += 1
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.i += 1
            if ch == self.escape:
                nxt = self.peek()
                if not nxt:
                    continue
                if nxt in ('"', "$", self.escape):
                    ch = self.take()
            out.append(ch)

    def name(self) -> str:
        start = self.i
        while self.peek() and self.peek() in _NAME_CHARS:
            self.i += 1
        return self.text[start:self.i]

    def dollar(self) -> str:
        self.i += 1  # the '$'
        if self.peek() == "{":
            self.i += 1
            return self.braced()
        if self.peek() and self.peek() in _NAME_CHARS:
            return self.env.get(self.name(), "")
        return "$"

    def braced(self) -> str:
        name = self.name()
        if not name:
            raise WordError("bad substitution: a variable name must follow '${'")
        ch = self.take()
        if not ch:
            raise WordError("unexpected end of statement while looking for matching }")
        if ch == "}":
            return self.env.get(name, "")
        modifier = ch + self.take() if ch == ":" else ch
        if modifier not in _MODIFIERS:
            raise WordError(f"unsupported modifier ({modifier}) in substitution ${{{name}{modifier}...}}")
        word = self.until("}")
        value = self.env.get(name)
        empty_counts = modifier.startswith(":")
        unset = value is None or (empty_counts and value == "")
        kind = modifier[-1]
        if kind == "-":
            return word if unset else str(value)
        if kind == "+":
            return "" if unset else word
        if unset:
            raise WordError(f"{name}: {word or ('is not set' if value is None else 'is empty')}")
        return str(value)
