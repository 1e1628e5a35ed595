"""`stack up` attached, in a process of its own over a FakeHost: it follows the logs until Ctrl-C,
then stops the stack gracefully, and a second Ctrl-C kills it; and `stack up` as a user who is
not root says so in one line and touches nothing."""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest

from stackd.cli.main import run

REPO = Path(__file__).resolve().parents[3]
WAIT = 60.0  # seconds before a broken test gives up (never reached when all is well)


class Child:
    """A process whose output lines are collected as they come."""

    def __init__(self, argv: list[str], **kwargs: object) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, **kwargs)  # type: ignore[call-overload]
        self.lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self.seen: dict[str, list[str]] = {"out": [], "err": []}
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for name, stream in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()

    def _pump(self, name: str, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put((name, line.rstrip("\n")))

    def wait_for(self, name: str, text: str) -> None:
        while text not in self.seen[name]:
            try:
                which, line = self.lines.get(timeout=WAIT)
            except queue.Empty:
                self.proc.kill()
                pytest.fail(f"never saw {text!r} on std{name}; saw {self.seen}")
            self.seen[which].append(line)

    def finish(self) -> int:
        code: int = self.proc.wait(timeout=WAIT)
        while not self.lines.empty():
            which, line = self.lines.get()
            self.seen[which].append(line)
        return code


def attached(tmp_path: Path, mode: str) -> Child:
    return Child([sys.executable, "-m", "tests.unit.cli.attached_host", str(tmp_path), mode], cwd=REPO)


def result(tmp_path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((tmp_path / "result.json").read_text())
    return data


def test_ctrl_c_stops_the_stack_gracefully(tmp_path: Path) -> None:
    child = attached(tmp_path, "graceful")
    child.wait_for("out", "demo-web-1  | ready")
    child.wait_for("out", "demo-db-1  | ready")
    assert "Attaching to demo-db-1, demo-web-1" in child.seen["err"]
    child.proc.send_signal(signal.SIGINT)
    assert child.finish() == 130
    assert "Gracefully stopping... (press Ctrl+C again to force)" in child.seen["err"]
    assert "Container demo-web-1  Stopped" in child.seen["err"]
    assert not any("Traceback" in line for line in child.seen["err"])
    assert result(tmp_path) == {"code": 130, "kills": [],
                                "states": {"demo-db-1": ["exited", 0], "demo-web-1": ["exited", 0]}}


def test_a_second_ctrl_c_kills(tmp_path: Path) -> None:
    child = attached(tmp_path, "force")
    child.wait_for("out", "demo-web-1  | ready")
    child.proc.send_signal(signal.SIGINT)
    child.wait_for("err", "Gracefully stopping... (press Ctrl+C again to force)")
    child.proc.send_signal(signal.SIGINT)
    assert child.finish() == 130
    assert "Killing..." in child.seen["err"]
    done = result(tmp_path)
    assert sorted(done["kills"]) == ["demo-db-1", "demo-web-1"]  # type: ignore[call-overload]
    assert done["states"] == {"demo-db-1": ["exited", 137], "demo-web-1": ["exited", 137]}
    assert not any("Traceback" in line for line in child.seen["err"])


def test_sigterm_stops_it_too(tmp_path: Path) -> None:
    child = attached(tmp_path, "graceful")
    child.wait_for("out", "demo-db-1  | ready")
    child.proc.send_signal(signal.SIGTERM)
    assert child.finish() == 143
    assert result(tmp_path)["states"] == {"demo-db-1": ["exited", 0], "demo-web-1": ["exited", 0]}


def test_up_as_a_user_who_is_not_root_is_one_line_and_exit_1(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "stack.yaml").write_text("services:\n  web: {image: busybox}\n")
    monkeypatch.setenv("STACKD_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("STACKD_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setattr("stackd.drivers.realhost.os.geteuid", lambda: 1000)
    for argv in (["up", "-d"], ["ps"], ["down"]):
        out, err = io.StringIO(), io.StringIO()
        assert run(argv, environ={}, cwd=str(tmp_path), out=out, err=err) == 1
        [line] = err.getvalue().splitlines()
        assert line.startswith(f"error: stack {argv[0]} needs root (") and line.endswith("e.g. with sudo")
        assert out.getvalue() == ""
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()
