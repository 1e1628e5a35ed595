"""Fixtures of the store tests: a store on a temp file with a clock that ticks one second per call."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackd.store import Store

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


class TickClock:
    """A clock for tests: T0, T0+1s, T0+2s, ..."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> datetime:
        now = T0 + timedelta(seconds=self.calls)
        self.calls += 1
        return now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "stackd.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store(db_path, clock=TickClock())
    try:
        yield s
    finally:
        s.close()
