"""The one error tree of stackd.

::

    StackdError                      anything stackd raises on purpose
    ├── SpecError                    the user's files: file, line, YAML path, what was expected.
    │                                Exit code 2, never retried, nothing on the host changes.
    ├── PlanError                    desired state that cannot be planned (e.g. a missing dependency
    │                                at run time). Exit code 1.
    └── DriverError                  a side effect failed (drivers translate foreign exceptions
        ├── TransientDriverError     with ``raise ... from exc``); worth retrying later
        └── PermanentDriverError     retrying will not help

A ``SpecError`` carries every ``Problem`` found in the files, so that a user sees all mistakes of
a file at once. This module has no dependencies inside stackd and must stay that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Pos(NamedTuple):
    """Where a node of a YAML document starts (1-based line and column).

    A NamedTuple rather than a dataclass: the YAML reader makes one per node, and tuple
    construction is several times cheaper than a frozen dataclass's.
    """

    file: str
    line: int
    column: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One mistake in the user's input."""

    message: str
    pos: Pos | None = None
    path: str = ""
    hint: str = ""

    def render(self) -> str:
        where = str(self.pos) if self.pos else "<input>"
        text = f"{where}: "
        if self.path:
            text += f"{self.path}: "
        text += self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


@dataclass(frozen=True)
class Warning_:
    """Something accepted but worth telling the user (e.g. a Compose key stackd ignores)."""

    message: str
    pos: Pos | None = None
    path: str = ""

    def render(self) -> str:
        where = f"{self.pos}: " if self.pos else ""
        path = f"{self.path}: " if self.path else ""
        return f"{where}{path}{self.message}"


class StackdError(Exception):
    """Base of every error stackd raises on purpose."""

    exit_code = 1


class SpecError(StackdError):
    """One or more mistakes in the user's stack files, .env files or command line."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = sorted(problems, key=_problem_key)
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


def _problem_key(p: Problem) -> tuple[str, int, int, str]:
    if p.pos is None:
        return ("", 0, 0, p.path)
    return (p.pos.file, p.pos.line, p.pos.column, p.path)


class PlanError(StackdError):
    """The desired state cannot be turned into a plan."""


class DriverError(StackdError):
    """A side effect on the host failed."""


class TransientDriverError(DriverError):
    """A failure that may go away when retried (busy resource, interrupted call)."""


class PermanentDriverError(DriverError):
    """A failure that retrying will not fix (missing kernel feature, bad image)."""


ROOT_REASON = ("it mounts file systems and makes network namespaces, nft tables and cgroups, and "
               "keeps its state where only root may write")


def needs_root(verb: str) -> str:
    """The one line said to a user who is not root."""
    return f"stack {verb} needs root ({ROOT_REASON}); run it as root, e.g. with sudo"
