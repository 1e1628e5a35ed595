"""What one fault-test project left on the host, and a sweep that removes it by hand.

A project's objects are recognised by name, never by comparing whole-host snapshots (other
software runs stacks here at the same time): its conmon processes (their command line names
the project's container directories), its container processes (their cgroup is under
``/stackd/<project>/``), its runtime containers, the mounts under the session's data root and
the project's network namespaces, the namespaces ``stk-<project>-*``, its bridges and the links
it was seen to use (``Project.learn``) or attached to its bridges, the nft table
``stackd-<project>``, the cgroups ``/sys/fs/cgroup/*/stackd/<project>``, and its container
directories, pid and exit files.

``find`` only reads; ``sweep`` stops the daemon, makes its store forget the project, and removes
what ``find`` reports (processes first, then runtime state, mounts, namespaces, links, the table,
cgroups, files), with the host tests' own functions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

from stackd.drivers.network import links, nftables
from stackd.drivers.runtime.host import read_mountinfo
from stackd.errors import DriverError
from stackd.store import Store
from tests.e2e.hoststate import run_json
from tests.faults.harness import CGROUP_ROOT, Project
from tests.host.containers.support import processes_with, remove_cgroups, unmount_under


def _in_cgroup(pid: int, marker: str) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def processes(project: Project) -> list[int]:
    """Live conmon and container processes of ``project``."""
    data = project.stackd.dirs.data_root
    found = set(processes_with(f"{data}/containers/{project.name}-"))
    marker = f"/{CGROUP_ROOT}/{project.name}/"
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _in_cgroup(int(entry.name), marker):
            with contextlib.suppress(OSError, IndexError):
                state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
                if state not in ("Z", "X"):
                    found.add(int(entry.name))
    return sorted(found)


def mounts(project: Project) -> list[str]:
    """Mount points under the session's data root, and of the project's network namespaces."""
    data = f"{project.stackd.dirs.data_root}/"
    netns = tuple(f"/run/netns/{n}" for n in project.netns())
    return sorted({e.mount_point for e in read_mountinfo()
                   if e.mount_point.startswith(data) or e.mount_point in netns})


def project_links(project: Project) -> list[str]:
    """Links of the host named after the project (its bridges, the veths it was seen to use, and
    anything attached to its bridges)."""
    if project.netns():
        project.learn()
    names = set(project.seen_links) | {project.bridge(n) for n in project.networks}
    for network in project.networks:
        names |= set(project.bridge_ports(network))
    return sorted(n for n in names if Path("/sys/class/net", n).exists())


def tables(project: Project) -> list[str]:
    data = run_json("nft", "-j", "list", "tables") or {}
    return sorted(f"{t['table']['family']} {t['table']['name']}" for t in data.get("nftables", [])
                  if "table" in t and t["table"]["name"] == project.table())


def files(project: Project) -> list[str]:
    run, data = project.stackd.dirs.run_dir, project.stackd.dirs.data_root
    places = (data / "containers", run / "pids", run / "exits")
    return sorted(str(p) for place in places if place.is_dir() for p in place.iterdir()
                  if p.name.startswith(f"{project.name}-"))


def find(project: Project) -> list[str]:
    """Everything of ``project`` still on the host, one line each."""
    found = [f"process {pid}: {_cmdline(pid)}" for pid in processes(project)]
    found += [f"runtime container {name} ({c['status']})" for name, c in project.runtime_containers().items()]
    found += [f"mount {m}" for m in mounts(project)]
    found += [f"netns {n}" for n in project.netns()]
    found += [f"link {n}" for n in project_links(project)]
    found += [f"nft table {t}" for t in tables(project)]
    found += [f"cgroup {p}" for p in project.cgroup_dirs()]
    found += [f"file {f}" for f in files(project)]
    return found


def settle(project: Project, timeout: float = 10.0) -> list[str]:
    """``find``, polled until it is empty or ``timeout`` seconds passed (exited processes need a
    moment to be reaped, a removed namespace to let go of its links)."""
    deadline = time.monotonic() + timeout
    while True:
        found = find(project)
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        return "?"


def sweep(project: Project) -> None:
    """Remove by hand whatever ``find`` reports (best effort: each step goes on past failures).
    The daemon is stopped first and made to forget the project (in its store), so that nothing
    brings back what is swept; the next test starts it again."""
    project.stackd.stop()
    store = Store(project.stackd.dirs.data_root / "stackd.db")
    try:
        store.forget_stack(project.name)
    finally:
        store.close()
    for pid in processes(project):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for name in project.runtime_containers():
        project.stackd.runtime("delete", "-f", name)
    for name in project.container_dirs():
        unmount_under(project.stackd.dirs.data_root / "containers" / name)
    for ns in project.netns():
        with contextlib.suppress(DriverError):
            links.remove_netns(ns)
    for name in project_links(project):
        with contextlib.suppress(DriverError):
            links.remove_link(name)
    for table in tables(project):
        with contextlib.suppress(DriverError):
            nftables.delete_table(table.split()[-1])
    remove_cgroups(f"/{CGROUP_ROOT}/{project.name}")
    for path in files(project):
        if Path(path).is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(path)
