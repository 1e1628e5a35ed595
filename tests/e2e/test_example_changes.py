"""End-to-end: changing the running example stack with the real ``stack`` CLI. Overlays recreate
exactly what they change (the repository's ``prod`` overlay, and a small one that touches only
web), postgres data lives in the named volume across ``down``/``up`` until ``down -v``, and a
failed ``up`` names the service and leaves nothing behind after ``down``.

Root only. Overlays are written into the test's own copy of the example stack, never into the
repository; every test takes its project down afterwards (see conftest.py).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.e2e.hoststate import assert_restored, snapshot
from tests.e2e.runner import Demo, http_get, plan_steps, recreated, refuses, unchanged

pytestmark = pytest.mark.e2e

NGINX_SAYS = "stackd example: nginx is up"
PSQL = ("psql", "-U", "app", "-d", "app", "-v", "ON_ERROR_STOP=1", "-tc")


def test_prod_overlay_recreates_what_it_changes(demo: Demo) -> None:
    before_host = snapshot()
    demo.up()
    dev = demo.ps()

    text = demo.stack("--env", "prod", "up", "--dry-run").out
    groups = {("update", "group:foreground"), ("update", "group:background")}
    assert plan_steps(text) == recreated("web", "db", "cache") | groups, text
    assert re.search(r"^#\d+ create service:web:1 .*config hash changed: .*\bports\b", text, re.M), text
    assert re.search(r"^#\d+ create service:cache:1 .*config hash changed: .*\bcommand\b", text, re.M), text
    assert all(unchanged(dev[s], row) for s, row in demo.ps().items()), "a dry run changed something"

    demo.up("--env", "prod")

    prod = demo.ps("--env", "prod")
    assert {s: r["state"] for s, r in prod.items()} == {"cache": "running", "db": "running", "web": "running"}
    assert not any(unchanged(dev[s], prod[s]) for s in prod), (dev, prod)
    assert NGINX_SAYS in http_get("127.0.0.1", 8088)
    assert refuses("127.0.0.1", 8080), "the dev port is still published"
    assert demo.stack("--env", "prod", "port", "web", "80").out.strip() == "0.0.0.0:8088"
    assert "nothing to do" in demo.up("--env", "prod").err

    demo.down("--env", "prod")
    assert_restored(before_host, demo.owner)


def test_an_overlay_changing_only_web_keeps_db_and_cache_running(demo: Demo) -> None:
    demo.overlay("tiny", "services:\n  web:\n    environment:\n      E2E_MARK: tiny\n")
    demo.up()
    before = demo.ps()

    text = demo.stack("--env", "tiny", "up", "--dry-run").out
    assert plan_steps(text) == recreated("web"), text

    demo.up("--env", "tiny")

    after = demo.ps("--env", "tiny")
    assert unchanged(before["db"], after["db"]), (before["db"], after["db"])
    assert unchanged(before["cache"], after["cache"]), (before["cache"], after["cache"])
    assert not unchanged(before["web"], after["web"])
    assert demo.exec("web", "printenv", "E2E_MARK").out.strip() == "tiny"
    assert NGINX_SAYS in http_get("127.0.0.1", 8080)


def test_postgres_data_outlives_down_and_down_v_removes_the_volume(demo: Demo) -> None:
    before_host = snapshot()
    demo.up()
    volume = demo.volume_dir("dbdata")
    assert (volume / "_data" / "PG_VERSION").is_file(), f"postgres data is not in {volume}"
    demo.exec("db", *PSQL, "create table kept (word text); insert into kept values ('still here')")

    demo.down()
    assert (volume / "_data" / "PG_VERSION").is_file(), "down without -v removed the named volume"
    assert demo.leftover_files() == []

    demo.up()
    assert demo.exec("db", *PSQL, "select word from kept").out.strip() == "still here"

    demo.down(volumes=True)
    assert not volume.exists()
    volumes = demo.dirs.data_root / "volumes"
    assert [p.name for p in volumes.iterdir() if p.name.startswith(demo.project)] == []
    assert_restored(before_host, demo.owner)


def test_a_failed_up_names_the_service_and_down_leaves_nothing(demo: Demo) -> None:
    before_host = snapshot()
    demo.overlay("broken", 'services:\n  web:\n    command: ["false"]\n')

    ran = demo.up("--env", "broken", check=False)

    assert ran.code != 0, ran
    assert "service web" in ran.err, ran
    assert "Traceback" not in ran.err, ran
    # web has `restart: unless-stopped`: the daemon keeps restarting it (a crash loop), so its
    # state changes all the time; its journal says how each run ended
    deadline = time.monotonic() + 20
    while True:
        events = [json.loads(line) for line in demo.stack("events", "--json", "--no-follow").out.splitlines()]
        died = [e for e in events if e["kind"] == "died" and e["data"].get("name") == f"{demo.project}-web-1"]
        if died or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert died and all(e["data"].get("exit_code") == 1 for e in died), events

    demo.down("--env", "broken")
    assert_restored(before_host, demo.owner)
    assert demo.leftover_files() == []
