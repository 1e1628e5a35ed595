"""Unit tests never reach the machine's stackd daemon: one that would (a CLI verb run without a
host driver and without ``--no-daemon``) fails with a clear error instead of starting or using
it. A test that serves a daemon of its own names its run directory (``STACKD_RUN_DIR`` in the
environment it passes) and reaches only that one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest

from stackd.cli import client
from stackd.errors import StackdError


@pytest.fixture(autouse=True)
def no_daemon_in_unit_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    def guarded(real: Any) -> Any:
        def call(environ: Mapping[str, str] | None = None, **kwargs: Any) -> Any:
            if os.geteuid() != 0 or (environ or {}).get(client.RUN_ENV):  # the root check touches nothing
                return real(environ, **kwargs)
            raise StackdError("a unit test tried to reach the stackd daemon (pass a host or --no-daemon)")
        return call

    monkeypatch.setattr(client, "connect", guarded(client.connect))
    monkeypatch.setattr(client, "running", guarded(client.running))
