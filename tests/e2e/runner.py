"""Driving the real ``stack`` command on a copy of the example stack, as a user would.

``StackdDirs`` is where one test session keeps stackd's data root and run directory (and the
environment that points the CLI at them); ``Demo`` is one copy of the repository's example stack
(``stack.yaml``, ``stack.prod.yaml``, ``.env``, ``.env.prod``, ``examples/``) under a project name
of its own, with the CLI, its ``ps`` rows, plan text parsing and an ``Owner`` for the host checks.
Also: plain HTTP and TCP probes from the host.

It must not hide failures: every CLI call has a timeout and, with ``check``, a non-zero exit fails
the test with the command's output.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.hoststate import Owner, run_json

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_FILES = ("stack.yaml", "stack.prod.yaml", ".env", ".env.prod", "examples")
CLI_TIMEOUT = 180.0

# Variables of the user's shell that would change what the example stack means.
CLEARED_ENV = ("STACK_FILE", "COMPOSE_FILE", "STACK_ENV", "STACK_PROFILES", "COMPOSE_PROFILES",
               "STACK_PROJECT_NAME", "COMPOSE_PROJECT_NAME", "COMPOSE_PATH_SEPARATOR", "WEB_PORT", "APP_ENV",
               "REDIS_MAXMEMORY", "STACKD_DATA_ROOT", "STACKD_RUN_DIR")


def stack_command() -> list[str]:
    """The installed ``stack`` script beside this Python, else ``python -m stackd.cli``."""
    script = Path(sys.executable).with_name("stack")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "stackd.cli"]


@dataclass(frozen=True)
class StackdDirs:
    data_root: Path
    run_dir: Path

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
        return {**env, "STACKD_DATA_ROOT": str(self.data_root), "STACKD_RUN_DIR": str(self.run_dir)}


def stop_daemon(run_dir: Path, timeout: float = 30.0) -> bool:
    """SIGTERM the stackd daemon of ``run_dir`` (started by the first ``stack`` command that needed
    it) and wait until it is gone; whether one was running."""
    try:
        pid = int((run_dir / "stackd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    raise AssertionError(f"stackd (pid {pid}) did not stop within {timeout:g}s of SIGTERM")


@dataclass(frozen=True)
class Ran:
    argv: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit {self.code}\n--- stdout\n{self.out}--- stderr\n{self.err}"


def copy_example(into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, into / name)
        else:
            shutil.copy2(source, into / name)
    return into


class Demo:
    """A copy of the example stack in ``workdir``, run under a fresh project name."""

    def __init__(self, dirs: StackdDirs, workdir: Path) -> None:
        self.dirs = dirs
        self.dir = copy_example(workdir)
        self.project = f"e2e{secrets.token_hex(4)}"
        self.owner = Owner(self.project, (str(dirs.data_root), str(dirs.run_dir)))

    def stack(self, *args: str, check: bool = True, timeout: float = CLI_TIMEOUT) -> Ran:
        """Run ``stack -p <project> ARGS`` in the copy."""
        argv = (*stack_command(), "-p", self.project, *args)
        done = subprocess.run(argv, cwd=self.dir, env=self.dirs.environ(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        ran = Ran(tuple(argv), done.returncode, done.stdout, done.stderr)
        if check and ran.code != 0:
            raise AssertionError(f"command failed:\n{ran}")
        return ran

    def up(self, *options: str, check: bool = True) -> Ran:
        """``stack [OPTIONS] up -d``; then note the links the containers use."""
        ran = self.stack(*options, "up", "-d", check=check)
        self.owner.learn()
        return ran

    def down(self, *options: str, volumes: bool = False, check: bool = True) -> Ran:
        return self.stack(*options, "down", *(["-v"] if volumes else []), check=check)

    def ps(self, *options: str) -> dict[str, dict[str, Any]]:
        """``stack ps -a --format json``, by service (each service here has one container)."""
        out = self.stack(*options, "ps", "-a", "--format", "json").out
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        by_service = {row["service"]: row for row in rows}
        assert len(by_service) == len(rows), f"more than one container per service: {rows}"
        return by_service

    def exec(self, service: str, *argv: str, check: bool = True) -> Ran:
        return self.stack("exec", service, *argv, check=check)

    def overlay(self, name: str, text: str) -> None:
        """Write ``stack.<name>.yaml`` (used with ``--env <name>``)."""
        (self.dir / f"stack.{name}.yaml").write_text(text)

    def volume_dir(self, volume: str) -> Path:
        return self.dirs.data_root / "volumes" / f"{self.project}_{volume}"

    def leftover_files(self) -> list[str]:
        """Container directories, pid files and exit files of the project still in stackd's dirs."""
        places = (self.dirs.data_root / "containers", self.dirs.run_dir / "pids", self.dirs.run_dir / "exits")
        return sorted(str(p) for place in places if place.is_dir()
                      for p in place.iterdir() if p.name.startswith(f"{self.project}-"))


def plan_steps(text: str) -> set[tuple[str, str]]:
    """``(action, resource)`` of each operation of a rendered plan (``#3 stop service:web:1 [...]``)."""
    steps: set[tuple[str, str]] = set()
    for line in text.splitlines():
        if line.startswith("#"):
            _, action, rest = line.split(" ", 2)
            steps.add((action, rest.split(" ", 1)[0].rstrip(":")))
    return steps


def recreated(*services: str) -> set[tuple[str, str]]:
    return {(action, f"service:{s}:1") for s in services for action in ("stop", "remove", "create", "start")}


# ------------------------------------------------------------------------------ probes from the host

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(address: str, port: int, *, within: float = 20.0) -> str:
    """The body ``GET /`` returns, retried until it answers or ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        try:
            with _OPENER.open(f"http://{address}:{port}/", timeout=5) as response:
                body: bytes = response.read()
                return body.decode()
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise AssertionError(f"nothing answered HTTP on {address}:{port}: {exc}") from exc
            time.sleep(0.25)


def refuses(address: str, port: int) -> bool:
    """True when a TCP connection to ``address:port`` is refused (or times out)."""
    try:
        with socket.create_connection((address, port), timeout=3):
            return False
    except OSError:
        return True


def outward_address() -> str:
    """The IPv4 address of eth0 (else of the interface of the default route)."""
    names = ["eth0"] if Path("/sys/class/net/eth0").exists() else [
        r["dev"] for r in run_json("ip", "-j", "-4", "route", "show", "default") or []]
    for name in names:
        for link in run_json("ip", "-j", "-4", "addr", "show", "dev", name) or []:
            for a in link.get("addr_info", []):
                if a.get("family") == "inet":
                    return str(a["local"])
    raise AssertionError("this host has no outward IPv4 address (eth0 or default route)")


def unchanged(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Same process, same start: the container was not recreated or restarted."""
    return (before["pid"], before["started_at"]) == (after["pid"], after["started_at"])
