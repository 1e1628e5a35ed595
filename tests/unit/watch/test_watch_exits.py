"""The exit-file source of ``HostWatch`` on a temporary run directory (inotify needs no root),
with the link and nftables sources off, and ``next_changes`` on the asyncio backend."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.watch import Changes, HostWatch, next_changes


@pytest.fixture
def layout(tmp_path: Path) -> HostLayout:
    return HostLayout(data_root=tmp_path / "data", run_dir=tmp_path / "run")


@pytest.fixture
def watch(layout: HostLayout) -> Iterator[HostWatch]:
    with HostWatch(layout, links=False, tables=False) as w:
        yield w


def conmon_writes(exit_dir: Path, name: str, status: int) -> None:
    """What conmon does: a temporary file next to the exit file, renamed into place."""
    temp = exit_dir / f"{name}.Xy12Zq"
    temp.write_text(str(status))
    os.rename(temp, exit_dir / name)


def test_the_exit_dir_is_made_private(watch: HostWatch, layout: HostLayout) -> None:
    mode = layout.exit_dir.stat().st_mode
    assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o700
    assert watch.off == {"links": "not wanted", "tables": "not wanted"}
    assert len(watch.fds()) == 1


def test_nothing_happened_is_a_false_change(watch: HostWatch) -> None:
    assert watch.drain() == Changes()
    assert not watch.drain()


def test_a_written_exit_file_is_seen_by_name(watch: HostWatch, layout: HostLayout) -> None:
    (layout.exit_dir / "shop-web-1").write_text("0")
    assert watch.drain() == Changes(exited=frozenset({"shop-web-1"}))
    assert not watch.drain()


def test_conmons_temporary_file_is_not_reported(watch: HostWatch, layout: HostLayout) -> None:
    conmon_writes(layout.exit_dir, "shop-db-1", 137)
    conmon_writes(layout.exit_dir, "shop-web-2", 0)
    assert watch.drain().exited == {"shop-db-1", "shop-web-2"}


def test_directories_and_hidden_files_are_not_containers(watch: HostWatch, layout: HostLayout) -> None:
    (layout.exit_dir / "sub").mkdir()
    (layout.exit_dir / ".partial").write_text("1")
    assert not watch.drain()


def test_losing_the_directory_is_reported_as_lost(watch: HostWatch, layout: HostLayout) -> None:
    layout.exit_dir.rmdir()
    assert watch.drain().lost


def test_close_twice_and_no_fds_after(layout: HostLayout) -> None:
    w = HostWatch(layout, links=False, tables=False)
    w.open()
    (fd,) = w.fds()
    w.close()
    w.close()
    assert w.fds() == []
    with pytest.raises(OSError):
        os.fstat(fd)


def test_next_changes_waits_for_the_event(watch: HostWatch, layout: HostLayout) -> None:
    async def main() -> Changes:
        timer = threading.Timer(0.05, conmon_writes, (layout.exit_dir, "shop-web-1", 0))
        timer.start()
        try:
            return await next_changes(watch, timeout=30)
        finally:
            timer.join()

    assert anyio.run(main, backend="asyncio") == Changes(exited=frozenset({"shop-web-1"}))


def test_next_changes_gives_an_empty_change_after_the_timeout(watch: HostWatch) -> None:
    assert anyio.run(next_changes, watch, 0.05, backend="asyncio") == Changes()


def test_next_changes_returns_what_is_already_pending(watch: HostWatch, layout: HostLayout) -> None:
    (layout.exit_dir / "shop-web-3").write_text("0")
    assert anyio.run(next_changes, watch, None, backend="asyncio").exited == {"shop-web-3"}


def test_without_nft_the_table_source_is_off(layout: HostLayout, tmp_path: Path) -> None:
    with HostWatch(layout, links=False, nft=str(tmp_path / "no-such-nft")) as w:
        assert "not installed" in w.off["tables"]
        assert w.nft_pid is None and len(w.fds()) == 1


def test_an_nft_that_ends_at_once_leaves_the_source_off(layout: HostLayout) -> None:
    true = shutil.which("true")
    assert true is not None
    with HostWatch(layout, links=False, nft=true) as w:
        assert w.off["tables"].startswith("nft monitor ended (status 0)")
        assert w.nft_pid is None and len(w.fds()) == 1
