"""The options of each verb of ``StackService`` (one class per verb, named after it: ``up`` /
``UpOptions``) and ``Applied``, what a changing verb did. Data only: no I/O, no decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from stackd.execute import Result
from stackd.plan import Plan
from stackd.plan.options import DownOptions as PlanDownOptions
from stackd.plan.options import UpOptions as PlanUpOptions

Verb = Literal["stop", "start", "restart", "kill"]
"""The verbs that act on existing containers only."""


@dataclass(frozen=True, kw_only=True)
class UpOptions(PlanUpOptions):
    """The planner's options plus: ``dry_run`` (plan only), ``wait`` (after starting, wait until
    every container runs and is healthy), ``wait_timeout`` (seconds, for every wait)."""

    dry_run: bool = False
    wait: bool = False
    wait_timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class DownOptions(PlanDownOptions):
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True)
class PsOptions:
    services: tuple[str, ...] = ()
    all: bool = False
    """also containers that are not running"""


@dataclass(frozen=True, kw_only=True)
class LogsOptions:
    services: tuple[str, ...] = ()
    follow: bool = False
    timestamps: bool = False
    tail: int | None = None
    since: datetime | None = None
    """only lines written at or after this time"""


@dataclass(frozen=True, kw_only=True)
class ExecOptions:
    service: str
    command: tuple[str, ...]
    index: int = 1
    env: Mapping[str, str] = field(default_factory=dict)
    user: str | None = None


@dataclass(frozen=True, kw_only=True)
class StopOptions:
    services: tuple[str, ...] = ()
    timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class StartOptions:
    services: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RestartOptions:
    services: tuple[str, ...] = ()
    timeout: float | None = None


@dataclass(frozen=True, kw_only=True)
class KillOptions:
    services: tuple[str, ...] = ()
    signal: str = "SIGKILL"


@dataclass(frozen=True, kw_only=True)
class PortOptions:
    service: str
    port: int
    protocol: str = "tcp"
    index: int = 1


@dataclass(frozen=True, kw_only=True)
class StatsOptions:
    services: tuple[str, ...] = ()
    interval: float = 1.0
    """seconds between the two samples the CPU share is computed from"""


@dataclass(frozen=True)
class Applied:
    """What a changing verb did: its plan and the result (``None`` for a dry run); ``wait_errors``:
    containers that did not become ready for ``up --wait``."""

    project: str
    plan: Plan
    result: Result | None = None
    wait_errors: tuple[str, ...] = ()
    said_changed: bool | None = None
    """Whether anything changed, as the daemon said (its plan is not sent: ``plan`` is empty)."""

    @property
    def changed(self) -> bool:
        return not self.plan.empty if self.said_changed is None else self.said_changed

    @property
    def ok(self) -> bool:
        return (self.result is None or self.result.ok) and not self.wait_errors
