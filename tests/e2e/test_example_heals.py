"""End-to-end: the daemon keeps the example stack as declared. A SIGKILLed redis is running again
at once (and web still reaches it by name), a service stopped with ``stack stop`` stays stopped
until ``stack start``, and a SIGKILLed daemon leaves the containers serving; the next one adopts
them without restarting any. ``stack events`` tells what happened.

Root only; each test has its own copy of the example stack (see conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.e2e.runner import Demo, http_get, unchanged

pytestmark = pytest.mark.e2e

NGINX_SAYS = "stackd example: nginx is up"


def _until(demo: Demo, service: str, check: Callable[[dict[str, Any]], bool],
           within: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        row = demo.ps()[service]
        if check(row):
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"{service} never got to {check}: {row}")
        time.sleep(0.05)


def _events(demo: Demo) -> list[dict[str, Any]]:
    out = demo.stack("events", "--json", "--no-follow", "--since", "0").out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_killed_redis_is_back_at_once_and_web_reaches_it(demo: Demo) -> None:
    demo.stack("up", "--wait")
    demo.owner.learn()
    before = demo.ps()["cache"]
    killed_at = time.time()
    os.kill(int(before["pid"]), signal.SIGKILL)
    after = _until(demo, "cache", lambda row: row["state"] == "running" and row["pid"] != before["pid"])
    assert after["restarts"] == 1
    name = f"{demo.project}-cache-1"
    started = [e for e in _events(demo) if e["kind"] == "started" and e["data"].get("name") == name]
    back = datetime.fromisoformat(started[-1]["time"]).timestamp() - killed_at
    print(f"cache started again {back * 1000:.0f} ms after SIGKILL (the daemon's journal)")
    demo.exec("web", "getent", "hosts", "cache")  # the name still resolves from web
    assert demo.exec("cache", "redis-cli", "ping").out.strip() == "PONG"
    kinds = [(e["kind"], e["data"].get("name")) for e in _events(demo)]
    assert ("died", name) in kinds and ("restarting", name) in kinds
    assert kinds.index(("died", name)) < kinds.index(("restarting", name))


def test_stack_stop_is_respected_until_start(demo: Demo) -> None:
    demo.up()
    demo.stack("stop", "cache")
    time.sleep(5)  # two resyncs and more: the reconciler leaves it alone
    assert demo.ps()["cache"]["state"] == "exited"
    demo.stack("start", "cache")
    assert demo.ps()["cache"]["state"] == "running"


def test_a_killed_daemon_leaves_the_stack_serving_and_the_next_adopts_it(demo: Demo) -> None:
    demo.stack("up", "--wait")
    demo.owner.learn()
    before = demo.ps()
    pid = int((demo.dirs.run_dir / "stackd.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    assert NGINX_SAYS in http_get("127.0.0.1", 8080)  # nobody watches, everything serves
    after = demo.ps()  # starts a new daemon, which adopts what runs
    assert all(unchanged(before[s], after[s]) for s in before), (before, after)
    time.sleep(3)  # a resync later nothing was restarted either
    again = demo.ps()
    assert all(unchanged(before[s], again[s]) for s in before), (before, again)
