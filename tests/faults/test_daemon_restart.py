"""The daemon's own death, and the host's: a running stack outlives a SIGKILLed daemon and is
adopted as it is by the next one; after a simulated reboot (every process, mount, link,
namespace, cgroup and nft table of the project gone, and the whole run directory, a tmpfs on a
real host) the next daemon brings the stack back with its named volume's data.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from stackd.drivers.network import links, nftables
from stackd.errors import DriverError
from tests.e2e.runner import http_get
from tests.faults import leftovers
from tests.faults.harness import Project, wait_for
from tests.faults.image import PAGE
from tests.faults.stacks import HTTPD, SLEEPER, free_port, reaches, service
from tests.host.containers.support import remove_cgroups, unmount_under

pytestmark = pytest.mark.faults

RESYNC = 2.0  # the daemon's default --resync


def all_running(project: Project, services: set[str]) -> dict[str, dict[str, object]] | None:
    found = project.runtime_containers()
    names = {f"{project.name}-{s}-1" for s in services}
    if set(found) == names and all(c["status"] == "running" for c in found.values()):
        return found
    return None


def test_daemon_sigkill_adopts_running_stack(project: Project) -> None:
    port = free_port()
    project.write({"web": service(HTTPD, ports=[f"{port}:80"]), "side": service(SLEEPER)})
    project.up()
    before = wait_for("the stack runs", lambda: all_running(project, {"web", "side"}), timeout=30)
    assert http_get("127.0.0.1", port) == PAGE.decode()
    project.stackd.kill()
    assert http_get("127.0.0.1", port, within=5) == PAGE.decode(), "web stopped serving with the daemon"
    start = time.monotonic()
    project.stackd.start()
    time.sleep(2 * RESYNC + 0.5)  # a few passes of the new daemon
    after = project.runtime_containers()
    assert {n: (c["pid"], c["created"]) for n, c in after.items()} == \
        {n: (c["pid"], c["created"]) for n, c in before.items()}, "a container was restarted or recreated"
    rows = project.ps()
    assert {s: [(r["state"], r["restarts"]) for r in rows[s]] for s in rows} == \
        {"web": [("running", 0)], "side": [("running", 0)]}, rows
    assert http_get("127.0.0.1", port) == PAGE.decode()
    print(f"\nadopted after SIGKILL: {len(after)} containers unchanged over {time.monotonic() - start:.1f}s")


def simulate_reboot(project: Project) -> None:
    """What a reboot takes away from the project (see the module docstring); the daemon first."""
    project.stackd.kill()
    project.learn()
    for pid in leftovers.processes(project):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    wait_for("the project's processes are gone", lambda: not leftovers.processes(project), timeout=10)
    for ns in project.netns():
        links.remove_netns(ns)
    for name in leftovers.project_links(project):
        with contextlib.suppress(DriverError):  # a veth goes with its peer's namespace
            links.remove_link(name)
    unmount_under(project.stackd.dirs.data_root / "containers")
    remove_cgroups(f"/stackd/{project.name}")
    for table in leftovers.tables(project):
        nftables.delete_table(table.split()[-1])
    # the run directory is a tmpfs: it goes, with what ip_forward was before stackd turned it on;
    # a reboot also gives the kernel's boot value back, which is that one
    recorded = project.stackd.dirs.run_dir / "ip_forward.before"
    boot_value = recorded.read_text().strip() if recorded.is_file() else None
    shutil.rmtree(project.stackd.dirs.run_dir)
    if boot_value in ("0", "1"):
        Path("/proc/sys/net/ipv4/ip_forward").write_text(f"{boot_value}\n")
    gone = [f for f in leftovers.find(project) if not f.startswith("file ")]
    assert not gone, f"the simulated reboot left: {gone}"


def test_simulated_reboot(project: Project) -> None:
    port = free_port()
    services = {"a": service(HTTPD, volumes=["keep:/data"]), "b": service(HTTPD, ports=[f"{port}:80"])}
    project.write(services, volumes={"keep": {}})
    project.up()
    wait_for("the stack runs", lambda: all_running(project, set(services)), timeout=30)
    project.exec("a", "sh", "-c", "echo survived > /data/file")
    first_event = project.last_event_id()
    simulate_reboot(project)
    start = time.monotonic()
    project.stackd.start()
    wait_for("the stack comes back after the reboot", lambda: all_running(project, set(services)), timeout=60)
    print(f"\nback after a simulated reboot in {time.monotonic() - start:.2f}s", flush=True)
    assert project.exec("a", "cat", "/data/file").out == "survived\n"
    reaches(project, "a", "b")
    reaches(project, "b", "a")
    assert http_get("127.0.0.1", port) == PAGE.decode()
    for e in project.events(first_event):
        print(f"  event after the reboot: {e['kind']} {e['resource']}: {e['message']}")
    rows = project.ps()
    assert all(len(rows[s]) == 1 and rows[s][0]["state"] == "running" for s in services), rows
    project.down("-v")
    left = leftovers.settle(project)
    assert not left, f"left on the host after down: {left}"
