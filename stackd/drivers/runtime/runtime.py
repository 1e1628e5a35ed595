"""Run OCI bundles through crun or runc: ``detect`` finds a runtime that works on this host (by
probing it, not by knowing the host), ``OciRuntime`` drives its command line.

Side effects live here: subprocesses, a state directory of stackd's own (``--root``, so that
stackd never sees or touches other users' containers), temporary log files. Every foreign
failure is translated at this boundary into ``TransientDriverError`` or ``PermanentDriverError``
(``ContainerNotFound`` / ``ContainerNotRunning`` where the caller may want to tell them apart),
with the runtime's own message. No decisions about desired state are made here.

Process model: ``create`` runs ``<runtime> create`` with the container's stdio pointed at files
(the runtime's own errors go to a JSON log file, read back on failure) and returns once the
container exists; ``start``/``kill``/``delete`` are plain calls. The argv of ``create`` and
``run`` is data (``create_argv``/``run_argv``), so that a container monitor (conmon) can later
run it in place of ``create`` and keep the container's stdio and exit code.

crun refuses a hybrid cgroup layout; where it does, ``create`` and ``run`` go through a private
mount namespace in which the cgroup2 mount is unmounted (``needs_private_mount_ns``); the other
commands need no such detour.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal as signals
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from stackd.drivers.runtime import host
from stackd.drivers.runtime.boundary import (
    StdioTarget,
    check_id,
    error_class,
    log_errors,
    os_error,
    stdio,
)
from stackd.drivers.runtime.bundle import read_config, write_bundle
from stackd.drivers.runtime.request import ContainerRequest
from stackd.drivers.runtime.spec import oci_config
from stackd.errors import DriverError, PermanentDriverError, TransientDriverError

PREFERENCE = ("crun", "runc")
DEFAULT_ROOT = Path("/run/stackd/runtime")
COMMAND_TIMEOUT = 60.0
_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


class ContainerNotFound(PermanentDriverError):
    """The runtime has no container with this id (in stackd's state directory)."""


class ContainerNotRunning(PermanentDriverError):
    """The container exists but has no process to signal."""


@dataclass(frozen=True)
class RuntimeInfo:
    """A runtime usable on this host, and how to call it."""

    name: str
    path: str
    version: str
    cgroup_mode: host.CgroupMode
    needs_private_mount_ns: bool = False
    unified_mount: str | None = None

    def create_prefix(self) -> list[str]:
        """What ``create`` and ``run`` are wrapped in: nothing, or a private mount namespace
        with the cgroup2 mount removed."""
        if not self.needs_private_mount_ns or not self.unified_mount:
            return []
        return ["unshare", "--mount", "--propagation", "private", "--",
                "/bin/sh", "-c", 'umount -l "$0" && exec "$@"', self.unified_mount]


class OciRuntime:
    """One OCI runtime binary with stackd's own state directory (``root``)."""

    def __init__(self, info: RuntimeInfo, root: Path | None = None,
                 command_timeout: float = COMMAND_TIMEOUT) -> None:
        self.info = info
        self.root = Path(root) if root is not None else DEFAULT_ROOT / info.name
        self.command_timeout = command_timeout

    # -- command lines ---------------------------------------------------------------------

    def _global(self, log: Path | None = None) -> list[str]:
        argv = [self.info.path, "--root", str(self.root)]
        if self.info.name == "crun":
            argv.append("--cgroup-manager=cgroupfs")
            if log is not None:
                argv += [f"--log=file:{log}", "--log-format=json"]
        elif log is not None:
            argv += ["--log", str(log), "--log-format", "json"]
        return argv

    def create_argv(self, container_id: str, bundle: Path, log: Path,
                    pid_file: Path | None = None) -> list[str]:
        """The command line that creates (not starts) a container from ``bundle``."""
        argv = [*self.info.create_prefix(), *self._global(log), "create", "--bundle", str(bundle)]
        if pid_file is not None:
            argv += ["--pid-file", str(pid_file)]
        return [*argv, check_id(container_id)]

    def run_argv(self, container_id: str, bundle: Path, log: Path) -> list[str]:
        """The command line that runs a container in the foreground and exits with its status."""
        return [*self.info.create_prefix(), *self._global(log), "run", "--bundle", str(bundle),
                check_id(container_id)]

    # -- plumbing --------------------------------------------------------------------------

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise PermanentDriverError(f"cannot create runtime state directory {self.root}: {exc}") from exc

    @contextlib.contextmanager
    def _log_file(self) -> Iterator[Path]:
        fd, name = tempfile.mkstemp(prefix=f".{self.info.name}-", suffix=".log")
        os.close(fd)
        try:
            yield Path(name)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(name)

    def _call(self, *args: str, timeout: float | None = None) -> str:
        """Run a management command with captured output; its stdout, or a translated error."""
        self._ensure_root()
        argv = [*self._global(), *args]
        what = f"{self.info.name} {' '.join(args)}"
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout or self.command_timeout, check=True)
        except subprocess.TimeoutExpired as exc:
            raise TransientDriverError(f"{what}: no answer within {exc.timeout:g}s") from exc
        except subprocess.CalledProcessError as exc:
            message = exc.stderr.decode(errors="replace").strip() or f"exit status {exc.returncode}"
            raise error_class(message)(f"{what} failed: {message}") from exc
        except OSError as exc:
            raise os_error(what, exc) from exc
        return done.stdout.decode(errors="replace")

    def _exists(self, container_id: str) -> bool:
        return (self.root / container_id).is_dir()

    def _refuse_existing(self, container_id: str) -> None:
        """Before a create: an existing container is never replaced (nor cleaned up as if it
        were the remains of a failed create)."""
        if self._exists(check_id(container_id)):
            raise PermanentDriverError(f"container {container_id} already exists in {self.root}")

    def _translate_missing(self, container_id: str, exc: DriverError) -> DriverError:
        if not self._exists(container_id):
            return ContainerNotFound(f"no container {container_id!r} in {self.root}: {exc}")
        return exc

    # -- operations ------------------------------------------------------------------------

    def create(self, container_id: str, bundle: Path, *, stdin: StdioTarget = None,
               stdout: StdioTarget = None, stderr: StdioTarget = None,
               pid_file: Path | None = None) -> None:
        """Create the container of ``bundle`` (its process waits for ``start``). The container
        keeps ``stdout``/``stderr`` as its streams."""
        self._ensure_root()
        self._refuse_existing(container_id)
        with self._log_file() as log, stdio(stdin, "rb") as i, stdio(stdout, "ab") as o, \
                stdio(stderr, "ab") as e:
            argv = self.create_argv(container_id, bundle, log, pid_file)
            try:
                proc = subprocess.run(argv, stdin=i, stdout=o, stderr=e, start_new_session=True,
                                      timeout=self.command_timeout, check=False)
            except subprocess.TimeoutExpired as exc:
                self._discard(container_id)
                raise TransientDriverError(
                    f"{self.info.name} create {container_id}: no answer within {exc.timeout:g}s") from exc
            except OSError as exc:
                raise os_error(f"{self.info.name} create {container_id}", exc) from exc
            if proc.returncode != 0:
                message = log_errors(log) or f"exit status {proc.returncode}"
                self._discard(container_id, bundle)
                raise error_class(message)(f"{self.info.name} create {container_id} failed: {message}")

    def start(self, container_id: str) -> None:
        """Start the created container's process."""
        try:
            self._call("start", check_id(container_id))
        except DriverError as exc:
            raise self._translate_missing(container_id, exc) from exc

    def state(self, container_id: str) -> dict[str, Any]:
        """The runtime's state of the container: ``status`` (created, running, paused,
        stopped), ``pid``, ``bundle``, ``created``, ``annotations``."""
        try:
            out = self._call("state", check_id(container_id))
        except DriverError as exc:
            raise self._translate_missing(container_id, exc) from exc
        try:
            data = json.loads(out)
        except ValueError as exc:
            raise PermanentDriverError(f"{self.info.name} state {container_id}: not JSON: {out!r}") from exc
        if not isinstance(data, dict):
            raise PermanentDriverError(f"{self.info.name} state {container_id}: unexpected {out!r}")
        return data

    def kill(self, container_id: str, signal: int | str = signals.SIGTERM, *,
             all_processes: bool = False) -> None:
        """Send ``signal`` (a number or a name such as ``SIGKILL``) to the container's init
        process, or to all its processes."""
        sig = str(int(signal)) if isinstance(signal, int) else signal
        args = ["kill", *(["--all"] if all_processes else []), check_id(container_id), sig]
        try:
            self._call(*args)
        except DriverError as exc:
            missing = self._translate_missing(container_id, exc)
            if missing is not exc:
                raise missing from exc
            try:
                status = self.state(container_id).get("status")
            except DriverError:
                status = None
            if status == "stopped":
                raise ContainerNotRunning(f"container {container_id} is not running") from exc
            raise

    def delete(self, container_id: str, force: bool = False) -> None:
        """Delete a stopped container (``force``: kill it first if it still runs). The runtime
        removes the container's own cgroup, not its parents."""
        try:
            self._call("delete", *(["--force"] if force else []), check_id(container_id))
        except DriverError as exc:
            raise self._translate_missing(container_id, exc) from exc

    def list(self) -> list[dict[str, Any]]:
        """Every container in stackd's state directory, as the runtime reports them."""
        out = self._call("list", "--format", "json").strip()
        try:
            data = json.loads(out) if out else []
        except ValueError as exc:
            raise PermanentDriverError(f"{self.info.name} list: not JSON: {out!r}") from exc
        return [d for d in (data or []) if isinstance(d, dict)]

    def run_to_completion(self, container_id: str, bundle: Path, stdout: StdioTarget = None,
                          stderr: StdioTarget = None, timeout: float | None = None) -> int:
        """Run the container of ``bundle`` in the foreground and return its exit status
        (128 + n when killed by signal n). Past ``timeout`` seconds it is killed and deleted and
        ``PermanentDriverError`` is raised: the work itself overran its budget."""
        self._ensure_root()
        self._refuse_existing(container_id)
        with self._log_file() as log, stdio(stdout, "ab") as o, stdio(stderr, "ab") as e:
            argv = self.run_argv(container_id, bundle, log)
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                        start_new_session=True)
            except OSError as exc:
                raise os_error(f"{self.info.name} run {container_id}", exc) from exc
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                self._stop_run(container_id, proc)
                raise PermanentDriverError(
                    f"container {container_id} did not finish within {timeout:g}s; killed") from exc
            finally:
                if proc.poll() is None:  # interrupted while waiting: leave nothing running
                    self._stop_run(container_id, proc)
            failure = log_errors(log)
            if failure:
                self._discard(container_id, bundle)
                raise error_class(failure)(f"{self.info.name} run {container_id} failed: {failure}")
            if code < 0:
                raise TransientDriverError(
                    f"{self.info.name} run {container_id}: the runtime was killed by signal {-code}")
            self._discard(container_id)
            return code

    def _stop_run(self, container_id: str, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(DriverError):
            self.kill(container_id, signals.SIGKILL, all_processes=True)
        try:
            proc.wait(timeout=self.command_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self._discard(container_id)

    def _discard(self, container_id: str, bundle: Path | None = None) -> None:
        """Best effort: remove what a failed or finished container left in the state dir and,
        after a failure, the container's own cgroup, which a runtime may leave behind (only
        that leaf, and only if empty: its parents belong to the cgroups driver)."""
        if self._exists(container_id):
            with contextlib.suppress(DriverError):
                self.delete(container_id, force=True)
        if bundle is not None:
            remove_leaf_cgroup(bundle)


def remove_leaf_cgroup(bundle: Path) -> None:
    """The container's own cgroup, if the runtime left it behind (only that leaf, and only if
    empty: its parents belong to the cgroups driver). Best effort."""
    try:
        path = read_config(bundle).get("linux", {}).get("cgroupsPath", "")
        mounts = host.cgroup_mount_points(host.read_mountinfo())
    except DriverError:
        return
    if isinstance(path, str) and path.startswith("/") and path.strip("/"):
        for mount in mounts:
            with contextlib.suppress(OSError):
                os.rmdir(Path(mount, path.lstrip("/")))


# -- detection ---------------------------------------------------------------------------------


def find_binary(name: str) -> str | None:
    """The runtime binary on PATH, also looking in the sbin directories (runc lives there)."""
    path = os.environ.get("PATH", "")
    return shutil.which(name, path=f"{path}:{_SBIN}" if path else _SBIN)


def _version(path: str) -> str:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, timeout=COMMAND_TIMEOUT, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise PermanentDriverError(f"{path} --version failed: {exc}") from exc
    first = out.stdout.decode(errors="replace").splitlines()
    return first[0].strip() if first else ""


def _probe_create(info: RuntimeInfo, prefix: str) -> None:
    """Create (never start) and delete a container with stackd's default config; raises the
    runtime's error when it cannot. Leaves nothing behind: a temporary bundle and state dir,
    a one-level cgroup the runtime removes (and that is removed here if it did not)."""
    name = f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        rootfs = Path(tmp, "rootfs")
        rootfs.mkdir()
        probe = rootfs / "probe"
        probe.touch(mode=0o755)
        req = ContainerRequest(rootfs=str(rootfs), args=("/probe",), cgroups_path=f"/{name}")
        bundle = write_bundle(Path(tmp, "bundle"), oci_config(req, host.probe_host_limits()))
        runtime = OciRuntime(info, root=Path(tmp, "state"))
        try:
            runtime.create(name, bundle)
        finally:
            with contextlib.suppress(DriverError):
                runtime.delete(name, force=True)
            for mount in host.cgroup_mount_points(host.read_mountinfo()):
                with contextlib.suppress(OSError):
                    os.rmdir(Path(mount, name))


def probe(name: str, binary: str | None = None, *, prefix: str = "stackd-probe-") -> RuntimeInfo:
    """Check that the runtime ``name`` can create containers here, and how it must be called."""
    path = binary or find_binary(name)
    if path is None:
        raise PermanentDriverError(f"{name} is not installed")
    entries = host.read_mountinfo()
    info = RuntimeInfo(name=name, path=path, version=_version(path), cgroup_mode=host.cgroup_mode(entries),
                       unified_mount=host.unified_mount_point(entries))
    try:
        _probe_create(info, prefix)
        return info
    except DriverError as direct:
        if info.unified_mount is None:
            raise PermanentDriverError(f"{name} cannot create containers here: {direct}") from direct
        wrapped = replace(info, needs_private_mount_ns=True)
        try:
            _probe_create(wrapped, prefix)
        except DriverError as exc:
            raise PermanentDriverError(
                f"{name} cannot create containers here, not even in a private mount namespace "
                f"without {info.unified_mount}: {direct}; {exc}") from exc
        return wrapped


def detect(preference: Sequence[str] = PREFERENCE, *, prefix: str = "stackd-probe-") -> RuntimeInfo:
    """The first runtime of ``preference`` (crun, then runc) that works on this host."""
    reasons = []
    for name in preference:
        try:
            return probe(name, prefix=prefix)
        except PermanentDriverError as exc:
            reasons.append(str(exc))
    raise PermanentDriverError(
        "no usable OCI runtime (install crun or runc, e.g. `apt-get install crun runc`): "
        + "; ".join(reasons))
