"""``HostWatch`` against the real kernel: exit files, link events and nftables changes under the
test owner ``stkw`` (not ``stkt``: the network host tests clean up everything named ``stkt*``, so
the two may run at the same time), in a temporary run directory.

Every link and table a test makes is removed afterwards, also when it fails, and the test checks
that nothing of it is left: no link, no table, no ``nft`` child. Wake-up latencies are printed
(``pytest -s``), never asserted. Outside CI a missing root or tool skips; in CI it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.network.names import Naming
from stackd.drivers.watch import Changes, HostWatch, next_changes

pytestmark = pytest.mark.host

TEST = Naming("stkw", "stkw")
BRIDGE = TEST.bridge("watchtest", "net")
VETH = TEST.veth("watchtest-web-1", "net")
PEER = "stkwpeer0"  # not a shape the owner claims
TABLE = TEST.table("watchtest")
OTHER_TABLE = "stkwother"  # the owner's prefix without its dash: not the owner's
LINKS = (VETH, PEER, BRIDGE)
TABLES = (TABLE, OTHER_TABLE)


def need(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run every host test)")
        pytest.skip(why)


def run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"


def links_left() -> set[str]:
    return {name for name in LINKS if Path("/sys/class/net", name).exists()}


def tables_left() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()} & set(TABLES)


def nft_children() -> list[int]:
    """Our child processes called ``nft`` (zombies included)."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            if entry.name.isdigit():
                comm, rest = entry.joinpath("stat").read_text().rsplit(")", 1)
                if comm.endswith("(nft") and int(rest.split()[1]) == os.getpid():
                    found.append(int(entry.name))
    return found


def clean() -> None:
    for name in LINKS:
        if Path("/sys/class/net", name).exists():
            subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
    for table in tables_left():
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True, check=False)


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[HostWatch]:
    need(os.geteuid() == 0, "the watch host tests need root")
    for tool in ("ip", "nft"):
        need(shutil.which(tool) is not None, f"{tool} is not installed")
    clean()
    try:
        with HostWatch(HostLayout(tmp_path / "data", tmp_path / "run"), TEST) as the_watch:
            assert dict(the_watch.off) == {}
            yield the_watch
    finally:
        clean()
        assert not links_left() and not tables_left(), "left behind"
        assert nft_children() == [], "an nft child is still there"


def wait_for(watch: HostWatch, action: Callable[[], object], what: str) -> Changes:
    """Run ``action`` in a thread while waiting for the next changes; print the wake-up latency."""
    started: list[float] = []

    def act() -> None:
        time.sleep(0.05)
        started.append(time.perf_counter())
        action()

    async def main() -> tuple[Changes, float]:
        thread = threading.Thread(target=act)
        thread.start()
        try:
            changes = await next_changes(watch, timeout=30)
            return changes, time.perf_counter()
        finally:
            await anyio.to_thread.run_sync(thread.join)

    changes, woke = anyio.run(main, backend="asyncio")
    print(f"\nwake-up after {what}: {(woke - started[0]) * 1000:.2f} ms (from the start of the change)")
    return changes


def test_nothing_happening_is_reported_as_nothing(watch: HostWatch) -> None:
    assert len(watch.fds()) == 3
    assert not watch.drain()
    assert anyio.run(next_changes, watch, 0.3, backend="asyncio") == Changes()


def test_an_exit_file_is_seen_with_its_name(watch: HostWatch) -> None:
    changes = wait_for(watch, lambda: (watch.exit_dir / "watchtest-web-1").write_text("0"), "exit file")
    assert changes == Changes(exited=frozenset({"watchtest-web-1"}))


def test_link_changes_of_the_owner_are_seen(watch: HostWatch) -> None:
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    run("ip", "link", "add", VETH, "type", "veth", "peer", "name", PEER)
    run("ip", "link", "set", VETH, "master", BRIDGE)
    run("ip", "link", "set", VETH, "up")
    run("ip", "link", "set", PEER, "up")
    run("ip", "link", "set", PEER, "down")
    assert not watch.drain(), "creating, attaching and starting links is stackd's own doing"
    run("ip", "link", "set", VETH, "nomaster")
    assert watch.drain() == Changes(links=frozenset({VETH}))
    run("ip", "link", "set", VETH, "down")
    assert watch.drain() == Changes(links=frozenset({VETH}))
    changes = wait_for(watch, lambda: run("ip", "link", "del", VETH), "link deletion")
    assert changes == Changes(links=frozenset({VETH}))  # the peer went too, but is not the owner's
    run("ip", "addr", "add", "10.231.7.1/24", "dev", BRIDGE)
    assert not watch.drain(), "adding an address is stackd's own doing"
    changes = wait_for(watch, lambda: run("ip", "addr", "del", "10.231.7.1/24", "dev", BRIDGE),
                       "address removal")
    assert changes == Changes(links=frozenset({BRIDGE}))  # its gateway address went
    changes = wait_for(watch, lambda: run("ip", "link", "del", BRIDGE), "bridge deletion")
    assert changes == Changes(links=frozenset({BRIDGE}))


def test_table_changes_of_the_owner_are_seen(watch: HostWatch) -> None:
    run("nft", "add", "table", "ip", OTHER_TABLE)
    changes = wait_for(watch, lambda: run("nft", "add", "table", "ip", TABLE), "nft table creation")
    assert changes == Changes(tables=frozenset({TABLE}))
    run("nft", "add", "chain", "ip", TABLE, "c")
    run("nft", "add", "rule", "ip", TABLE, "c", "counter")
    run("nft", "flush", "table", "ip", OTHER_TABLE)
    changes = anyio.run(next_changes, watch, 30, backend="asyncio")
    assert changes == Changes(tables=frozenset({TABLE}))
    run("nft", "delete", "table", "ip", OTHER_TABLE)
    changes = wait_for(watch, lambda: run("nft", "flush", "table", "ip", TABLE), "nft table flush")
    assert changes == Changes(tables=frozenset({TABLE}))
    changes = wait_for(watch, lambda: run("nft", "delete", "table", "ip", TABLE), "nft table deletion")
    assert changes == Changes(tables=frozenset({TABLE}))


def test_closing_kills_and_reaps_the_nft_child(watch: HostWatch) -> None:
    pid = watch.nft_pid
    assert pid is not None and nft_children() == [pid]
    watch.close()
    assert watch.fds() == [] and watch.nft_pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped: a zombie would still accept signal 0


def test_an_nft_child_that_dies_is_reported_as_lost(watch: HostWatch) -> None:
    pid = watch.nft_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    changes = anyio.run(next_changes, watch, 30, backend="asyncio")
    assert changes == Changes(lost=True)
    assert watch.off["tables"].startswith("nft monitor ended")
    assert len(watch.fds()) == 2 and nft_children() == []


def test_a_limit_written_in_a_watched_cgroup_is_seen_and_joining_it_is_not(tmp_path: Path) -> None:
    """With drift repair's ``LimitWatch`` as its ``written`` source, a limit written by hand in a
    container's cgroup directory wakes the watch with that container's name; a process joining
    the cgroup (as an exec does) does not."""
    from stackd.drivers.cgroups.detect import detect
    from stackd.drivers.containers.drift import LimitWatch

    need(os.geteuid() == 0, "the watch host tests need root")
    backing = detect().backing("pids")
    need(backing is not None, "no pids controller")
    assert backing is not None
    folder = backing[1] / "stkwlimits"
    folder.mkdir()
    limits = LimitWatch()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        with HostWatch(HostLayout(tmp_path / "data", tmp_path / "run"), TEST, links=False, tables=False,
                       written=limits) as the_watch:
            limits.watch("stkw-box-1", [folder])
            assert len(the_watch.fds()) == 2
            (folder / "cgroup.procs").write_text(str(sleeper.pid))
            assert anyio.run(next_changes, the_watch, 0.3, backend="asyncio") == Changes()
            changes = wait_for(the_watch, lambda: (folder / "pids.max").write_text("77"), "limit written")
            assert changes == Changes(written=frozenset({"stkw-box-1"}))
            assert limits.written({"stkw-box-1", "stkw-other-1"}) == {"stkw-box-1"}
            assert limits.written({"stkw-box-1"}) == set()
    finally:
        sleeper.kill()
        sleeper.wait()
        limits.close()
        for _ in range(50):
            with contextlib.suppress(OSError):
                folder.rmdir()
                break
            time.sleep(0.02)
        assert not folder.exists()
