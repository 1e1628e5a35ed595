"""How the runtime verbs show their progress and say what went wrong: Compose-style lines on a
terminal, plain lines, JSON lines or nothing (``Progress``), and the closing report (``report``).

Both work on what the executor says in-process (``stackd.execute.Event`` and ``Result``) and on
what the daemon sends (the same fields as JSON: ``EventView``, ``result_of``), without importing
the executor, so that ``stack up -d`` through the daemon stays quick to start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

KINDS = {"service": "Container", "network": "Network", "volume": "Volume", "group": "Group",
         "image": "Image"}


class EventLike(Protocol):
    @property
    def action(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class EventView:
    """A progress event as the daemon sent it (``Event.to_dict()``)."""

    data: Mapping[str, Any]

    @property
    def action(self) -> str:
        return str(self.data["action"])

    @property
    def status(self) -> str:
        return str(self.data["status"])

    @property
    def message(self) -> str:
        return str(self.data.get("message", ""))

    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))

    @property
    def kind(self) -> str:
        return str(self.data.get("kind") or KINDS.get(str(self.data["resource"]).split(":", 1)[0], "?"))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.data)


_WORDS = {"create": ("Creating", "Created"), "start": ("Starting", "Started"),
          "stop": ("Stopping", "Stopped"), "remove": ("Removing", "Removed"),
          "update": ("Updating", "Updated"), "build": ("Building", "Built"), "check": ("Checking", "Present"),
          "kill": ("Killing", "Killed"), "wait": ("Waiting", "")}
_MARKS = {"waiting": " ⠿ ", "working": " ⠿ ", "done": " ✔ ", "error": " ✘ "}


class Progress:
    """Renders executor events: Compose-style lines on a terminal (``tty``: outcomes only, with
    marks), ``plain`` lines (every change), JSON lines, or nothing (``quiet``)."""

    def __init__(self, mode: str, stream: TextIO) -> None:
        if mode == "auto":
            mode = "tty" if stream.isatty() else "plain"
        self.mode, self.stream = mode, stream

    def __call__(self, event: EventLike) -> None:
        if self.mode == "quiet" or (self.mode == "tty" and event.status == "working"):
            return
        if self.mode == "json":
            print(json.dumps(event.to_dict()), file=self.stream, flush=True)
            return
        doing, did = _WORDS.get(event.action, (event.action.capitalize(), event.action.capitalize()))
        if event.status == "error":
            rest = event.message.removeprefix("skipped: ")
            text = f"Skipped  {rest}" if rest != event.message else f"Error  {event.message}"
        elif event.status == "done":
            text = did or event.message.capitalize()
        else:
            text = "Waiting" if event.status == "waiting" else doing
        mark = _MARKS[event.status] if self.mode == "tty" else ""
        print(f"{mark}{event.kind} {event.name}  {text}", file=self.stream, flush=True)


class OutcomeLike(Protocol):
    @property
    def op(self) -> str: ...
    @property
    def message(self) -> str: ...


class ResultLike(Protocol):
    @property
    def failed(self) -> Sequence[OutcomeLike]: ...
    @property
    def skipped(self) -> Sequence[OutcomeLike]: ...
    @property
    def ok(self) -> bool: ...


@dataclass(frozen=True)
class Said:
    op: str
    message: str


@dataclass(frozen=True)
class ResultView:
    """A verb's result as the daemon sent it."""

    failed: tuple[Said, ...]
    skipped: tuple[Said, ...]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def result_of(data: Mapping[str, Any]) -> ResultView:
    outcomes = data.get("outcomes", ())

    def said(status: str) -> tuple[Said, ...]:
        return tuple(Said(o["op"], o["message"]) for o in outcomes if o["status"] == status)

    return ResultView(failed=said("failed"), skipped=said("skipped"))


def report(result: ResultLike | None, err: TextIO, wait_errors: Sequence[str] = ()) -> int:
    """Say what went wrong (each failure once, skips counted); the exit code."""
    if result is None:
        return 0
    for o in result.failed:
        print(f"error: {o.op}: {o.message}", file=err)
    if result.skipped:
        print(f"error: {len(result.skipped)} operation(s) not done because of the errors above", file=err)
    for text in wait_errors:
        print(f"error: {text}", file=err)
    return 0 if result.ok and not wait_errors else 1


