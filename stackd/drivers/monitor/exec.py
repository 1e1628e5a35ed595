"""Running a command in a running container (``stack exec``, healthchecks) through the
runtime's ``exec``, collecting its exit status and output.

The command's process is the container's own with the call's arguments, environment, working
directory and user (``execspec``); a user given by name is looked up in the container's
/etc/passwd and /etc/group, never following a symbolic link out of its root. Side effects: a
temporary process file, the runtime, a pseudo-terminal when asked for one, and on timeout a
SIGKILL to the command's process (the runtime then ends by itself).

A failure of the runtime itself (the container is not running, the program does not exist) is
raised as a ``DriverError`` with the runtime's message; the command's own failure is its exit
status. Nothing here judges that status (a healthcheck's verdict is its caller's) or touches the
container beyond the one command.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from stackd.drivers.monitor.execspec import Env, exec_process, resolve_user
from stackd.drivers.monitor.monitor import SEARCH_PATH
from stackd.drivers.runtime import ContainerNotRunning, OciRuntime, read_config
from stackd.drivers.runtime.boundary import check_id, error_class, log_errors, os_error
from stackd.errors import PermanentDriverError, TransientDriverError

EXEC_TIMEOUT = 600.0
_DRAIN = 10.0


class ExecResult(NamedTuple):
    exit_code: int
    stdout: bytes
    stderr: bytes


class ExecTimeout(TransientDriverError):
    """The command did not finish in time; it was killed. Carries what it had written."""

    def __init__(self, message: str, stdout: bytes = b"", stderr: bytes = b"") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


def _read_etc(rootfs: Path, name: str) -> str:
    """A file of the container's /etc ("" when missing), never following a symbolic link."""
    etc = rootfs / "etc"
    if etc.is_symlink():
        raise PermanentDriverError(f"cannot look up users: {etc} is a symbolic link")
    try:
        fd = os.open(etc / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise PermanentDriverError(f"cannot read the container's /etc/{name}: {exc.strerror}") from exc
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        return f.read()


def _container_process(runtime: OciRuntime, container_id: str) -> tuple[dict[str, Any], Path]:
    """The running container's process spec and root file system (from its bundle)."""
    state = runtime.state(container_id)
    if state.get("status") != "running":
        raise ContainerNotRunning(f"container {container_id} is {state.get('status') or 'not running'}")
    bundle = Path(str(state.get("bundle", "")))
    config = read_config(bundle)
    root = Path(str((config.get("root") or {}).get("path", "")))
    return dict(config.get("process") or {}), root if root.is_absolute() else bundle / root


def exec_in(runtime: OciRuntime, container_id: str, argv: Sequence[str], *, env: Env = (),
            user: str | None = None, cwd: str | None = None, tty: bool = False, stdin: bytes | None = None,
            timeout: float | None = EXEC_TIMEOUT) -> ExecResult:
    """Run ``argv`` in the running container and return its exit status (128 + n after signal
    n) and output. ``user`` is ``name``, ``uid`` or either with ``:group``; ``stdin`` is fed to
    the command. With ``tty`` the command gets a terminal, its output (both streams, with the
    terminal's ``\\r\\n``) comes back as ``stdout``, and it gets no ``stdin``. Past ``timeout``
    seconds the command is killed and ``ExecTimeout`` raised."""
    check_id(container_id)
    if tty and stdin is not None:
        raise PermanentDriverError("exec: input cannot be given to a command with a terminal")
    base, rootfs = _container_process(runtime, container_id)
    resolved = None
    if user:
        numeric = ":" in user and all(part.isdigit() for part in user.split(":"))
        passwd = "" if numeric else _read_etc(rootfs, "passwd")
        group = "" if numeric else _read_etc(rootfs, "group")
        resolved = resolve_user(user, passwd, group)
    process = exec_process(base, argv, env=env, user=resolved, cwd=cwd, tty=tty)
    what = f"{runtime.info.name} exec {container_id} {argv[0]}"
    with tempfile.TemporaryDirectory(prefix=".stackd-exec-") as tmp:
        spec, log, pid_file = Path(tmp, "process.json"), Path(tmp, "runtime.log"), Path(tmp, "pid")
        spec.write_text(json.dumps(process))
        cmd = [*runtime._global(log), "exec", "--process", str(spec), "--pid-file", str(pid_file),
               container_id]
        try:
            if tty:
                code, out, err = _run_with_terminal(cmd, pid_file, timeout)
            else:
                code, out, err = _run_with_pipes(cmd, pid_file, stdin, timeout)
        except OSError as exc:
            raise os_error(what, exc) from exc
        except _TimedOut as exc:
            raise ExecTimeout(f"{what}: did not finish within {timeout:g}s; killed",
                              exc.stdout, exc.stderr) from None
        failure = log_errors(log)
    if failure:
        raise error_class(failure)(f"{what} failed: {failure}")
    if code < 0:
        raise TransientDriverError(f"{what}: the runtime was killed by signal {-code}")
    return ExecResult(code, out, err)


class _TimedOut(Exception):
    def __init__(self, stdout: bytes, stderr: bytes) -> None:
        super().__init__("timed out")
        self.stdout = stdout
        self.stderr = stderr


def _kill_command(proc: subprocess.Popen[bytes], pid_file: Path) -> None:
    """Kill the command's process in the container, or the runtime if the command never started."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid = 0
    with contextlib.suppress(OSError):
        if pid > 0:
            os.kill(pid, signal.SIGKILL)
        else:
            proc.kill()


def _run_with_pipes(cmd: list[str], pid_file: Path, stdin: bytes | None,
                    timeout: float | None) -> tuple[int, bytes, bytes]:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_command(proc, pid_file)
        try:
            out, err = proc.communicate(timeout=_DRAIN)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        raise _TimedOut(out, err) from None
    finally:
        if proc.poll() is None:  # interrupted: leave nothing running
            _kill_command(proc, pid_file)
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def _run_with_terminal(cmd: list[str], pid_file: Path, timeout: float | None) -> tuple[int, bytes, bytes]:
    """The runtime relays the command's terminal to its own, which must be a controlling
    terminal: a pseudo-terminal made the runtime's by setsid(1)."""
    setsid = shutil.which("setsid", path=SEARCH_PATH)
    if setsid is None:
        raise PermanentDriverError("exec with a terminal needs setsid(1) (util-linux)")
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([setsid, "--ctty", *cmd], stdin=slave, stdout=slave, stderr=slave)
        out = bytearray()
        try:
            # Our own copy of the slave stays open until the runtime has exited: otherwise the
            # terminal hangs up when the last writer closes, and output still in flight is lost.
            deadline = None if timeout is None else time.monotonic() + timeout
            timed_out = not _drain_until_exit(master, out, proc, deadline)
            if timed_out:
                _kill_command(proc, pid_file)
                _drain(master, out, time.monotonic() + _DRAIN)
        finally:
            if proc.poll() is None:
                _kill_command(proc, pid_file)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=_DRAIN)
                proc.kill()
            proc.wait()
    finally:
        os.close(slave)
        os.close(master)
    if timed_out:
        raise _TimedOut(bytes(out), b"")
    return proc.returncode, bytes(out), b""


def _drain_until_exit(master: int, out: bytearray, proc: subprocess.Popen[bytes],
                      deadline: float | None) -> bool:
    """Read the terminal while ``proc`` runs, then what is left in it (True), or stop at ``deadline``."""
    while proc.poll() is None:
        remaining = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
        if remaining <= 0:
            return False
        ready, _, _ = select.select([master], [], [], remaining)
        if ready:
            out += os.read(master, 65536)
    while select.select([master], [], [], 0)[0]:
        chunk = os.read(master, 65536)
        if not chunk:
            break
        out += chunk
    return True


def _drain(master: int, out: bytearray, deadline: float | None) -> bool:
    """Read the terminal into ``out`` until every writer has closed it (True) or ``deadline``."""
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return False
        ready, _, _ = select.select([master], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer is gone
            return True
        if not chunk:
            return True
        out += chunk
