"""``RealHost`` without root: it is a ``HostDriver`` (checked by mypy through the annotation
below), it finds its directories from the environment, and the questions that need no kernel
object are answered from its files and store."""

from __future__ import annotations

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
