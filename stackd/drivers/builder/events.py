"""What a build tells its caller: progress events as it goes, and ``BuildError`` when it fails.

``BuildEvent`` is plain data handed to the caller's ``progress`` callback, always from the thread
that called ``build_image`` (so an async caller may forward it with ``anyio.from_thread``).
``BuildError`` is a run-time failure of a build (a RUN step that exits non-zero, a base image
that cannot be found or made, a user that the image does not know); mistakes that can be seen
in the Dockerfile alone are ``SpecError`` s instead. Data only: nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from stackd.errors import PermanentDriverError, Pos

EventKind = Literal["step", "cached", "output", "message", "done"]


@dataclass(frozen=True)
class BuildEvent:
    """One thing a build reports.

    ``step``: a step starts (``text`` is the instruction); ``cached``: a step's result comes from
    the cache; ``output``: one line a RUN step printed; ``message``: anything else worth telling
    (a base image being bootstrapped); ``done``: the image is in the store (``text`` is its id).
    ``stage`` is the stage's name or index, ``step``/``total`` count the steps of that stage
    (1-based), ``line`` is the instruction's line in the Dockerfile."""

    kind: EventKind
    text: str
    stage: str = ""
    step: int = 0
    total: int = 0
    line: int = 0

    def render(self) -> str:
        """One line for a terminal, as ``docker build`` would print it."""
        where = f"[{self.stage} {self.step}/{self.total}] " if self.total else ""
        if self.kind == "cached":
            return f"{where}CACHED {self.text}"
        if self.kind == "output":
            return f"  {self.text}"
        return f"{where}{self.text}"


Progress = Callable[[BuildEvent], None]


def ignore_progress(event: BuildEvent) -> None:
    """A ``progress`` callback that drops every event."""


class BuildError(PermanentDriverError):
    """A build failed at run time. ``pos`` is the instruction's place in the Dockerfile (when one
    instruction failed), ``output`` the last lines it printed, ``exit_status`` its exit status."""

    def __init__(self, message: str, *, pos: Pos | None = None, instruction: str = "",
                 output: Sequence[str] = (), exit_status: int | None = None, hint: str = "") -> None:
        self.pos = pos
        self.instruction = instruction
        self.output = tuple(output)
        self.exit_status = exit_status
        self.hint = hint
        text = f"{pos.file}:{pos.line}: {message}" if pos is not None else message
        if instruction:
            text += f"\n  {instruction}"
        if self.output:
            text += "\n  last output:\n" + "\n".join(f"    {line}" for line in self.output)
        if hint:
            text += f"\n  ({hint})"
        super().__init__(text)
