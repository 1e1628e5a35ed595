"""Unit tests never reach a stackd daemon: one that would (a CLI verb run without a host driver
and without ``--no-daemon``) fails with a clear error instead of starting or using the machine's."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest

from stackd.cli import client
from stackd.errors import StackdError


@pytest.fixture(autouse=True)
def no_daemon_in_unit_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    real = client.connect

    def refuse(environ: Mapping[str, str] | None = None, **kwargs: Any) -> client.Daemon:
        if os.geteuid() != 0:  # the root check comes first, and touches nothing
            return real(environ, **kwargs)
        raise StackdError("a unit test tried to reach the stackd daemon (pass a host or --no-daemon)")

    monkeypatch.setattr(client, "connect", refuse)
