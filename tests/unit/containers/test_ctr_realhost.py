"""``RealHost`` without root: it is a ``HostDriver`` (checked by mypy through the annotation
below), it finds its directories from the environment, and the questions that need no kernel
object are answered from its files and store."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from stackd.drivers.host import HostDriver
from stackd.drivers.realhost import RealHost
from stackd.errors import PermanentDriverError
from tests.unit.containers.conftest import LoadStack


def test_an_empty_host_answers_without_touching_the_kernel(tmp_path: Path, load_stack: LoadStack) -> None:
    host = RealHost(tmp_path / "data", tmp_path / "run")
    driver: HostDriver = host
    try:
        assert driver.image_id("busybox") is None
        assert driver.list_containers("demo") == [] and driver.list_volumes("demo") == []
        assert driver.log_path("demo-web-1") == str(tmp_path / "data/containers/demo-web-1/ctr.log")
        driver.remove_container("demo-web-1", volumes=True)  # absent: not an error
        with pytest.raises(PermanentDriverError, match="no such container: demo-web-1"):
            driver.start_container("demo-web-1")
        stack = load_stack("services:\n  web: {image: busybox}\n")
        with pytest.raises(PermanentDriverError, match="service web: no build section"):
            driver.build_image(stack, "web", "demo-web")
        assert host.container_stats("demo-web-1") is None
    finally:
        host.close()


def test_directories_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKD_DATA_ROOT", str(tmp_path / "d"))
    monkeypatch.setenv("STACKD_RUN_DIR", str(tmp_path / "r"))
    host = RealHost.from_env()
    try:
        assert (host.layout.data_root, host.layout.run_dir) == (tmp_path / "d", tmp_path / "r")
        assert (tmp_path / "d" / "stackd.db").is_file()
    finally:
        host.close()


def test_concurrent_refreshes_of_a_project_share_one_that_starts_after_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = RealHost(tmp_path / "data", tmp_path / "run")
    began: list[int] = []
    first_running, release = threading.Event(), threading.Event()

    def slow_refresh(project: str) -> None:
        began.append(len(asked))
        if len(began) == 1:
            first_running.set()
            release.wait(10)

    asked: list[int] = []
    monkeypatch.setattr(host, "_refresh_now", slow_refresh)
    try:
        first = threading.Thread(target=host.refresh, args=("demo",))
        first.start()
        assert first_running.wait(10)
        waiting = []
        for _ in range(5):  # asked while the first runs: served by one more refresh, not five
            asked.append(1)
            t = threading.Thread(target=host.refresh, args=("demo",))
            t.start()
            waiting.append(t)
        for _ in range(1000):  # until all five requests are counted
            if host._refreshes["demo"].asked == 6:
                break
            threading.Event().wait(0.01)
        release.set()
        for t in [first, *waiting]:
            t.join(10)
        assert began == [0, 5]  # the second refresh began after all five requests
        host.refresh("other")
        host.refresh("demo")  # asked after the others finished: a refresh of its own
        assert began == [0, 5, 5, 5]
    finally:
        release.set()
        host.close()
