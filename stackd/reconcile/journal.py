"""``Journal``: where the reconciler says what happens (``stack events``), and what it remembers
of each container between passes to notice changes.

Every event is written to the store (so it survives the daemon) and wakes whoever follows the
stream (``next_event``). Kinds: ``created``, ``started``, ``stopped``, ``removed``, ``updated``,
``built``, ``failed`` (an operation of a pass failed), ``died`` (with the exit code),
``restarting`` (a restart decided, now or after a backoff), ``gave-up``, ``health``
(a health status changed), ``drift`` (something found and repaired, and why), ``applied``
(a new revision), ``forgotten``, ``error`` (a pass could not run). ``Tracker`` turns
successive looks at a project's containers into ``died`` events (health changes are journaled
where the probes run); it remembers only what the last look showed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio
import anyio.to_thread

from stackd.drivers.host import ContainerRecord
from stackd.execute import Event as ProgressEvent
from stackd.store import Event, JsonScalar, Store

_KINDS = {"create": "created", "start": "started", "stop": "stopped", "remove": "removed",
          "update": "updated", "build": "built", "kill": "killed"}


class Journal:
    """Events into the store, and a wake-up for followers (``await journal.changed()``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._changed = anyio.Event()

    async def say(self, project: str, resource: str, kind: str, message: str,
                  **data: JsonScalar) -> Event:
        event = await anyio.to_thread.run_sync(
            lambda: self.store.add_event(project, resource, kind, message, data))
        self._changed.set()
        self._changed = anyio.Event()
        return event

    def next_event(self) -> anyio.Event:
        """An event set when the next journal entry is written (take it before reading the
        store, then wait on it: nothing written in between is missed)."""
        return self._changed

    def write(self, project: str, resource: str, kind: str, message: str, **data: JsonScalar) -> Event:
        """``say`` from the event loop's thread without awaiting (one short sqlite insert)."""
        event = self.store.add_event(project, resource, kind, message, data)
        self._changed.set()
        self._changed = anyio.Event()
        return event

    def progress(self, project: str, sink: Callable[[ProgressEvent], None] | None = None
                 ) -> Callable[[ProgressEvent], None]:
        """A progress callback for the executor that journals each finished or failed operation
        (and hands every event on to ``sink``)."""

        def on(event: ProgressEvent) -> None:
            if sink is not None:
                sink(event)
            if event.status not in ("done", "error") or event.action == "wait":
                return
            kind = _KINDS.get(event.action, event.action) if event.status == "done" else "failed"
            self.write(project, event.resource, kind, event.message or event.action, name=event.name,
                       action=event.action)

        return on


@dataclass(frozen=True)
class Seen:
    state: str
    started_at: str | None
    health: str
    exit_code: int | None
    finished_at: str | None = None


class Tracker:
    """What the last look at one project's containers showed."""

    def __init__(self) -> None:
        self.last: dict[str, Seen] = {}
        self.gave_up: set[str] = set()  # containers whose giving up was said (until they run again)

    def look(self, records: Sequence[ContainerRecord]) -> list[tuple[ContainerRecord, str, str]]:
        """(record, kind, message) for each change since the last look worth an event."""
        out: list[tuple[ContainerRecord, str, str]] = []
        now: dict[str, Seen] = {}
        for r in records:
            seen = Seen(r.state, r.started_at, r.health, r.exit_code, r.finished_at)
            now[r.name] = seen
            if r.state == "running":
                self.gave_up.discard(r.name)
            before = self.last.get(r.name)
            if before is None:
                continue
            ended = r.state in ("exited", "dead") and (
                before.state in ("running", "paused")
                or (r.finished_at is not None and r.finished_at != before.finished_at))
            if ended:  # also a run that began and ended between two looks (a crash loop)
                out.append((r, "died", f"exited with code {r.exit_code}" if r.exit_code is not None
                            else "exited"))
            elif before.state == "running" and r.state == "running" and before.started_at != r.started_at:
                out.append((r, "died", "ended and was started again between two looks"))
        self.last = now
        return out
