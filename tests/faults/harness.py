"""Driving the real ``stackd`` daemon and the real ``stack`` CLI for the fault tests.

``Stackd`` is one test session's daemon: its data root and run directory (``StackdDirs``), the
daemon process (started here with the session's environment, its output appended to
``<data>/stackd.log`` as the CLI does; killed with SIGKILL or stopped with SIGTERM through the pid
file) and the OCI runtime's view of its containers (``<runtime> --root <run>/runtime/<name> list``).
``Project`` is one stack file under a project name of the test's (prefix ``stkf``): the CLI verbs,
``ps`` rows, events, and the host names of its objects (bridges, veths, namespaces, nft table,
cgroups), which the leftover checks use. ``wait_for`` polls a condition with a deadline.

It must not hide failures: every CLI call has a timeout and, with ``check``, a non-zero exit
fails the test with the command's output; a daemon that does not answer fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from stackd.cli.client import Daemon
from stackd.drivers.network.names import DEFAULT as NAMING
from tests.e2e.hoststate import link_names_of
from tests.e2e.runner import Ran, StackdDirs, stack_command

CLI_TIMEOUT = 120.0
START_TIMEOUT = 30.0
PREFIX = "stkf"
CGROUP_MOUNT = Path("/sys/fs/cgroup")
CGROUP_ROOT = "stackd"

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float, every: float = 0.05) -> T:
    """The first true value ``probe`` returns within ``timeout`` seconds (else the test fails,
    naming ``what`` and the last value seen)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g}s (last seen: {last!r})")
        time.sleep(every)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def stackd_command() -> list[str]:
    """The installed ``stackd`` script beside this Python, else ``python -m stackd.cli.daemon``."""
    script = Path(sys.executable).with_name("stackd")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "stackd.cli.daemon"]


@dataclass
class Stackd:
    """One session's daemon and CLI (see the module docstring)."""

    dirs: StackdDirs
    work: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.dirs.data_root / "stackd.log"

    def environ(self) -> dict[str, str]:
        return self.dirs.environ()

    # ------------------------------------------------------------------ the daemon

    def pid(self) -> int | None:
        """The pid in the pid file, when that process lives."""
        try:
            pid = int((self.dirs.run_dir / "stackd.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    def answers(self) -> bool:
        return Daemon(str(self.dirs.run_dir / "stackd.sock")).alive()

    def start(self, *options: str) -> int:
        """Start ``stackd`` and wait until it answers on its socket; its pid."""
        assert self.pid() is None, f"a stackd runs already (pid {self.pid()})"
        self.dirs.data_root.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([*stackd_command(), *options], stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True, env=self.environ())
        wait_for("stackd answers on its socket", lambda: self.answers() or self._died(),
                 timeout=START_TIMEOUT, every=0.02)
        pid = self.pid()
        assert pid is not None and self.proc.pid == pid, f"the pid file says {pid}, started {self.proc.pid}"
        return pid

    def _died(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"stackd exited with {self.proc.returncode} at start; "
                                 f"log:\n{self.log_tail()}")
        return False

    def _gone(self, pid: int, timeout: float) -> None:
        if self.proc is not None and self.proc.pid == pid:
            self.proc.wait(timeout)
            self.proc = None
        else:
            wait_for(f"stackd {pid} ends", lambda: not _alive(pid), timeout=timeout)

    def kill(self) -> int:
        """SIGKILL the daemon (through its pid file) and wait until it is gone; its pid."""
        pid = self.pid()
        assert pid is not None, "no stackd runs"
        os.kill(pid, signal.SIGKILL)
        self._gone(pid, 10.0)
        return pid

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the daemon and wait until it is gone; whether one was running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        self._gone(pid, timeout)
        return True

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ------------------------------------------------------------------ the CLI and the runtime

    def cli(self, *args: str, check: bool = True, timeout: float = CLI_TIMEOUT,
            cwd: Path | None = None) -> Ran:
        argv = (*stack_command(), *args)
        done = subprocess.run(argv, cwd=cwd or self.work, env=self.environ(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        ran = Ran(tuple(argv), done.returncode, done.stdout, done.stderr)
        if check and ran.code != 0:
            raise AssertionError(f"command failed:\n{ran}\n--- stackd log\n{self.log_tail()}")
        return ran

    def runtime_list(self) -> list[dict[str, Any]]:
        """The OCI runtime's containers of this run directory (``list --format json``; none when
        the daemon has not looked for its runtime since the run directory was made)."""
        try:
            info = json.loads((self.dirs.run_dir / "runtime.json").read_text())
        except FileNotFoundError:
            return []
        root = self.dirs.run_dir / "runtime" / info["name"]
        if not root.is_dir():
            return []
        done = subprocess.run([info["path"], "--root", str(root), "list", "--format", "json"],
                              capture_output=True, text=True, check=False, timeout=30)
        if done.returncode != 0:
            raise AssertionError(f"{info['name']} list failed: {done.stderr}")
        rows: list[dict[str, Any]] = json.loads(done.stdout or "[]") or []
        return rows

    def runtime(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the OCI runtime on this run directory's state (``crun --root ... ARGS``)."""
        info = json.loads((self.dirs.run_dir / "runtime.json").read_text())
        root = self.dirs.run_dir / "runtime" / info["name"]
        return subprocess.run([info["path"], "--root", str(root), *args], capture_output=True, text=True,
                              check=False, timeout=30)


@dataclass
class Project:
    """One stack file under a project name of its own (see the module docstring)."""

    stackd: Stackd
    folder: Path
    name: str = field(default_factory=lambda: f"{PREFIX}{secrets.token_hex(3)}")
    networks: set[str] = field(default_factory=lambda: {"default"})
    seen_links: set[str] = field(default_factory=set)

    def write(self, services: Mapping[str, Any], **top: Any) -> Path:
        """Write ``stack.yaml`` with these services (and top-level keys such as ``volumes``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "stack.yaml"
        path.write_text(yaml.safe_dump({"services": dict(services), **top}, sort_keys=False))
        self.networks |= set(top.get("networks") or {})
        return path

    def stack(self, *args: str, check: bool = True, timeout: float = CLI_TIMEOUT) -> Ran:
        """``stack -p <project> ARGS`` in the project's folder."""
        return self.stackd.cli("-p", self.name, *args, check=check, timeout=timeout, cwd=self.folder)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """``stack -p <project> ARGS`` started, not waited for."""
        return subprocess.Popen([*stack_command(), "-p", self.name, *args], cwd=self.folder,
                                env=self.stackd.environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def up(self, *args: str) -> Ran:
        ran = self.stack("up", "-d", "--progress", "quiet", *args)
        self.learn()
        return ran

    def down(self, *args: str, check: bool = True) -> Ran:
        self.learn()
        return self.stack("down", "--progress", "quiet", *args, check=check)

    def ps(self) -> dict[str, list[dict[str, Any]]]:
        """``stack ps -a --format json`` rows, by service."""
        rows = [json.loads(line) for line in self.stack("ps", "-a", "--format", "json").out.splitlines()
                if line.strip()]
        by_service: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_service.setdefault(row["service"], []).append(row)
        return by_service

    def events(self, since: int | None = None) -> list[dict[str, Any]]:
        args = ["events", "--json", "--no-follow", *(["--since", str(since)] if since is not None else [])]
        return [json.loads(line) for line in self.stack(*args).out.splitlines() if line.strip()]

    def last_event_id(self) -> int:
        return max((e["id"] for e in self.events()), default=0)

    def exec(self, service: str, *argv: str, check: bool = True, timeout: float = 30.0) -> Ran:
        return self.stack("exec", "-T", service, *argv, check=check, timeout=timeout)

    # ------------------------------------------------------------------ the runtime and the host

    def runtime_containers(self) -> dict[str, dict[str, Any]]:
        """The runtime's containers of this project, by name."""
        return {c["id"]: c for c in self.stackd.runtime_list() if c["id"].startswith(f"{self.name}-")}

    def container_dirs(self) -> list[str]:
        folder = self.stackd.dirs.data_root / "containers"
        return sorted(p.name for p in folder.iterdir() if p.name.startswith(f"{self.name}-")) \
            if folder.is_dir() else []

    def info(self, container: str) -> dict[str, Any]:
        """The ``container.json`` the host driver keeps for ``container``."""
        path = self.stackd.dirs.data_root / "containers" / container / "container.json"
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def bridge(self, network: str = "default") -> str:
        return NAMING.bridge("", f"{self.name}_{network}")

    def veth(self, container: str, network: str = "default") -> str:
        return NAMING.veth(container, f"{self.name}_{network}")

    def table(self) -> str:
        return NAMING.table(self.name)

    def netns(self) -> list[str]:
        with contextlib.suppress(FileNotFoundError):
            return sorted(n for n in os.listdir("/run/netns")
                          if n.startswith(f"{NAMING.prefix}-{self.name}-"))
        return []

    def cgroup_dirs(self) -> list[Path]:
        """``/sys/fs/cgroup/<hierarchy>/stackd/<project>`` of every hierarchy where it exists."""
        return sorted(p for p in CGROUP_MOUNT.glob(f"*/{CGROUP_ROOT}/{self.name}") if p.is_dir())

    def container_cgroups(self, hierarchy: str = "memory") -> list[str]:
        """The container cgroups (``<group>/<container>``) of the project in one hierarchy."""
        top = CGROUP_MOUNT / hierarchy / CGROUP_ROOT / self.name
        return sorted(f"{g.name}/{c.name}" for g in top.iterdir() if g.is_dir()
                      for c in g.iterdir() if c.is_dir()) if top.is_dir() else []

    def bridge_ports(self, network: str = "default") -> list[str]:
        """The links attached to the project's bridge."""
        folder = Path("/sys/class/net") / self.bridge(network) / "brif"
        return sorted(os.listdir(folder)) if folder.is_dir() else []

    def learn(self) -> set[str]:
        """Note the links the project's containers use now (for the leftover checks)."""
        found = link_names_of(self.netns())
        found |= {self.bridge(n) for n in self.networks}
        for network in self.networks:
            found |= set(self.bridge_ports(network))
        self.seen_links |= found
        return found


def rows_by_name(rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(r["name"]): r for r in rows}
