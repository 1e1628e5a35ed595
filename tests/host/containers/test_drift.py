"""Drift repair on this host, through the real host driver: a running two-service stack (a web
server and a client in a group with limits) whose veths, bridge, nft table and cgroup limits are
changed with the host's own tools (``ip``, ``nft``, writes to cgroup files), then put back by
``repair_drift``: the same addresses, the same bridge master, the table's rules, the limits, and
the client reaching the server by address again. Nothing drifted: no repair. The time each
repair took is printed (``pytest -s``); nothing asserts on it.

Root only; see conftest.py for the names used and the cleanup.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from stackd.drivers.cgroups.detect import Version
from stackd.drivers.containers import listing
from stackd.drivers.host import Repair
from stackd.drivers.network import links, nftables
from stackd.drivers.realhost import RealHost
from stackd.spec.models import Stack
from stackd.store import StoredResource
from tests.host.containers.conftest import Lab
from tests.host.containers.support import IMAGE, NAMING
from tests.host.containers.test_realhost import create, prepare, run

pytestmark = pytest.mark.host

STACK = f"""
x-stackd:
  groups:
    background: {{memory: 256m, pids: 200}}
    idle: {{memory: 64m}}
services:
  server:
    image: {IMAGE}
    command: ["httpd", "-f", "-p", "8000", "-h", "/www"]
    ports: ["127.0.0.1:18999:8000"]
  client:
    image: {IMAGE}
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    cgroup_parent: background
    mem_limit: 64m
    pids_limit: 50
    cpu_shares: 512
"""


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def timed(host: RealHost, stack: Stack, label: str, *, deep: bool = False) -> list[Repair]:
    start = time.perf_counter()
    done = host.repair_drift(stack, deep=deep)
    print(f"\n  {label}: {(time.perf_counter() - start) * 1000:.1f} ms, "
          f"{[r.render() for r in done]}")
    return done


def up(lab: Lab) -> tuple[Stack, str, str]:
    stack = lab.stack(STACK)
    prepare(lab.host, stack)
    server, client = create(lab.host, stack, "server"), create(lab.host, stack, "client")
    lab.host.start_container(server)
    lab.host.start_container(client)
    return stack, server, client


def link(name: str) -> links.LinkState | None:
    return next((s for s in links.list_links(NAMING) if s.name == name), None)


def address_in(host: RealHost, name: str) -> str:
    return run(host, name, "ip", "-4", "-o", "addr", "show", "eth0").split()[3]


def reaches(host: RealHost, client: str, address: str) -> bool:
    """The client fetches the server's page by address (a few tries: the network settles)."""
    for _ in range(20):
        done = host.exec_in(client, ["wget", "-q", "-O-", f"http://{address}:8000/index.html"],
                            timeout=30)
        if done.exit_code == 0 and done.stdout == b"hello from stackd\n":
            return True
        time.sleep(0.25)
    return False


def test_veths_and_bridges_come_back(lab: Lab) -> None:
    host = lab.host
    stack, server, client = up(lab)
    network = f"{lab.project}_default"
    bridge = host.networks.bridge(network)
    veths = {n: NAMING.veth(n, network) for n in (server, client)}
    addresses = {n: address_in(host, n) for n in (server, client)}
    server_ip = addresses[server].split("/")[0]
    assert reaches(host, client, server_ip)
    for _ in range(3):
        assert timed(host, stack, "no drift (cheap)") == []
    assert timed(host, stack, "no drift (deep)", deep=True) == []

    def check_intact() -> None:
        found = link(bridge)
        assert found is not None and found.up and found.kind == "bridge"
        assert [str(a) for a in found.addresses] == [str(host.networks.subnet(network).interface)]
        for name, veth in veths.items():
            state = link(veth)
            assert state is not None and state.up and state.master == bridge, state
            assert address_in(host, name) == addresses[name]
        assert reaches(host, client, server_ip)
        assert host.repair_drift(stack) == [] and host.repair_drift(stack, deep=True) == []

    # the client's veth deleted (its peer in the container goes with it)
    sh("ip", "link", "del", veths[client])
    done = timed(host, stack, "veth deleted")
    assert [(r.resource, r.why) for r in done] == [(f"container:{client}", f"veth {veths[client]} missing")]
    check_intact()

    # the bridge deleted: veths stay, detached
    sh("ip", "link", "del", bridge)
    done = timed(host, stack, "bridge deleted")
    assert {r.resource for r in done} == {f"network:{network}", f"container:{server}", f"container:{client}"}
    assert done[0] == Repair(f"network:{network}",
                             f"recreated bridge {bridge} with {host.networks.subnet(network).interface}",
                             "bridge missing")
    check_intact()

    # a veth down, another detached
    sh("ip", "link", "set", veths[server], "down")
    sh("ip", "link", "set", veths[client], "nomaster")
    done = timed(host, stack, "veth down + veth detached")
    assert sorted((r.resource, r.why) for r in done) == [
        (f"container:{client}", f"veth {veths[client]} detached from bridge {bridge}"),
        (f"container:{server}", f"veth {veths[server]} down")]
    check_intact()

    # the bridge down; its address removed
    sh("ip", "link", "set", bridge, "down")
    sh("ip", "addr", "flush", "dev", bridge)
    done = timed(host, stack, "bridge down, address flushed")
    assert [r.resource for r in done] == [f"network:{network}"]
    assert "bridge down" in done[0].why and "gateway address" in done[0].why
    check_intact()

    # inside the container: the address removed (seen only by a deep check)
    pid = str(host.processes.monitored(client).container_pid())
    sh("nsenter", "-t", pid, "-n", "ip", "addr", "flush", "dev", "eth0")
    assert host.repair_drift(stack) == []
    done = timed(host, stack, "address inside removed (deep)", deep=True)
    assert [r.resource for r in done] == [f"container:{client}"]
    assert "lost its address" in done[0].why and "default route" in done[0].why
    check_intact()


def test_the_nft_table_comes_back(lab: Lab) -> None:
    host = lab.host
    stack, _, _ = up(lab)
    table = NAMING.table(lab.project)
    wanted = host.networks.table(lab.project, listing.infos(host.layout, lab.project))
    assert nftables.status(wanted) == "in-sync"
    assert timed(host, stack, "no drift (deep)", deep=True) == []
    for label, action in (("flushed", ("nft", "flush", "table", "ip", table)),
                          ("deleted", ("nft", "delete", "table", "ip", table)),
                          ("edited", ("nft", "add", "rule", "ip", table, "forward", "counter", "drop"))):
        sh(*action)
        assert nftables.status(wanted) != "in-sync"
        assert host.repair_drift(stack) == []  # only a deep check looks at the table
        done = timed(host, stack, f"table {label} (deep)", deep=True)
        status = "missing" if label == "deleted" else "drifted"
        why = f"table {table} {status}"
        assert done == [Repair(f"nft:{lab.project}", f"applied table {table} again", why)]
        assert nftables.status(wanted) == "in-sync"
        text = nftables.table_listing(table) or ""
        assert "dnat to" in text and "masquerade" in text
        assert host.repair_drift(stack, deep=True) == []


def test_cgroup_limits_and_groups_come_back(lab: Lab) -> None:
    host = lab.host
    stack, _, client = up(lab)
    layout = host.cgroups().layout

    def control(controller: str, *parts: str) -> tuple[Version, Path]:
        backing = layout.backing(controller)
        assert backing is not None
        return backing[0], backing[1].joinpath(lab.cgroup_root.lstrip("/"), lab.project, *parts)

    version, group_dir = control("memory", "background")
    memory_file = "memory.limit_in_bytes" if version == "v1" else "memory.max"
    assert timed(host, stack, "no drift (cheap)") == []

    # a group's memory limit
    limit = group_dir / memory_file
    assert limit.read_text().strip() == str(256 << 20)
    limit.write_text(str(300 << 20))
    done = timed(host, stack, "group memory edited")
    assert [r.resource for r in done] == ["group:background"] and "memory" in done[0].what
    assert limit.read_text().strip() == str(256 << 20)

    # a container's memory, pids and cpu limits
    container_memory = group_dir / client / memory_file
    assert container_memory.read_text().strip() == str(64 << 20)
    container_memory.write_text(str(100 << 20))
    _, pids_dir = control("pids", "background", client)
    (pids_dir / "pids.max").write_text("77")
    cpu_version, cpu_dir = control("cpu", "background", client)
    shares_file = "cpu.shares" if cpu_version == "v1" else "cpu.weight"
    shares_before = (cpu_dir / shares_file).read_text().strip()
    (cpu_dir / shares_file).write_text("300" if cpu_version == "v1" else "7")
    done = timed(host, stack, "container memory, pids, cpu edited")
    assert {r.resource for r in done} == {f"container:{client}"} and len(done) == 3
    assert container_memory.read_text().strip() == str(64 << 20)
    assert (pids_dir / "pids.max").read_text().strip() == "50"
    assert (cpu_dir / shares_file).read_text().strip() == shares_before
    assert timed(host, stack, "after repair") == []

    # a group without containers gone (as after a reboot): made again with its limits
    _, idle_memory = control("memory", "idle")
    for mount in layout.mounts():
        path = mount / lab.cgroup_root.lstrip("/") / lab.project / "idle"
        if path.is_dir():
            os.rmdir(path)
    done = timed(host, stack, "group cgroup removed")
    assert [(r.resource, r.why) for r in done] == [("group:idle", "cgroup missing")]
    assert (idle_memory / memory_file).read_text().strip() == str(64 << 20)
    assert host.repair_drift(stack) == []


def test_limits_are_read_again_only_after_a_write_and_links_only_when_asked(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconciler's cheap pass: a container's limits are read once, then again only when
    something wrote to its cgroup (inotify), or in a full check; links only with ``links``."""
    from stackd.drivers.cgroups import cgfs
    from stackd.drivers.containers import drift
    from stackd.drivers.network import sysfs

    host = lab.host
    stack, _, client = up(lab)
    assert host.repair_drift(stack, links=False) == []  # first look: everything read, then watched
    reads: list[Path] = []
    real_read, real_observe = cgfs.read, sysfs.observe_links

    def read(path: Path) -> str | None:
        reads.append(Path(path))
        return real_read(path)

    looked: list[set[str]] = []

    def observe(names: set[str]) -> dict[str, links.LinkState]:
        looked.append(set(names))
        return real_observe(names)

    monkeypatch.setattr(cgfs, "read", read)
    monkeypatch.setattr(drift, "observe_links", observe)

    def container_reads() -> set[str]:
        names = {p.parent.name for p in reads
                 if p.parent.name.startswith(lab.project + "-") and p.name != "cgroup.procs"}
        reads.clear()
        return names

    def group_reads() -> set[str]:
        return {p.parent.name for p in reads if p.parent.name in ("background", "idle")}

    assert host.repair_drift(stack, links=False) == []
    assert group_reads() == set()
    assert container_reads() == set() and looked == []
    pids_file = next(d / "pids.max" for d in host.cgroups().group_dirs(lab.project, "background")
                     if (d / "pids.max").exists())
    pids_file.write_text("77")
    done = host.repair_drift(stack, links=False)
    assert [r.resource for r in done] == ["group:background"] and "77" in done[0].why
    assert group_reads() == {"background"}
    reads.clear()
    groups = {"background", "default", "idle"}
    assert {r.key for r in host.list_groups(lab.project)} == groups
    assert group_reads() == {"background"}  # our write back, seen by the observation
    reads.clear()
    assert host.repair_drift(stack, links=False) == [] and group_reads() == set()
    assert {r.key for r in host.list_groups(lab.project)} == groups and group_reads() == set()
    backing = host.cgroups().layout.backing("pids")
    assert backing is not None
    pids = backing[1] / lab.cgroup_root.lstrip("/") / lab.project / "background" / client / "pids.max"
    pids.write_text("77")
    done = host.repair_drift(stack, links=False)
    assert [(r.resource, r.why) for r in done] == [(f"container:{client}", "pids.max is 77, not 50")]
    assert container_reads() == {client}  # only the written container, and our own write back:
    assert host.repair_drift(stack, links=False) == [] and container_reads() == {client}
    assert host.repair_drift(stack, links=False) == [] and container_reads() == set()
    assert host.repair_drift(stack, table=True) == []  # a full check reads every one, and the links
    assert len(container_reads()) == 2 and len(looked) == 1


def test_the_stamp_changes_with_what_a_pass_looks_at(lab: Lab) -> None:
    """``stamp``: the same while nothing changes; different (or None) after a container's
    process is killed, a limit of a container or group is written, a group's directory is
    removed, the store or the image index changes; back to steady after a look."""
    host = lab.host
    stack, server, client = up(lab)

    def steady() -> object:
        """The stamp once passes have looked and it can tell (a directory just changed is
        trusted after a second; a write back of a repair is read by the next pass)."""
        deadline = time.monotonic() + 5
        while True:
            host.list_containers(lab.project)
            host.repair_drift(stack, links=False)
            first = host.stamp(lab.project)
            if first is not None or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert first is not None and host.stamp(lab.project) == first
        return first

    stamp = steady()
    host.store.put_resource(StoredResource("volume", "stkx", "data", "stkx_data"))  # any store write
    assert host.stamp(lab.project) != stamp
    host.store.remove_resource("volume", "stkx", "data")
    stamp = steady()
    backing = host.cgroups().layout.backing("pids")
    assert backing is not None
    pids = backing[1] / lab.cgroup_root.lstrip("/") / lab.project / "background" / client / "pids.max"
    pids.write_text("77")
    assert host.stamp(lab.project) is None  # a limit written: the pass must read it
    stamp = steady()
    group = next(d for d in host.cgroups().group_dirs(lab.project, "idle") if d.is_dir())
    os.rmdir(group)
    assert host.stamp(lab.project) != stamp
    stamp = steady()
    index = host.parts.images.index_path
    os.utime(index, ns=(index.stat().st_atime_ns, index.stat().st_mtime_ns + 1000))
    assert host.stamp(lab.project) != stamp
    stamp = steady()
    record = next(r for r in host.list_containers(lab.project) if r.name == server)
    assert record.pid is not None
    os.kill(record.pid, 9)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and host.stamp(lab.project) == stamp:
        time.sleep(0.02)
    assert host.stamp(lab.project) != stamp  # the process is gone (and conmon's exit file came)
    assert host.drift_repair.limit_watch.watched(client)
    host.stop_container(client, timeout=5)
    host.remove_container(client, volumes=False)
    assert not host.drift_repair.limit_watch.watched(client)  # no watch left behind
