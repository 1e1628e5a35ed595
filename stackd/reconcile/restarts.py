"""The restart decisions of one pass: for every exited container of a kept project, what its
restart policy (``stackd.plan.restart``) says now, gathered into what the pass must do.

The state each decision needs comes from the host's record (state, exit code, when the run
started and ended) and the store's (restarts in a row, the next attempt's due time, stopped by
the user). Times are seconds since the epoch, so that they mean the same after the daemon
restarted. Pure: records in, a ``RestartPlan`` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from stackd.drivers.host import ContainerRecord
from stackd.plan.restart import (
    Backoff,
    ContainerRestartState,
    GiveUp,
    RestartAt,
    RestartNow,
    RestartPolicy,
    crash_looping,
    decide,
)
from stackd.spec.models import Stack
from stackd.store import StoredContainer


def _seconds(text: str | datetime | None) -> float | None:
    if text is None:
        return None
    if isinstance(text, datetime):
        return text.timestamp()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def restart_state(record: ContainerRecord, stored: StoredContainer | None) -> ContainerRestartState:
    """What ``decide`` needs to know about one container."""
    return ContainerRestartState(
        state=record.state, exit_code=record.exit_code,
        stopped_by_user=stored.stopped_by_user if stored else False,
        restarts=stored.restarts if stored else 0,
        last_start=_seconds(record.started_at), last_exit=_seconds(record.finished_at),
        next_attempt_at=_seconds(stored.backoff_until) if stored else None)


@dataclass(frozen=True)
class RestartPlan:
    """``now``: containers to start in this pass, with the attempt to record; ``later``: the due
    time of each restart that waits for its backoff; ``gave_up`` and ``why``: what to say."""

    now: Mapping[str, int] = field(default_factory=dict)
    later: Mapping[str, tuple[float, int]] = field(default_factory=dict)
    gave_up: Mapping[str, str] = field(default_factory=dict)
    why: Mapping[str, str] = field(default_factory=dict)
    crash_looping: frozenset[str] = frozenset()

    @property
    def wake_at(self) -> float | None:
        """When the next pass is due for a waiting restart (None: none waits)."""
        return min((at for at, _ in self.later.values()), default=None)


def restart_plan(stack: Stack, records: Sequence[ContainerRecord], stored: Mapping[str, StoredContainer],
                 now: float, backoff: Backoff, *, daemon_start: bool = False) -> RestartPlan:
    """The decision for every container of ``stack``'s services in ``records``."""
    starts: dict[str, int] = {}
    later: dict[str, tuple[float, int]] = {}
    gave_up: dict[str, str] = {}
    why: dict[str, str] = {}
    looping: set[str] = set()
    for record in records:
        service = stack.services.get(record.service)
        if service is None or record.state != "exited":  # only an exited container is restarted (decide)
            continue
        state = restart_state(record, stored.get(record.name))
        decision = decide(RestartPolicy.of(service), state, now, backoff, daemon_start=daemon_start)
        if isinstance(decision, RestartNow):
            starts[record.name] = decision.attempt
        elif isinstance(decision, RestartAt):
            later[record.name] = (decision.at, decision.attempt)
        elif isinstance(decision, GiveUp):
            gave_up[record.name] = decision.why
        else:
            continue
        why[record.name] = decision.why
        if crash_looping(state, backoff, now=now):
            looping.add(record.name)
    return RestartPlan(now=starts, later=later, gave_up=gave_up, why=why, crash_looping=frozenset(looping))
