"""Dockerfile text -> logical lines: parser directives, comments, line continuations, heredocs.

The rules are the Dockerfile parser's: directives (``# syntax=``, ``# escape=``, ``# check=``) are
read only at the top of the file, before the first instruction, comment or empty line;
``escape`` sets the escape character (``\\`` or a backtick). A line ending with the escape
character (trailing blanks allowed) continues on the next one; comment lines and empty lines
inside a continuation are skipped. A RUN, COPY or ADD line that is not in JSON form may open
heredocs (``<<EOF``, ``<<-EOF`` strips leading tabs, ``<<"EOF"`` is not substituted); their
bodies follow the instruction, each up to its terminator line.

Pure: it turns text into ``LogicalLine`` records and collects ``Problem`` s; it knows nothing about
what an instruction means beyond which ones may carry heredocs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from stackd.build.words import split_words
from stackd.errors import Pos, Problem

DIRECTIVES = ("syntax", "escape", "check")
HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})
_DIRECTIVE = re.compile(r"#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*")
_HEREDOC = re.compile(r"([0-9]*)<<(-?)(.+)")
_BOM = "\ufeff"


@dataclass(frozen=True)
class Heredoc:
    """An inline document: its name (the terminator), its content (ends with a newline unless
    empty), whether variables in it are substituted, and whether leading tabs were stripped."""

    name: str
    content: str
    expand: bool = True
    chomp: bool = False


@dataclass(frozen=True)
class LogicalLine:
    """One instruction as the parser sees it: its keyword (as written), the rest of the line with
    continuations joined, its first and last physical lines (1-based), and its heredocs."""

    keyword: str
    rest: str
    line: int
    end_line: int
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True)
class Lines:
    """A Dockerfile split into logical lines, plus its parser directives."""

    escape: str
    directives: dict[str, str]
    lines: tuple[LogicalLine, ...]


def heredoc_marker(word: str) -> tuple[str, bool, bool] | None:
    """``(name, expand, chomp)`` when ``word`` opens a heredoc (``<<EOF``, ``<<-'EOF'``)."""
    m = _HEREDOC.fullmatch(word)
    if m is None or "<" in m.group(3):
        return None
    raw = m.group(3)
    quoted = any(q in raw for q in "'\"")
    name = raw.replace("'", "").replace('"', "")
    if not name:
        return None
    return name, not quoted, m.group(2) == "-"


def is_json_array(text: str) -> bool:
    """Whether ``text`` is a JSON array of strings (the exec form of an instruction)."""
    text = text.strip()
    if not text.startswith("["):
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


class _Reader:
    def __init__(self, text: str, file: str) -> None:
        text = text.removeprefix(_BOM)
        self.raw = [line.removesuffix("\r") for line in text.split("\n")]
        if self.raw and self.raw[-1] == "" and text.endswith("\n"):
            self.raw.pop()
        self.file = file
        self.i = 0
        self.escape = "\\"
        self.directives: dict[str, str] = {}
        self.problems: list[Problem] = []

    def problem(self, line: int, message: str, hint: str = "") -> None:
        self.problems.append(Problem(message, Pos(self.file, line, 1), "", hint))

    def read_directives(self) -> None:
        while self.i < len(self.raw):
            m = _DIRECTIVE.fullmatch(self.raw[self.i].strip())
            if m is None or m.group(1).lower() not in DIRECTIVES:
                return
            key, value = m.group(1).lower(), m.group(2)
            self.i += 1
            if key in self.directives:
                self.problem(self.i, f"only one {key} parser directive can be used")
                continue
            self.directives[key] = value
            if key == "escape":
                if value not in ("\\", "`"):
                    self.problem(self.i, f"invalid escape character {value!r}", "use \\ or `")
                else:
                    self.escape = value

    def continued(self, text: str) -> tuple[str, bool]:
        """``text`` without its trailing escape, and whether the line continues."""
        stripped = text.rstrip(" \t")
        if stripped.endswith(self.escape):
            return stripped[:-1], True
        return text, False

    def logical_lines(self) -> list[LogicalLine]:
        out: list[LogicalLine] = []
        while self.i < len(self.raw):
            text = self.raw[self.i].lstrip()
            self.i += 1
            if not text or text.startswith("#"):
                continue
            start = self.i
            line, more = self.continued(text)
            while more and self.i < len(self.raw):
                nxt = self.raw[self.i]
                self.i += 1
                if not nxt.strip() or nxt.lstrip().startswith("#"):
                    continue
                part, more = self.continued(nxt)
                line += part
            line = line.strip()
            if not line:
                continue
            parts = line.split(None, 1)
            keyword, rest = parts[0], parts[1] if len(parts) > 1 else ""
            heredocs = self.heredocs(keyword, rest, start)
            out.append(LogicalLine(keyword, rest, start, self.i, heredocs))
        return out

    def heredocs(self, keyword: str, rest: str, start: int) -> tuple[Heredoc, ...]:
        if keyword.upper() not in HEREDOC_INSTRUCTIONS or "<<" not in rest:
            return ()
        args = [w for w in split_words(rest, self.escape) if not w.text.startswith("--")]
        if args and is_json_array(rest[args[0].start:]):
            return ()
        out: list[Heredoc] = []
        for word in (w.text for w in args):
            marker = heredoc_marker(word)
            if marker is None:
                continue
            name, expand, chomp = marker
            body: list[str] = []
            while True:
                if self.i >= len(self.raw):
                    self.problem(start, f"unterminated heredoc <<{name}",
                                 f"end it with a line that holds only {name}")
                    return tuple(out)
                line = self.raw[self.i]
                self.i += 1
                if (line.lstrip("\t") if chomp else line) == name:
                    break
                body.append(line.lstrip("\t") if chomp else line)
            content = "".join(f"{b}\n" for b in body)
            out.append(Heredoc(name, content, expand, chomp))
        return tuple(out)


def split_lines(text: str, file: str = "Dockerfile") -> tuple[Lines, list[Problem]]:
    """The logical lines of a Dockerfile and the problems found while splitting it."""
    reader = _Reader(text, file)
    reader.read_directives()
    lines = reader.logical_lines()
    return Lines(reader.escape, dict(reader.directives), tuple(lines)), reader.problems
