""".dockerignore files and the build context they select, with Docker's matching rules.

Reading (``parse_dockerignore``): a line starting with ``#`` is a comment; blank lines are
skipped; surrounding whitespace is trimmed; a leading ``!`` makes an exception; each pattern is
cleaned like Go's ``filepath.Clean`` (``./`` and duplicate slashes go, ``..`` is resolved) and a
leading ``/`` is dropped, so ``/foo/bar/``, ``./foo/bar`` and ``foo/bar`` are the same pattern.

Matching (``IgnoreMatcher``) follows Docker's pattern matcher: ``*`` and ``?`` never cross a
``/``; ``**`` matches any number of directories (``**/`` also none); ``[...]`` is a character
class; ``\\`` escapes. A path is excluded when the last pattern that matches it, or one of its
parent directories, is not an exception. Patterns are anchored at the context root: ``foo``
matches ``foo`` and everything under it, not ``a/foo``.

``context_files`` walks a context directory (without following symlinks) and lists what a build
may use. Besides that walk, nothing here touches the filesystem.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stackd.errors import Pos, Problem, SpecError

IGNORE_FILE = ".dockerignore"


def clean(pattern: str) -> str:
    """``pattern`` cleaned as Go's ``filepath.Clean`` does (``.`` for an empty result)."""
    if not pattern:
        return "."
    cleaned = posixpath.normpath(pattern)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def parse_dockerignore(text: str, file: str = IGNORE_FILE) -> tuple[str, ...]:
    """The patterns of a .dockerignore file (exceptions keep their ``!``); ``SpecError`` naming
    the line of every malformed pattern."""
    patterns: list[str] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        entry = f"!{pattern}" if invert else pattern
        try:
            _Pattern.compile(entry)
        except ValueError as exc:
            problems.append(Problem(str(exc), Pos(file, number, 1)))
            continue
        patterns.append(entry)
    if problems:
        raise SpecError(problems)
    return tuple(patterns)


def read_dockerignore(context_dir: Path, dockerfile: Path | None = None) -> tuple[str, ...]:
    """The ignore patterns of a build: ``<Dockerfile>.dockerignore`` beside the Dockerfile when
    there is one (Docker prefers it), else the context's ``.dockerignore``, else none."""
    candidates = [dockerfile.with_name(dockerfile.name + IGNORE_FILE)] if dockerfile is not None else []
    candidates.append(context_dir / IGNORE_FILE)
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(Problem(f"cannot read {path}: {exc}", Pos(str(path), 1, 1))) from exc
        return parse_dockerignore(text, str(path))
    return ()


@dataclass(frozen=True)
class _Pattern:
    exclusion: bool
    cleaned: str
    regex: re.Pattern[str]
    suffix: str | None  # a ``**<literal>`` pattern matches by suffix, as Docker's matcher does

    @classmethod
    def compile(cls, pattern: str) -> _Pattern:
        exclusion = pattern.startswith("!")
        if exclusion:
            if len(pattern) == 1:
                raise ValueError('illegal exclusion pattern: "!"')
            pattern = pattern[1:]
        cleaned = clean(pattern.strip())
        regex, suffix = _translate(cleaned)
        try:
            return cls(exclusion, cleaned, re.compile(regex), suffix)
        except re.error as exc:
            raise ValueError(f"bad pattern {pattern!r}: {exc}") from None

    def matches(self, path: str) -> bool:
        if self.suffix is not None:
            return path.endswith(self.suffix) or (self.suffix.startswith("/") and path == self.suffix[1:])
        return self.regex.fullmatch(path) is not None


def _translate(pattern: str) -> tuple[str, str | None]:
    """A regular expression for a pattern, and the suffix when it is ``**`` + a literal."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < n and pattern[i] == "*":
                i += 1
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(?:.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i >= n:
                raise ValueError(f"bad pattern {pattern!r}: it ends with an escaping backslash")
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f"bad pattern {pattern!r}: '[' without a closing ']'")
            out.append(pattern[i - 1:end + 1])  # a class, as written
            i = end + 1
        else:
            out.append(re.escape(ch))
    rest = pattern[2:]
    suffix = rest if pattern.startswith("**") and rest and not any(c in rest for c in "*?[]\\") else None
    return "".join(out), suffix


class IgnoreMatcher:
    """Docker's decision for one path (relative, ``/``-separated) given ignore patterns."""

    def __init__(self, patterns: Sequence[str]) -> None:
        compiled = []
        for p in patterns:
            if not p.strip():
                continue
            try:
                compiled.append(_Pattern.compile(p.strip()))
            except ValueError as exc:
                raise SpecError(Problem(f"{IGNORE_FILE}: {exc}")) from None
        self.patterns = tuple(compiled)
        self.has_exceptions = any(p.exclusion for p in self.patterns)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` is left out of the context (it or a parent matches last)."""
        parent = posixpath.dirname(path)
        parents = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.matches(path) or any(
                pattern.matches("/".join(parents[:i + 1])) for i in range(len(parents)))
            if hit:
                matched = not pattern.exclusion
        return matched


def context_files(context_dir: Path, patterns: Sequence[str]) -> list[str]:
    """Every entry of the build context that the patterns keep: directories, files and symlinks
    as ``/``-separated paths relative to ``context_dir``, sorted. An excluded directory is
    still listed when something under it is kept by an exception."""
    matcher = IgnoreMatcher(patterns)
    out: list[str] = []

    def walk(folder: Path, rel: str) -> bool:
        """List what is kept under ``folder``; whether anything was."""
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            raise SpecError(Problem(f"cannot read the build context directory {folder}: {exc}")) from exc
        kept = False
        for entry in entries:
            path = f"{rel}/{entry.name}" if rel else entry.name
            excluded = matcher.excluded(path)
            if entry.is_dir(follow_symlinks=False):
                if excluded and not matcher.has_exceptions:
                    continue
                inner = walk(Path(entry.path), path)
                if not excluded or inner:
                    out.append(path)
                    kept = True
            elif not excluded:
                out.append(path)
                kept = True
        return kept

    if not context_dir.is_dir():
        raise SpecError(Problem(f"the build context {context_dir} is not a directory"))
    walk(context_dir, "")
    return sorted(out)
