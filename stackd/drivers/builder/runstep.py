"""Running one RUN step: the container request (pure), its output streamed line by line, and the
mount-point stubs a runtime leaves in the upper directory taken out again.

A RUN container shares the host's network namespace (``apt-get`` needs the network; ``--network
=none`` gets a private one), gets a copy of the host's resolv.conf and a hosts file naming
``localhost`` and its hostname, bind-mounted read-only, and runs with the stage's user, working
directory and environment (the build arguments in scope are added where ENV does not set the
same name). Its cgroup is one level deep and named after the container, which the runtime
removes on delete. ``stream_run`` runs it through the runtime in a helper thread while the
calling thread reads its output, so ``on_line`` is always called from the caller's thread; an
interrupt kills the container before it returns. No decisions about what to run are made here.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stackd.drivers.builder.fsview import SourceFS, resolve
from stackd.drivers.runtime.boundary import StdioTarget
from stackd.drivers.runtime.request import HOST, PRIVATE, ContainerRequest, Mount, Namespaces, User
from stackd.errors import DriverError

HOSTNAME = "stackd-build"
TAIL_LINES = 20
SCRIPT_PATH = "/dev/.stackd-run-script"
STUBS = ("proc", "sys", "dev", "etc/resolv.conf", "etc/hosts")
"""Mount points a runtime creates in the root filesystem when the image lacks them."""
_LINES = re.compile(rb"\r\n|\n|\r")


class BuildRuntime(Protocol):
    """What a build needs of an OCI runtime (``stackd.drivers.runtime.OciRuntime`` has it)."""

    def run_to_completion(self, container_id: str, bundle: Path, stdout: StdioTarget = None,
                          stderr: StdioTarget = None, timeout: float | None = None) -> int: ...

    def kill(self, container_id: str, signal: int | str = ..., *, all_processes: bool = False) -> None: ...


@dataclass(frozen=True)
class RunSpec:
    """What one RUN step runs and how; ``script`` is a heredoc run as a file (``#!``)."""

    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: User
    network: str = HOST
    script: Path | None = None


def run_env(image_env: Sequence[str], build_args: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The environment of a RUN step: the image's, plus build arguments ENV does not set."""
    names = {e.partition("=")[0] for e in image_env}
    extra = [f"{k}={v}" for k, v in build_args if k not in names]
    return (*image_env, *extra)


def hosts_file() -> str:
    return (f"127.0.0.1\tlocalhost {HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


def run_request(spec: RunSpec, rootfs: Path, resolv_conf: Path, hosts: Path,
                container_id: str) -> ContainerRequest:
    """The container request of a RUN step whose root filesystem is mounted at ``rootfs``."""
    mounts = [Mount("/etc/resolv.conf", str(resolv_conf), "bind", ("ro",)),
              Mount("/etc/hosts", str(hosts), "bind", ("ro",))]
    if spec.script is not None:
        mounts.append(Mount(SCRIPT_PATH, str(spec.script), "bind", ("ro",)))
    return ContainerRequest(
        rootfs=str(rootfs), args=spec.argv, env=spec.env, cwd=spec.cwd or "/", user=spec.user,
        hostname=HOSTNAME, mounts=tuple(mounts), namespaces=Namespaces(net=spec.network),
        cgroups_path=f"/{container_id}")


def network_mode(option: str | None) -> str:
    """``RUN --network=`` as a namespace mode: the host's unless ``none``."""
    return PRIVATE if option == "none" else HOST


def missing_stubs(view: SourceFS) -> list[str]:
    """The stub paths (and their parents) that the image does not have before the step."""
    out: list[str] = []
    for stub in STUBS:
        parts = stub.split("/")
        for i in range(len(parts)):
            path = "/".join(parts[:i + 1])
            if path not in out and view.lstat(resolve(view, path, follow_last=False)) is None:
                out.append(path)
    return out


def remove_stubs(upper: Path, stubs: Sequence[str]) -> None:
    """Remove from ``upper`` the stubs a runtime made (empty files or directories that the
    image did not have), deepest first; what the step itself filled stays."""
    for rel in sorted(stubs, key=lambda p: p.count("/"), reverse=True):
        path = upper / rel
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(path)  # only when empty
            elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                path.unlink()


def stream_run(runtime: BuildRuntime, container_id: str, bundle: Path, on_line: Callable[[str], None],
               timeout: float | None = None) -> tuple[int, list[str]]:
    """Run the container of ``bundle`` to completion; every line of its output goes to
    ``on_line``. Returns the exit status and the last lines printed."""
    read_fd, write_fd = os.pipe()
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["code"] = runtime.run_to_completion(container_id, bundle, stdout=write_fd,
                                                        stderr=write_fd, timeout=timeout)
        except BaseException as exc:  # handed to the calling thread below
            outcome["error"] = exc
        finally:
            os.close(write_fd)

    tail: deque[str] = deque(maxlen=TAIL_LINES)
    worker = threading.Thread(target=run, name=f"build {container_id}", daemon=True)
    with os.fdopen(read_fd, "rb", buffering=0) as output:
        worker.start()
        try:
            pending = b""
            while chunk := output.read(1 << 16):
                *lines, pending = _LINES.split(pending + chunk)
                for raw in lines:
                    _emit(raw, tail, on_line)
            _emit(pending, tail, on_line)
        except BaseException:
            with contextlib.suppress(DriverError):
                runtime.kill(container_id, signal.SIGKILL, all_processes=True)
            worker.join()
            raise
    worker.join()
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise error
    code = outcome["code"]
    assert isinstance(code, int)
    return code, list(tail)


def _emit(raw: bytes, tail: deque[str], on_line: Callable[[str], None]) -> None:
    text = raw.decode("utf-8", "replace").rstrip()
    if text:
        tail.append(text)
        on_line(text)
