"""Working inside network namespaces from a dedicated thread (``namespaces`` and the ``links``
functions built on it) against the real kernel: what is set inside shows there (checked with
``ip -n``), the calling thread never changes namespace, no process is forked, and a failure
inside a namespace is the same driver error as ever and leaves no thread or descriptor behind.

Root only; everything is named under ``stkt`` and removed by the ``lab`` fixture (see conftest).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute  # type: ignore[import-untyped]

from stackd.drivers.network import links, namespaces
from stackd.drivers.network.names import NETNS_DIR
from stackd.errors import PermanentDriverError
from tests.host.network.lab import TEST, Lab, run

pytestmark = pytest.mark.host

_FORKS = [0]
os.register_at_fork(before=lambda: _FORKS.__setitem__(0, _FORKS[0] + 1))


def thread_netns() -> int:
    """The inode of the calling thread's network namespace."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def threads() -> set[str]:
    return set(os.listdir("/proc/self/task"))


def open_files() -> Counter[str]:
    """What the process's descriptors point at (as many times as they are open)."""
    found: Counter[str] = Counter()
    for fd in os.listdir("/proc/self/fd"):
        with suppress(FileNotFoundError):  # the descriptor of the listing itself
            found[os.readlink(f"/proc/self/fd/{fd}")] += 1
    return found


def ip_json(netns: str, *args: str) -> Any:
    return json.loads(run("ip", "-n", netns, "-j", *args) or "[]")


def add_netns(name: str) -> Path:
    run("ip", "netns", "add", name)
    return Path(NETNS_DIR / name)


@contextmanager
def nothing_left_behind() -> Iterator[None]:
    """The block leaves the calling thread in its namespace, and no thread or descriptor open."""
    home, before_threads, before_files = thread_netns(), threads(), open_files()
    yield
    assert thread_netns() == home
    # a joined thread has finished its work; the kernel task goes a moment later
    deadline = time.monotonic() + 5
    while threads() - before_threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not threads() - before_threads, "a thread outlived the call"
    assert not open_files() - before_files, f"descriptors left open: {open_files() - before_files}"


def test_work_run_inside_a_namespace_lands_there_and_the_caller_stays_home(lab: Lab) -> None:
    path = add_netns(TEST.netns("ns-inside"))
    home = thread_netns()

    def work() -> int:
        with IPRoute() as ipr:
            ipr.link("add", ifname="stktinner0", kind="veth", peer={"ifname": "stktinner1"})
            index = ipr.link_lookup(ifname="stktinner0")[0]
            ipr.addr("add", index=index, address="10.213.250.2", prefixlen=24)
            ipr.link("set", index=index, state="up")
            ipr.route("add", dst="10.213.251.0/24", gateway="10.213.250.1")
        return thread_netns()

    inside = namespaces.run_inside(path, work)
    assert inside == os.stat(path).st_ino != home
    assert thread_netns() == home

    (inner,) = ip_json(path.name, "addr", "show", "dev", "stktinner0")
    assert "UP" in inner["flags"]
    assert [(a["local"], a["prefixlen"]) for a in inner["addr_info"] if a["family"] == "inet"] == \
        [("10.213.250.2", 24)]
    routes = ip_json(path.name, "route", "show", "10.213.251.0/24")
    assert [(r["gateway"], r["dev"]) for r in routes] == [("10.213.250.1", "stktinner0")]
    on_host = {link["ifname"] for link in json.loads(run("ip", "-j", "link", "show"))}
    assert not {"stktinner0", "stktinner1"} & on_host


def test_the_driver_sets_links_addresses_and_routes_inside_without_forking(lab: Lab) -> None:
    net = lab.network("front")
    home, forks = thread_netns(), _FORKS[0]
    box = lab.container("ns-a", net)
    inside = {s.name: s for s in links.netns_links(box.netns)}
    gateway = links.default_gateway(box.netns)
    assert _FORKS[0] == forks, "working inside a namespace forked a process"
    assert thread_netns() == home

    assert inside["eth0"].addresses == (IPv4Interface(f"{box.address}/{net.subnet.prefixlen}"),)
    assert gateway == net.gateway.ip
    by_name = {link["ifname"]: link for link in ip_json(box.netns, "addr", "show")}
    assert "UP" in by_name["lo"]["flags"] and "UP" in by_name["eth0"]["flags"]
    assert [(a["local"], a["prefixlen"]) for a in by_name["eth0"]["addr_info"] if a["family"] == "inet"] \
        == [(str(box.address), net.subnet.prefixlen)]
    (default,) = ip_json(box.netns, "route", "show", "default")
    assert (default["gateway"], default["dev"]) == (str(net.gateway.ip), "eth0")
    veth = json.loads(run("ip", "-j", "link", "show", TEST.veth(box.name, net.name)))[0]
    assert veth["master"] == net.bridge and veth["link_netnsid"] is not None


def test_ensure_netns_makes_a_namespace_of_its_own_and_replaces_a_leftover_file(lab: Lab) -> None:
    name = TEST.netns("ns-made")
    home = thread_netns()
    with nothing_left_behind():
        links.ensure_netns(name)
        links.ensure_netns(name)  # again: nothing changes
    path = Path(NETNS_DIR / name)
    assert name in run("ip", "netns", "list").split()
    assert os.stat(path).st_ino != home
    (lo,) = ip_json(name, "link", "show", "lo")
    assert "UP" in lo["flags"]
    assert [link["ifname"] for link in ip_json(name, "link", "show")] == ["lo"]

    leftover = Path(NETNS_DIR / TEST.netns("ns-leftover"))
    leftover.touch()  # as an interrupted create leaves it
    assert not links.netns_exists(leftover.name)
    links.ensure_netns(leftover.name)
    assert links.netns_exists(leftover.name)
    assert "UP" in ip_json(leftover.name, "link", "show", "lo")[0]["flags"]

    links.remove_netns(name)
    assert not path.exists() and name not in run("ip", "netns", "list").split()
    links.remove_netns(leftover.name)
    leftover.touch()
    links.remove_netns(leftover.name)  # a plain file: deleted too
    assert not leftover.exists()


def test_a_failure_inside_a_namespace_is_a_driver_error_and_leaves_nothing_behind(lab: Lab) -> None:
    net = lab.network("front")
    box = lab.container("ns-a", net)  # the first use, before counting threads and descriptors
    bad = links.Endpoint(box.netns, TEST.veth(box.name, net.name), net.bridge,
                         IPv4Interface(f"{box.address}/{net.subnet.prefixlen}"),
                         gateway=IPv4Address("192.0.2.1"))  # not on the subnet: no route there

    with nothing_left_behind(), pytest.raises(PermanentDriverError, match=f"connect {box.netns}"):
        links.ensure_endpoint(bad)

    def boom() -> int:
        raise ValueError("failed inside")

    path = NETNS_DIR / box.netns
    with nothing_left_behind(), pytest.raises(ValueError, match="failed inside"):
        namespaces.run_inside(path, boom)
    with nothing_left_behind(), pytest.raises(FileNotFoundError):
        namespaces.run_inside(NETNS_DIR / TEST.netns("ns-missing"), thread_netns)
    with nothing_left_behind(), pytest.raises(OSError, match="Invalid argument"):
        namespaces.run_inside("/proc/self/ns/mnt", thread_netns)  # not a network namespace
    with nothing_left_behind(), pytest.raises(FileExistsError):
        namespaces.create(path)  # taken: refused, and the namespace there stays
    assert links.netns_exists(box.netns)


def test_parallel_calls_each_reach_their_own_namespace(lab: Lab) -> None:
    paths = [add_netns(TEST.netns(f"ns-par{i}")) for i in range(6)]
    home = thread_netns()

    def visit(path: Path) -> tuple[int, int, int]:
        own = thread_netns()
        return namespaces.run_inside(path, thread_netns), own, thread_netns()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(visit, paths * 3))
    for path, (inside, before, after) in zip(paths * 3, results, strict=True):
        assert inside == os.stat(path).st_ino
        assert before == after == home  # the pool's threads never moved
    assert thread_netns() == home


def test_the_address_dump_and_sysfs_agree_with_ip(lab: Lab) -> None:
    """``sysfs.observe_links`` (sysfs, and the netlink address dump read by hand) says what
    ``ip`` says of a bridge with a second address and of a veth attached to it."""
    from stackd.drivers.network import sysfs

    net = lab.network("dump")
    box = lab.container("dumpbox", net)
    extra = f"{net.subnet.network_address + 200}/{net.subnet.prefixlen}"
    run("ip", "addr", "add", extra, "dev", net.bridge)
    shown = json.loads(run("ip", "-j", "-4", "addr", "show"))
    expected = {link["ifindex"]: sorted(f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"])
                for link in shown if link.get("addr_info")}
    dumped = sysfs.ipv4_addresses()
    assert {i: sorted(str(a) for a in found) for i, found in dumped.items()} == expected
    veth = TEST.veth(box.name, net.name)
    states = sysfs.observe_links([net.bridge, veth, "stktnothere0"])
    assert set(states) == {net.bridge, veth}
    assert states[net.bridge].kind == "bridge" and states[net.bridge].up
    assert sorted(str(a) for a in states[net.bridge].addresses) == sorted([str(net.gateway), extra])
    assert states[veth].kind == "veth" and states[veth].master == net.bridge and states[veth].addresses == ()
