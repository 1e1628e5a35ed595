"""Drift the daemon repairs on its own: each test breaks one thing of a running stack behind
stackd's back and waits until the daemon has put it back, printing the time from the fault to
the repair (never asserted: timing belongs in benchmarks).

(a) a container's main process killed with SIGKILL: running again, restart count one higher;
(b) a container removed behind stackd's back (runtime container deleted, root file system
unmounted, directory removed): made again; (c) a container's host-side veth deleted: made again
with the same address, and the containers reach each other by name (ping); (d) the project's bridge
deleted: made again, containers reach each other; (e) the project's nft table flushed: restored,
the published port answers again; (f) a container's memory limit edited by hand: written back;
(g) a container stopped with the runtime's SIGTERM is started again (``restart: always``), but
after ``stack stop`` it stays stopped across several resyncs; (h) a service that exits at once
is restarted with growing waits, which the events and ``stack ps`` show; (i) a container's
main process killed together with its monitor (no exit file comes): found by the resync and
running again; (j) the bridge's gateway address removed by hand: put back.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.runner import http_get
from tests.faults import leftovers
from tests.faults.harness import Project, wait_for
from tests.faults.image import PAGE
from tests.faults.stacks import (
    MEM_LIMIT,
    SLEEPER,
    cgroup_file,
    free_port,
    ifindex,
    inside_addresses,
    reaches,
    service,
    table_rules,
    two_webs,
)
from tests.host.containers.support import unmount_under

pytestmark = pytest.mark.faults

REPAIR_TIMEOUT = 30.0
RESYNC = 2.0  # the daemon's default --resync


def timed(what: str, probe: Callable[[], object], *, since: float | None = None,
          timeout: float = REPAIR_TIMEOUT) -> float:
    """Seconds from ``since`` (default: now) until ``probe`` is true (polled often), printed."""
    start = time.monotonic() if since is None else since
    wait_for(what, probe, timeout=timeout, every=0.005)
    took = time.monotonic() - start
    print(f"\n{what}: repaired in {took * 1000:.0f} ms", flush=True)
    return took


def up_webs(project: Project) -> int:
    port = free_port()
    project.write(two_webs(port))
    project.up()
    wait_for("both containers run", lambda: running(project, "a") and running(project, "b"), timeout=30)
    return port


def running(project: Project, service: str) -> dict[str, Any] | None:
    c = project.runtime_containers().get(f"{project.name}-{service}-1")
    return c if c is not None and c["status"] == "running" else None


def restarts(project: Project, service: str) -> int:
    return int(project.ps()[service][0]["restarts"])


def test_killed_main_process_restarts(project: Project) -> None:
    up_webs(project)
    before = running(project, "a")
    assert before is not None
    count = restarts(project, "a")
    os.kill(before["pid"], signal.SIGKILL)  # the runtime's pid: the container's main process
    timed("(a) main process killed -> running again (target < 200 ms)",
          lambda: (c := running(project, "a")) is not None and c["pid"] != before["pid"])
    wait_for("ps counts the restart", lambda: restarts(project, "a") == count + 1, timeout=10, every=0.2)


def test_process_killed_with_its_monitor_is_found_by_the_resync(project: Project) -> None:
    """No exit file comes when the monitor (conmon) dies first: the resync's look at the
    runtime, asked again because a running process is gone, finds the container stopped."""
    up_webs(project)
    before = running(project, "a")
    assert before is not None
    count = restarts(project, "a")
    stat = Path(f"/proc/{before['pid']}/stat").read_text()
    monitor = int(stat.rpartition(")")[2].split()[1])  # the container's parent: its conmon
    assert "conmon" in Path(f"/proc/{monitor}/comm").read_text()
    start = time.monotonic()
    os.kill(monitor, signal.SIGKILL)
    os.kill(before["pid"], signal.SIGKILL)
    timed("(i) main process killed with its monitor -> running again (resync: 2 s)",
          lambda: (c := running(project, "a")) is not None and c["pid"] != before["pid"], since=start)
    wait_for("ps counts the restart", lambda: restarts(project, "a") == count + 1, timeout=10, every=0.2)


def test_removed_container_is_recreated(project: Project) -> None:
    up_webs(project)
    name = f"{project.name}-a-1"
    old = running(project, "a")
    assert old is not None
    folder = project.stackd.dirs.data_root / "containers" / name
    trash = project.stackd.dirs.data_root / f"removed-{name}"
    start = time.monotonic()
    # the directory goes first, in one step (its mounts move with it): the daemon, woken by the
    # container's exit, must not find half of it
    folder.rename(trash)
    done = project.stackd.runtime("delete", "-f", name)
    assert done.returncode == 0, done.stderr
    unmount_under(trash)
    shutil.rmtree(trash)
    timed("(b) container removed -> recreated",
          lambda: (c := running(project, "a")) is not None and c["pid"] != old["pid"], since=start)
    assert project.container_dirs() == sorted([name, f"{project.name}-b-1"])
    reaches(project, "b", "a")


def test_deleted_veth_is_recreated(project: Project) -> None:
    up_webs(project)
    name = f"{project.name}-a-1"
    netns = project.info(name)["netns"]
    addresses = inside_addresses(netns)
    assert addresses, f"no address inside {netns}"
    veth = project.veth(name)
    index = ifindex(veth)
    start = time.monotonic()  # the fault happens while ``ip`` runs: its run counts
    subprocess.run(["ip", "link", "del", veth], check=True)
    timed("(c) host-side veth deleted -> recreated",
          lambda: ifindex(veth) not in (None, index) and veth in project.bridge_ports()
          and inside_addresses(netns) == addresses, since=start)
    reaches(project, "a", "b")
    reaches(project, "b", "a")


def test_deleted_bridge_is_recreated(project: Project) -> None:
    up_webs(project)
    veths = {project.veth(f"{project.name}-{s}-1") for s in ("a", "b")}
    assert set(project.bridge_ports()) == veths
    index = ifindex(project.bridge())
    start = time.monotonic()
    subprocess.run(["ip", "link", "del", project.bridge()], check=True)
    timed("(d) bridge deleted -> recreated with its veths",
          lambda: ifindex(project.bridge()) not in (None, index) and set(project.bridge_ports()) == veths,
          since=start)
    reaches(project, "a", "b")
    reaches(project, "b", "a")


def bridge_addresses(name: str) -> list[str]:
    found = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", name], capture_output=True, text=True,
                           check=False).stdout.split()
    return [found[i + 1] for i, word in enumerate(found[:-1]) if word == "inet"]


def test_removed_gateway_address_is_put_back(project: Project) -> None:
    up_webs(project)
    bridge = project.bridge()
    addresses = bridge_addresses(bridge)
    assert len(addresses) == 1
    start = time.monotonic()
    subprocess.run(["ip", "addr", "del", addresses[0], "dev", bridge], check=True)
    timed("(j) the bridge's gateway address removed -> put back",
          lambda: bridge_addresses(bridge) == addresses, since=start)
    reaches(project, "a", "b")


def test_flushed_table_is_restored(project: Project) -> None:
    port = up_webs(project)
    assert http_get("127.0.0.1", port) == PAGE.decode()
    assert leftovers.tables(project) == [f"ip {project.table()}"]  # one table, family ip
    rules = table_rules(project)
    assert rules, f"table {project.table()} has no rules"
    start = time.monotonic()
    subprocess.run(["nft", "flush", "table", "ip", project.table()], check=True)
    timed("(e) nft table flushed -> restored", lambda: table_rules(project) == rules, since=start)
    assert http_get("127.0.0.1", port) == PAGE.decode()


def test_edited_memory_limit_is_written_back(project: Project) -> None:
    up_webs(project)
    limit = cgroup_file(project, f"{project.name}-a-1", "memory", "memory.limit_in_bytes")
    assert int(limit.read_text()) == MEM_LIMIT
    limit.write_text(str(2 * MEM_LIMIT))
    assert int(limit.read_text()) == 2 * MEM_LIMIT
    timed("(f) memory.limit_in_bytes edited -> written back", lambda: int(limit.read_text()) == MEM_LIMIT)


def test_stopped_by_runtime_restarts_but_stack_stop_stays(project: Project) -> None:
    up_webs(project)
    name = f"{project.name}-a-1"
    old = running(project, "a")
    assert old is not None
    done = project.stackd.runtime("kill", name, "SIGTERM")
    assert done.returncode == 0, done.stderr
    timed("(g) stopped with the runtime's SIGTERM -> started again",
          lambda: (c := running(project, "a")) is not None and c["pid"] != old["pid"])
    project.stack("stop", "a")
    assert running(project, "a") is None
    deadline = time.monotonic() + 3 * RESYNC + 0.5
    while time.monotonic() < deadline:
        state = project.runtime_containers()[name]["status"]
        assert state != "running", "a container stopped with `stack stop` was started again"
        time.sleep(0.1)
    assert project.ps()["a"][0]["state"] == "exited"


def test_crash_loop_backs_off(project: Project) -> None:
    project.write({"crash": service(["/bin/sh", "-c", "exit 1"]), "calm": service(SLEEPER)})
    project.stack("up", "-d", "--progress", "quiet", check=False)  # crash may fail its start check
    first = project.last_event_id()
    seen = wait_for("ps shows the crashing container as restarting",
                    lambda: any(r["state"] == "restarting" for r in project.ps().get("crash", [])),
                    timeout=20, every=0.2)
    assert seen
    time.sleep(5.0)
    events = [e for e in project.events() if e["resource"] == "service:crash:1"]
    starts = [e["time"] for e in events if e["kind"] == "started" and e["id"] > first]
    waits = [float(m.group(1)) for e in events if e["kind"] == "restarting"
             and (m := re.search(r"in ([0-9.]+) s\b", e["message"]))]
    attempts = [int(m.group(1)) for e in events if e["kind"] == "restarting"
                and (m := re.search(r"restart (\d+)", e["message"]))]
    print(f"\n(h) crash loop: {len(starts)} starts in 5 s; announced waits {waits}; attempts {attempts}")
    assert any("crash loop" in e["message"] for e in events), [e["message"] for e in events]
    assert max(attempts) >= 4, attempts
    assert waits and max(waits) > min(waits), f"the waits do not grow: {waits}"
    assert project.ps()["calm"][0]["state"] == "running"
