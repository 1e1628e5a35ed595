"""Containers that outlive stackd: ``start_container`` creates a container through conmon and
starts it, so that conmon (not stackd) is the parent of the container's process, keeps its log
and records its exit status; ``MonitoredContainer`` reads what conmon left (exit status, pids,
whether it still watches) from files, so that a restarted stackd finds all of it again.

Side effects live here: conmon is started, the runtime wrapper is written under the monitor's
state directory, and a failed start is undone (container killed and deleted, its leaf cgroup
and every file of this call removed). Failures are ``TransientDriverError`` or
``PermanentDriverError`` carrying the runtime's own message. No decisions about desired state
are made here, and nothing here waits for a container to end.

A conmon whose container has ended stays a zombie until its parent reaps it: after the double
fork its parent is the nearest child subreaper, else PID 1. ``conmon_alive`` counts a zombie
as gone.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from stackd.drivers.monitor.conmon import (
    BUNDLE_LEFTOVERS,
    SYNC_PIPE_ENV,
    SyncMessage,
    conmon_argv,
    is_conmon_of,
    parse_sync_message,
    proc_state,
    wrapper_name,
    wrapper_script,
)
from stackd.drivers.runtime import ContainerNotFound, OciRuntime, RuntimeInfo
from stackd.drivers.runtime.boundary import check_id, error_class, log_errors, os_error
from stackd.drivers.runtime.runtime import remove_leaf_cgroup
from stackd.errors import DriverError, PermanentDriverError, TransientDriverError

DEFAULT_STATE_DIR = Path("/run/stackd/monitor")
START_TIMEOUT = 60.0
STOP_WAIT = 10.0
"""How long a failed start waits for conmon to see its container die before killing conmon."""
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_LIBEXEC = ("/usr/libexec/podman/conmon", "/usr/local/libexec/podman/conmon", "/usr/libexec/crio/conmon")
_SUN_PATH_MAX = 107  # a unix socket path, without its terminating NUL


@dataclass(frozen=True)
class MonitoredContainer:
    """Where conmon keeps what it knows about one container. Plain paths: a restarted stackd
    rebuilds this from its records and reads the same files."""

    id: str
    bundle: Path
    log_path: Path
    exit_dir: Path
    pid_file: Path
    conmon_pid_file: Path
    socket_dir: Path

    @property
    def exit_file(self) -> Path:
        return self.exit_dir / self.id

    def exit_code(self) -> int | None:
        """The container's exit status as conmon recorded it (128 + n after signal n), or
        ``None`` while it has not ended (or conmon never saw it end)."""
        return read_exit_code(self.exit_dir, self.id)

    def container_pid(self) -> int | None:
        """The host pid of the container's first process, as the runtime wrote it."""
        return read_pid(self.pid_file)

    def conmon_pid(self) -> int | None:
        return read_pid(self.conmon_pid_file)

    def conmon_alive(self) -> bool:
        """Whether this container's conmon still runs (a zombie or a reused pid does not count)."""
        pid = self.conmon_pid()
        return pid is not None and conmon_running(pid, self.id)

    def oom_killed(self) -> bool:
        """Whether conmon saw the kernel kill the container for lack of memory."""
        return (self.bundle / "oom").exists()


# -- reading what conmon left ------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    """The pid in ``path``, or ``None`` when the file is missing or holds no pid."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def read_exit_code(exit_dir: Path, container_id: str) -> int | None:
    """The exit status conmon wrote to ``exit_dir/<id>`` (``None`` when there is none yet)."""
    try:
        text = Path(exit_dir, check_id(container_id)).read_text().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise PermanentDriverError(f"exit file of {container_id} holds {text!r}, not a number") from exc


def conmon_running(pid: int, container_id: str) -> bool:
    """Whether ``pid`` is a live (not zombie) conmon watching ``container_id``."""
    try:
        state = proc_state(Path(f"/proc/{pid}/stat").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return state not in ("Z", "X", "x", "") and is_conmon_of(cmdline, container_id)


# -- finding and preparing binaries -------------------------------------------------------------


def find_conmon() -> str:
    """The conmon binary: on PATH, in the sbin directories, or where podman keeps its own."""
    path = os.environ.get("PATH", "")
    found = shutil.which("conmon", path=f"{path}:{SEARCH_PATH}" if path else SEARCH_PATH)
    if found:
        return found
    for candidate in _LIBEXEC:
        if os.access(candidate, os.X_OK):
            return candidate
    raise PermanentDriverError("conmon is not installed (e.g. `apt-get install conmon`)")


def ensure_wrapper(info: RuntimeInfo, state_dir: Path) -> str:
    """The executable conmon should run as the runtime: the runtime binary itself, or a wrapper
    script written (once, atomically) under ``state_dir/runtime-wrappers``."""
    script = wrapper_script(info, shutil.which("unshare", path=SEARCH_PATH) or "unshare")
    if script is None:
        return info.path
    directory = state_dir / "runtime-wrappers"
    path = directory / wrapper_name(info, script)
    try:
        if path.is_file() and path.read_text() == script and os.access(path, os.X_OK):
            return str(path)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(script)
            os.chmod(tmp, 0o755)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise PermanentDriverError(f"cannot write the runtime wrapper {path}: {exc}") from exc
    return str(path)


# -- starting ---------------------------------------------------------------------------------


def start_container(runtime: OciRuntime, container_id: str, bundle: Path, *, log_path: Path,
                    exit_dir: Path, pid_file: Path, conmon_pid_file: Path, tty: bool = False,
                    state_dir: Path = DEFAULT_STATE_DIR, log_size_max: int | None = None,
                    conmon: str | None = None, timeout: float = START_TIMEOUT) -> MonitoredContainer:
    """Create the container of ``bundle`` under a new conmon and start it; return once it runs.

    conmon logs the container's output to ``log_path`` (k8s-file format; see ``logs.py``) and
    writes its exit status to ``exit_dir/<id>``; the runtime writes the container's pid to
    ``pid_file`` and conmon its own to ``conmon_pid_file``. With ``tty`` the bundle must ask for
    a terminal (``process.terminal``) and both streams are logged as stdout. On failure the
    runtime's message is raised and nothing of this call is left: no container, no conmon, no
    leaf cgroup, no pid or exit files, and no log file unless one existed before."""
    check_id(container_id)
    conmon_path = conmon or find_conmon()
    mc = MonitoredContainer(
        id=container_id, bundle=Path(bundle).absolute(), log_path=Path(log_path).absolute(),
        exit_dir=Path(exit_dir).absolute(), pid_file=Path(pid_file).absolute(),
        conmon_pid_file=Path(conmon_pid_file).absolute(), socket_dir=Path(state_dir).absolute() / "sockets")
    if not (mc.bundle / "config.json").is_file():
        raise PermanentDriverError(f"no OCI bundle at {mc.bundle} (config.json is missing)")
    _refuse_existing(runtime, mc)
    if len(str(mc.socket_dir / container_id / "attach")) > _SUN_PATH_MAX:
        raise PermanentDriverError(
            f"the state directory {state_dir} is too deep for conmon's attach socket of {container_id}")
    runtime_path = ensure_wrapper(runtime.info, Path(state_dir))
    log_existed = mc.log_path.exists()
    try:
        for directory in (mc.exit_dir, mc.socket_dir, mc.log_path.parent, mc.pid_file.parent,
                          mc.conmon_pid_file.parent, runtime.root):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in (mc.exit_file, mc.pid_file, mc.conmon_pid_file):
            stale.unlink(missing_ok=True)
        fd, oci_log_name = tempfile.mkstemp(prefix=f".oci-{container_id}-", suffix=".log",
                                            dir=mc.socket_dir.parent)
        os.close(fd)
    except OSError as exc:
        raise PermanentDriverError(f"cannot prepare to start {container_id}: {exc}") from exc
    oci_log = Path(oci_log_name)
    # the runtime's own flags (state root, cgroup manager, its JSON log): the same as for every
    # other command of the runtime driver
    runtime_args = runtime._global(oci_log)[1:]
    argv = conmon_argv(conmon_path, runtime_path, runtime_args, container_id, mc.bundle,
                       log_path=mc.log_path, exit_dir=mc.exit_dir, pid_file=mc.pid_file,
                       conmon_pid_file=mc.conmon_pid_file, socket_dir=mc.socket_dir, tty=tty,
                       log_size_max=log_size_max)
    try:
        message = _spawn(argv, mc.bundle, time.monotonic() + timeout)
        if message is None or not message.ok:
            reason = log_errors(oci_log) or (message.message if message else "") or (
                "conmon ended without reporting the container")
            raise error_class(reason)(
                f"{runtime.info.name} create {container_id} (under conmon) failed: {reason}")
        runtime.start(container_id)
    except BaseException:
        _undo(runtime, mc, remove_log=not log_existed)
        raise
    finally:
        oci_log.unlink(missing_ok=True)
    return mc


def _refuse_existing(runtime: OciRuntime, mc: MonitoredContainer) -> None:
    if mc.conmon_alive():
        raise PermanentDriverError(f"container {mc.id} is already watched by conmon (pid {mc.conmon_pid()})")
    try:
        runtime.state(mc.id)
    except ContainerNotFound:
        return
    raise PermanentDriverError(f"container {mc.id} already exists in {runtime.root}")


def _spawn(argv: list[str], cwd: Path, deadline: float) -> SyncMessage | None:
    """Start conmon, wait for its first process to hand over to the background one, and read
    what it reports on the sync pipe."""
    read_end, write_end = os.pipe()
    try:
        env = {"PATH": SEARCH_PATH, SYNC_PIPE_ENV: str(write_end)}
        try:
            proc = subprocess.Popen(argv, env=env, pass_fds=(write_end,), cwd=cwd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise os_error("conmon", exc) from exc
        os.close(write_end)
        write_end = -1
        try:
            out, _ = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.wait()
            raise TransientDriverError("conmon did not go to the background in time") from exc
        if proc.returncode != 0:
            text = out.decode(errors="replace").strip() or f"exit status {proc.returncode}"
            raise PermanentDriverError(f"conmon failed: {text}")
        return parse_sync_message(_read_line(read_end, deadline))
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def _read_line(fd: int, deadline: float) -> bytes:
    """Bytes from ``fd`` up to the first newline or end of file, by ``deadline``."""
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransientDriverError("conmon reported nothing in time")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


# -- undoing ----------------------------------------------------------------------------------


def remove_files(container: MonitoredContainer, *, keep_log: bool = False) -> None:
    """Remove what conmon left for a container it no longer watches: the exit file, the pid
    files, the attach socket link, conmon's files in the bundle and (unless ``keep_log``) the
    log. The container itself is the runtime's to delete."""
    if container.conmon_alive():
        raise PermanentDriverError(f"conmon still watches container {container.id}")
    paths = [container.exit_file, container.pid_file, container.conmon_pid_file,
             container.socket_dir / container.id, *(container.bundle / n for n in BUNDLE_LEFTOVERS)]
    if not keep_log:
        paths += [container.log_path, container.log_path.with_name(container.log_path.name + ".tmp")]
    problems = []
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
    if problems:
        raise PermanentDriverError(f"cannot remove files of container {container.id}: {'; '.join(problems)}")


def _undo(runtime: OciRuntime, mc: MonitoredContainer, *, remove_log: bool) -> None:
    """After a failed start: the container killed and deleted, conmon gone, files removed
    (best effort: the original error is what the caller sees)."""
    with contextlib.suppress(DriverError):
        runtime.delete(mc.id, force=True)
    _wait_conmon_gone(mc)
    with contextlib.suppress(DriverError):
        runtime.delete(mc.id, force=True)
    remove_leaf_cgroup(mc.bundle)
    with contextlib.suppress(DriverError):
        remove_files(mc, keep_log=not remove_log)


def _wait_conmon_gone(mc: MonitoredContainer) -> None:
    end = time.monotonic() + STOP_WAIT
    while mc.conmon_alive():
        if time.monotonic() > end:
            pid = mc.conmon_pid()
            if pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + STOP_WAIT
            while mc.conmon_alive() and time.monotonic() < end:
                time.sleep(0.01)
            return
        time.sleep(0.01)
