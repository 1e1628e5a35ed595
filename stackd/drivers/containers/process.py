"""A container's process: started under conmon (so it outlives stackd, with its log and exit
status), stopped with its stop signal and then SIGKILL after the grace period, killed, and
deleted from the runtime with conmon's files.

``start`` returns once the process runs; a container whose process ends with a failure right
away (within ``start_check`` seconds) is reported with its last log lines, naming the service.
Such a failed container is left exited with its status and log (as ``ps -a`` and ``logs`` show
it), but its ended runtime container is deleted at once, and with it the leaf cgroup the
runtime made: nothing of the failed start is left half-made. A container that ends at once
with status 0 has done its work (a one-shot job) and is not an error. Starting again a
container that has ended deletes the ended runtime container first (the log is kept and goes
on). Blocking: call from worker threads. Decides nothing about
whether a container should run.
"""

from __future__ import annotations

import contextlib
import os
import signal as signals
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stackd.drivers.containers.info import ContainerInfo
from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.monitor import MonitoredContainer, read_logs, remove_files, start_container
from stackd.drivers.runtime import ContainerNotFound, ContainerNotRunning, OciRuntime
from stackd.drivers.runtime.runtime import remove_leaf_cgroup
from stackd.errors import DriverError, PermanentDriverError, TransientDriverError

START_CHECK = 0.2
KILL_WAIT = 10.0
EXIT_FILE_WAIT = 5.0
CONMON_WAIT = 10.0
LAST_LINES = 10
_POLL = 0.01


def signal_name(sig: str) -> str:
    """``SIGTERM``, ``TERM``, ``term`` and ``15`` as what the runtime's ``kill`` takes."""
    text = sig.strip().upper()
    if text.isdigit():
        if int(text) not in {s.value for s in signals.Signals}:
            raise PermanentDriverError(f"unknown signal {sig!r}")
        return text
    name = text if text.startswith("SIG") else f"SIG{text}"
    if name not in signals.Signals.__members__:
        raise PermanentDriverError(f"unknown signal {sig!r}")
    return name


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while True:
        if condition():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(_POLL)


@dataclass
class Processes:
    """Container processes of one ``RealHost`` (``runtime`` is asked for lazily: finding the
    runtime probes the host once)."""

    layout: HostLayout
    runtime: Callable[[], OciRuntime]
    conmon: str | None = None
    start_check: float = START_CHECK

    def monitored(self, name: str) -> MonitoredContainer:
        paths = self.layout.container(name)
        return MonitoredContainer(id=name, bundle=paths.bundle, log_path=paths.log,
                                  exit_dir=self.layout.exit_dir,
                                  pid_file=self.layout.pid_file(name),
                                  conmon_pid_file=self.layout.conmon_pid_file(name),
                                  socket_dir=self.layout.monitor_dir / "sockets")

    def status(self, name: str) -> str | None:
        """The runtime's status (created, running, paused, stopped), ``None`` when it has none."""
        try:
            return str(self.runtime().state(name).get("status") or "") or None
        except ContainerNotFound:
            return None

    def start(self, info: ContainerInfo, *, fresh: bool = False, watch_exit: bool = True) -> None:
        """Start ``info``'s container; ``fresh``: it was just created and never started, so the
        runtime has no container of that name (no need to ask); ``watch_exit``: watch it for
        ``start_check`` seconds and fail when it exits at once with a failure status."""
        rt = self.runtime()
        status = None if fresh else self.status(info.name)
        if status in ("running", "paused"):
            raise PermanentDriverError(f"service {info.service}: container {info.name} is already running")
        mc = self.monitored(info.name)
        if status is not None:
            self._forget(rt, mc, keep_log=True)
        try:
            mc = start_container(rt, info.name, mc.bundle, log_path=mc.log_path, exit_dir=mc.exit_dir,
                                 pid_file=mc.pid_file, conmon_pid_file=mc.conmon_pid_file, tty=info.tty,
                                 state_dir=self.layout.monitor_dir, conmon=self.conmon)
        except DriverError as exc:
            kind = TransientDriverError if isinstance(exc, TransientDriverError) else PermanentDriverError
            raise kind(f"service {info.service}: container {info.name} did not start: {exc}") from exc
        if not watch_exit:
            return
        _until(lambda: mc.exit_code() is not None, self.start_check)
        code = mc.exit_code()
        if code is not None and code != 0:
            self._reap(rt, mc)
            raise PermanentDriverError(
                f"service {info.service}: container {info.name} exited at once with status {code}"
                + last_lines(mc.log_path))

    def _reap(self, rt: OciRuntime, mc: MonitoredContainer) -> None:
        """Delete an ended runtime container and its leaf cgroup, keeping conmon's exit file and
        the log (best effort: the caller reports the failure that led here)."""
        with contextlib.suppress(DriverError):
            rt.delete(mc.id, force=True)
        _until(lambda: not mc.conmon_alive(), CONMON_WAIT)
        remove_leaf_cgroup(mc.bundle)
        for path in (mc.pid_file, mc.conmon_pid_file):
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)

    def stop(self, info: ContainerInfo, *, timeout: float, signal: str) -> None:
        """Send the stop signal, wait up to ``timeout`` seconds, then SIGKILL. A container that
        is not running is left as it is."""
        rt = self.runtime()
        mc = self.monitored(info.name)
        if self.status(info.name) not in ("running", "paused"):
            return
        with contextlib.suppress(ContainerNotRunning):
            rt.kill(info.name, signal_name(signal))
        if not _until(lambda: self._ended(mc), max(timeout, 0.0)):
            with contextlib.suppress(ContainerNotRunning):
                rt.kill(info.name, "SIGKILL", all_processes=True)
            if not _until(lambda: self._ended(mc), KILL_WAIT):
                raise TransientDriverError(f"service {info.service}: container {info.name} is still running "
                                           f"{KILL_WAIT:g}s after SIGKILL")
        _until(lambda: mc.exit_code() is not None or not mc.conmon_alive(), EXIT_FILE_WAIT)

    def _ended(self, mc: MonitoredContainer) -> bool:
        """Whether the process has ended: conmon wrote its exit file, or (conmon gone without
        writing one) the runtime no longer has it running. Asking the runtime costs a process,
        so it is asked only when conmon is not there to tell."""
        if mc.exit_code() is not None:
            return True
        return not mc.conmon_alive() and self.status(mc.id) not in ("running", "paused")

    def kill(self, info: ContainerInfo, signal: str) -> None:
        try:
            self.runtime().kill(info.name, signal_name(signal))
        except (ContainerNotRunning, ContainerNotFound) as exc:
            raise PermanentDriverError(
                f"service {info.service}: container {info.name} is not running") from exc

    def delete(self, name: str) -> None:
        """Delete the runtime's container (killing what still runs), wait for conmon to end and
        remove its files, the log included."""
        self._forget(self.runtime(), self.monitored(name), keep_log=False)

    def _forget(self, rt: OciRuntime, mc: MonitoredContainer, *, keep_log: bool) -> None:
        with contextlib.suppress(ContainerNotFound):
            rt.delete(mc.id, force=True)
        if not _until(lambda: not mc.conmon_alive(), CONMON_WAIT):
            pid = mc.conmon_pid()
            if pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(pid, signals.SIGKILL)
            _until(lambda: not mc.conmon_alive(), CONMON_WAIT)
        remove_files(mc, keep_log=keep_log)


def last_lines(log: Path, count: int = LAST_LINES) -> str:
    """``; its last output:`` and the last ``count`` lines of the log, or "" when it is empty."""
    try:
        lines = list(read_logs(log, tail=count))
    except (OSError, DriverError, ValueError):
        return ""
    if not lines:
        return " and wrote nothing"
    return "; its last output:\n" + "\n".join(f"  {line.text}" for line in lines)
