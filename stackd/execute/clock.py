"""Time as the executor and the waiters see it: a ``Clock`` they are given, never the system's directly.

``SystemClock`` reads the event loop's monotonic clock and sleeps with anyio; ``ManualClock`` is a
virtual clock for tests whose ``sleep`` advances time at once (after one scheduling point), so
that a healthcheck with a 30 s interval and 3 retries is exercised in microseconds and no test
depends on how fast the machine is. Neither performs any other side effect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio
import anyio.lowlevel


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (only differences mean something)."""
        ...

    def wall(self) -> datetime:
        """The current time of day, in UTC (for the times shown to users)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return anyio.current_time()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class ManualClock:
    """Virtual time: ``sleep`` yields once to the other tasks and moves the clock forward."""

    def __init__(self, start: datetime | None = None) -> None:
        self.elapsed = 0.0
        self.start = start or datetime(2024, 1, 1, tzinfo=UTC)
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.elapsed

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await anyio.lowlevel.checkpoint()
        self.elapsed += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds
