"""Restart policies and crash-loop backoff: what to do with a container that stopped on its own.

The reconciler asks ``decide(policy, state, now, backoff)`` on every pass for every exited
container and carries out the answer; the waiting between attempts is data it keeps in the
container's record (``next_attempt_at``), never a sleep inside an operation. ``now`` is always an
argument: nothing here reads a clock, so the same inputs always give the same decision.

The policy (``RestartPolicy.of(service)``) comes from Compose's ``restart:`` or from
``deploy.restart_policy``; when both are given ``deploy.restart_policy`` wins, as the Compose
spec says ("if ``restart_policy`` is not set, Compose considers the ``restart`` field") and as
docker compose does. In ``deploy.restart_policy`` a missing ``condition`` is ``any``, ``none`` is
``no`` and ``any`` is ``always``; ``max_attempts`` (0 or absent: never give up) limits every
condition; ``delay`` is the least wait before each attempt; ``window`` is how long a run must last
to count as a success (replacing ``Backoff.reset_after`` for that service).

The rules:

- only an ``exited`` container is restarted; running, paused, created (``up`` starts those) and
  dead ones (the plan recreates those) are left alone;
- a container stopped by the user (``stack stop``) is never restarted, whatever its policy;
- ``no`` never restarts; ``always`` and ``unless-stopped`` restart after any exit, also exit 0;
  ``on-failure[:N]`` only after a non-zero (or unknown) exit code, at most N times in a row.
  A container killed by a signal (137 = SIGKILL, e.g. by the OOM killer) has failed;
- ``always`` and ``unless-stopped`` differ only when the daemon itself starts
  (``daemon_start=True``): like Docker, ``always`` then also restarts a container the user had
  stopped, while ``unless-stopped`` keeps it stopped. Containers outlive the daemon, so this is
  the only moment the two differ;
- Docker's backoff: the wait before restart k (k = restarts already made in a row) is
  ``initial * factor**k`` capped at ``cap`` (0.1 s, 0.2 s, 0.4 s, ... 10 s); a run that lasted at
  least ``reset_after`` seconds was stable, so the count and the wait start again from zero.

What the reconciler records after a decision: on ``RestartNow`` it starts the container and
stores ``restarts = decision.attempt``, ``last_start = now`` and clears ``next_attempt_at``; on
``RestartAt`` it stores ``next_attempt_at = decision.at`` and asks again at that time; on
``GiveUp`` and ``Leave`` nothing. A user start or ``up`` clears ``stopped_by_user`` and resets
``restarts`` to 0. This module holds data and pure functions only: it performs nothing.
"""

from __future__ import annotations

import math
import signal
from dataclasses import dataclass
from typing import Literal

from stackd.plan.observed import ContainerState
from stackd.spec.models import Service
from stackd.spec.units import parse_duration

Mode = Literal["no", "always", "on-failure", "unless-stopped"]

_CONDITIONS: dict[str, Mode] = {"none": "no", "on-failure": "on-failure", "any": "always"}
_PLAIN: dict[str, Mode] = {"no": "no", "always": "always", "unless-stopped": "unless-stopped"}


@dataclass(frozen=True)
class RestartPolicy:
    """What a service's containers do when they stop on their own.

    ``max_attempts``: restarts in a row before giving up (None: never give up); ``delay``: least
    wait in seconds before each restart; ``window``: seconds a run must last to count as stable
    (None: ``Backoff.reset_after``); ``source``: the key it was read from, for messages.
    """

    mode: Mode = "no"
    max_attempts: int | None = None
    delay: float = 0.0
    window: float | None = None
    source: str = "restart"

    @classmethod
    def of(cls, service: Service) -> RestartPolicy:
        """The policy of ``service``: ``deploy.restart_policy`` if given, else ``restart``, else ``no``."""
        given = service.deploy.restart_policy if service.deploy is not None else None
        if given is not None:
            return cls(
                mode=_CONDITIONS[given.condition or "any"],
                max_attempts=given.max_attempts or None,
                delay=parse_duration(given.delay) if given.delay is not None else 0.0,
                window=parse_duration(given.window) if given.window is not None else None,
                source="deploy.restart_policy",
            )
        if service.restart is None:
            return cls()
        return cls.parse(service.restart)

    @classmethod
    def parse(cls, text: str) -> RestartPolicy:
        """``"on-failure:3"`` → mode ``on-failure``, at most 3 restarts (``:0`` means no limit).

        ``text`` is a value the spec layer already validated; anything else is a ``ValueError``.
        """
        name, colon, count = text.partition(":")
        if name == "on-failure" and (not colon or count.isdigit()):
            limit = int(count) if count else 0
            return cls(mode="on-failure", max_attempts=limit or None)
        plain = _PLAIN.get(name)
        if plain is not None and not colon:
            return cls(mode=plain)
        raise ValueError(f"not a restart policy: {text!r}")

    def __str__(self) -> str:
        text: str = self.mode
        if self.max_attempts is not None:
            limit = self.max_attempts
            text += f":{limit}" if self.mode == "on-failure" else f" (at most {limit} restarts)"
        return text if self.source == "restart" else f"{text} from {self.source}"


@dataclass(frozen=True)
class Backoff:
    """Waits between restarts, in seconds: ``initial`` times ``factor`` per restart, at most ``cap``.

    A run of at least ``reset_after`` seconds resets the wait and the count; after
    ``crash_loop_after`` quick restarts in a row the container is shown as crash looping.
    """

    initial: float = 0.1
    factor: float = 2.0
    cap: float = 10.0
    reset_after: float = 10.0
    crash_loop_after: int = 3
    immediate_first: bool = False
    """The first restart after a stable run comes at once; the waits start with the second
    restart in a row (0, ``initial``, ``initial * factor``, ...). The daemon's default: a
    container that crashes once is back as fast as the host can start it."""

    def __post_init__(self) -> None:
        if not (0 <= self.initial <= self.cap) or self.factor < 1 or self.reset_after < 0:
            raise ValueError(f"backoff needs 0 <= initial <= cap, factor >= 1, reset_after >= 0: {self}")

    def delay(self, restarts: int) -> float:
        """The wait before the next restart when ``restarts`` were already made in a row."""
        if self.immediate_first:
            if restarts <= 0:
                return 0.0
            restarts -= 1
        try:
            wait = self.initial * self.factor ** max(restarts, 0)
        except OverflowError:
            return self.cap
        return min(self.cap, wait) if math.isfinite(wait) else self.cap


@dataclass(frozen=True)
class ContainerRestartState:
    """What the reconciler knows about one container's runs (times are seconds on its clock).

    ``restarts``: restarts made in a row by the policy (reset after a stable run or a user
    start); ``next_attempt_at``: when a restart already decided on is due, None if none is.
    """

    state: ContainerState
    exit_code: int | None = None
    stopped_by_user: bool = False
    restarts: int = 0
    last_start: float | None = None
    last_exit: float | None = None
    next_attempt_at: float | None = None


@dataclass(frozen=True)
class Leave:
    """Do nothing: the policy does not restart this container (``why`` says which rule)."""

    why: str


@dataclass(frozen=True)
class RestartNow:
    """Start the container now; record ``attempt`` as its ``restarts``."""

    attempt: int
    why: str


@dataclass(frozen=True)
class RestartAt:
    """Start the container at time ``at`` (backoff); record ``at`` as its ``next_attempt_at``."""

    at: float
    attempt: int
    why: str


@dataclass(frozen=True)
class GiveUp:
    """The policy's limit is reached: leave the container exited and say so."""

    why: str


Decision = Leave | RestartNow | RestartAt | GiveUp

_NOT_EXITED = {
    "running": "running",
    "paused": "paused",
    "created": "created and never started: `up` starts it",
    "dead": "dead: the plan recreates it",
}


def decide(policy: RestartPolicy, state: ContainerRestartState, now: float,
           backoff: Backoff | None = None, *, daemon_start: bool = False) -> Decision:
    """What to do with the container in ``state`` at time ``now`` (see the module docstring).

    ``daemon_start``: this pass is the first after the daemon started (``always`` then also
    restarts a container the user stopped).
    """
    backoff = backoff or Backoff()
    if state.state != "exited":
        return Leave(_NOT_EXITED[state.state])
    if state.stopped_by_user and not (daemon_start and policy.mode == "always"):
        return Leave("stopped by the user")
    if policy.mode == "no":
        return Leave(f"exited; restart policy is {policy}")
    exited = _exit_text(state.exit_code)
    if policy.mode == "on-failure" and state.exit_code == 0:
        return Leave(f"{exited}; restart policy {policy} restarts only after a failure")
    count = 0 if _stable(state, policy, backoff) else max(state.restarts, 0)
    if policy.max_attempts is not None and count >= policy.max_attempts:
        return GiveUp(f"{exited}; gave up after {count} restart{'s' if count != 1 else ''} ({policy})")
    attempt = count + 1
    wait = max(policy.delay, backoff.delay(count))
    due = state.next_attempt_at
    if due is None:
        due = (state.last_exit if state.last_exit is not None else now) + wait
    if due <= now:
        return RestartNow(attempt, f"{exited}; restart {attempt}{_of(policy)} ({policy})")
    left = due - now
    if count >= backoff.crash_loop_after:
        return RestartAt(due, attempt, f"crash loop, next try in {_seconds(left)}")
    return RestartAt(due, attempt, f"{exited}; restart {attempt}{_of(policy)} in {_seconds(left)} ({policy})")


def crash_looping(state: ContainerRestartState, backoff: Backoff | None = None, *,
                  now: float | None = None) -> bool:
    """Whether ``stack ps`` shows the container as "restarting (crash loop)".

    True when the policy restarted it ``backoff.crash_loop_after`` times or more in a row and its
    latest run was short: an exited container whose run lasted less than ``reset_after``, or a
    running one started less than ``reset_after`` before ``now`` (without ``now`` a running
    container is not called crash looping). A container the user stopped never is. Whether the
    policy gave up is ``decide``'s answer (``GiveUp``); ask it first.
    """
    backoff = backoff or Backoff()
    if state.stopped_by_user or state.restarts < backoff.crash_loop_after:
        return False
    if state.state == "exited":
        return not _ran_for(state.last_start, state.last_exit, backoff.reset_after)
    if state.state == "running":
        started = state.last_start
        return now is not None and started is not None and now - started < backoff.reset_after
    return False


def _stable(state: ContainerRestartState, policy: RestartPolicy, backoff: Backoff) -> bool:
    """Whether the latest run lasted long enough to start counting restarts from zero."""
    threshold = policy.window if policy.window is not None else backoff.reset_after
    return _ran_for(state.last_start, state.last_exit, threshold)


def _ran_for(start: float | None, end: float | None, seconds: float) -> bool:
    return start is not None and end is not None and end - start >= seconds


def _exit_text(code: int | None) -> str:
    if code is None:
        return "exited with an unknown code"
    if 128 < code < 128 + 65:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        return f"killed by {name} (exit code {code})"
    return f"exited with code {code}"


def _of(policy: RestartPolicy) -> str:
    return f" of {policy.max_attempts}" if policy.max_attempts is not None else ""


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


__all__ = [
    "Backoff",
    "ContainerRestartState",
    "Decision",
    "GiveUp",
    "Leave",
    "Mode",
    "RestartAt",
    "RestartNow",
    "RestartPolicy",
    "crash_looping",
    "decide",
]
