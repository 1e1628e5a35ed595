"""End-to-end: the example stack brought up with the real ``stack`` CLI serves what it should
(nginx on the published port, service names, postgres, redis, ``ps``/``logs``/``port``), a second
``up`` changes nothing, and ``down`` leaves the host as it was.

Root only. Each test works on its own copy of the example stack under its own project name and
takes it down afterwards (see conftest.py); nothing here edits the repository's files.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.hoststate import assert_restored, changes, snapshot
from tests.e2e.runner import Demo, http_get, outward_address, plan_steps, unchanged

pytestmark = pytest.mark.e2e

SERVICES = ("cache", "db", "web")
NGINX_SAYS = "stackd example: nginx is up"
MAIN_PROCESS = {"cache": "redis-server", "db": "postgres", "web": "nginx"}


@pytest.mark.parametrize("mode", [(), ("--no-daemon",)], ids=["daemon", "no-daemon"])
def test_up_then_down_leaves_the_host_as_it_was(demo: Demo, mode: tuple[str, ...]) -> None:
    before = snapshot()
    demo.up(*mode)
    during = snapshot()
    # the checks below could not see a leftover if they did not see the running stack
    seen = {c.kind for c in changes(before, during) if demo.owner.owns(c, during)}
    assert {"link", "netns", "mount", "cgroup", "nft table", "process"} <= seen, seen
    assert len(demo.owner.links) == 4, f"one bridge and three veths expected: {demo.owner.links}"
    assert NGINX_SAYS in http_get("127.0.0.1", 8080)
    demo.exec("db", "psql", "-U", "app", "-d", "app", "-tc", "select 1")

    demo.down(*mode)

    assert_restored(before, demo.owner)
    assert demo.leftover_files() == []
    assert demo.stack("ps", "-a", "--format", "json").out == ""


# ---------------------------------------------------------------------------- one running stack


def test_web_answers_on_loopback_and_on_the_outward_address(running: Demo) -> None:
    assert NGINX_SAYS in http_get("127.0.0.1", 8080)
    assert NGINX_SAYS in http_get(outward_address(), 8080)


def test_service_names_resolve_to_the_containers_addresses(running: Demo) -> None:
    resolved = {}
    for name in ("db", "cache"):
        fields = running.exec("web", "getent", "hosts", name).out.split()
        assert fields[1:2] == [name], fields
        resolved[name] = ipaddress.ip_address(fields[0])
        own = running.exec(name, "hostname", "-I").out.split()
        assert [str(resolved[name])] == own, f"web resolves {name} to {resolved[name]}, it has {own}"
    assert resolved["db"] != resolved["cache"]


def test_postgres_answers_a_query(running: Demo) -> None:
    ran = running.exec("db", "psql", "-U", "app", "-d", "app", "-tc", "select 1")
    assert ran.out.strip() == "1"


def test_containers_reach_each_other_by_name_over_the_bridge(running: Demo) -> None:
    ping = 'exec 3<>/dev/tcp/cache/6379 && printf "PING\\r\\n" >&3 && read -r answer <&3 && echo "$answer"'
    assert running.exec("web", "bash", "-c", ping).out.strip() == "+PONG"
    running.exec("web", "bash", "-c", "exec 3<>/dev/tcp/db/5432")  # exit 0: connected


def test_ps_json_has_one_object_per_container(running: Demo) -> None:
    lines = running.stack("ps", "--format", "json").out.splitlines()
    rows = [json.loads(line) for line in lines]
    assert sorted(r["service"] for r in rows) == list(SERVICES)
    for r in rows:
        service = r["service"]
        assert {"name", "service", "state", "health", "pid", "exit_code", "restarts", "started_at"} <= set(r)
        assert r["name"] == f"{running.project}-{service}-1"
        assert r["state"] == "running"
        assert r["exit_code"] is None
        assert r["restarts"] == 0
        assert datetime.fromisoformat(r["started_at"].replace("Z", "+00:00")).tzinfo is not None
        comm = Path(f"/proc/{r['pid']}/comm").read_text().strip()
        assert comm == MAIN_PROCESS[service], f"{service}: pid {r['pid']} is {comm}"


def test_logs_show_postgres_output(running: Demo) -> None:
    out = running.stack("logs", "db").out
    ready = [line for line in out.splitlines() if "database system is ready to accept connections" in line]
    assert ready, out[-2000:]
    assert all(line.startswith(f"{running.project}-db-1") for line in out.splitlines())


def test_port_prints_where_web_is_published(running: Demo) -> None:
    assert running.stack("port", "web", "80").out.strip() == "0.0.0.0:8080"


def test_a_second_up_changes_nothing_and_says_so(running: Demo) -> None:
    before = running.ps()
    assert plan_steps(running.stack("up", "--dry-run").out) == set()
    ran = running.up()
    assert "nothing to do" in ran.err, ran
    assert not any(word in ran.err for word in ("Creat", "Start", "Stop", "Remov")), ran
    after = running.ps()
    assert all(unchanged(before[s], after[s]) for s in SERVICES), (before, after)


def test_ps_reports_the_health_of_services_with_a_healthcheck(running: Demo) -> None:
    rows = running.ps()
    assert (rows["db"]["health"], rows["cache"]["health"]) == ("healthy", "healthy"), rows


# ---------------------------------------------------------------------------- known defects


def test_the_web_images_own_healthcheck_passes(running: Demo) -> None:
    image = running.stack("image", "inspect", "stackd-example/nginx:bookworm").out
    test = json.loads(image)[0]["Config"]["Healthcheck"]["Test"]
    assert test[0] == "CMD", test
    ran = running.exec("web", *test[1:], check=False)
    assert ran.code == 0, ran


def test_stats_shows_each_container_and_each_group(running: Demo) -> None:
    rows = [json.loads(line) for line in running.stack("stats", "--format", "json").out.splitlines()]
    by_name = {r["name"]: r for r in rows}
    assert {f"{running.project}-{s}-1" for s in SERVICES} | {"foreground", "background"} == set(by_name)
    background = by_name["background"]
    assert background["kind"] == "group" and background["memory_limit"] == 768 << 20  # x-stackd groups
    db = by_name[f"{running.project}-db-1"]
    assert db["pids"] >= 1 and db["memory_bytes"] > 0
    assert background["memory_bytes"] >= db["memory_bytes"]  # the group holds db and cache
