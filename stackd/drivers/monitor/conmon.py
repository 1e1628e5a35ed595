"""conmon's command line and the runtime wrapper it may need, as data.

conmon (the container monitor of podman and CRI-O) is started once per container. It forks
itself into the background, runs ``<runtime> [runtime args] create --bundle B --pid-file P
<id>``, stays the parent (a child subreaper) of the container's process, copies the container's
stdout and stderr into a log file in the Kubernetes ``k8s-file`` format, and writes the exit
status to ``<exit dir>/<id>`` when the process ends. It tells its starter the container's pid,
or the runtime's error, as one JSON line on the "sync pipe" named by ``_OCI_SYNCPIPE``.

conmon execs the runtime binary itself, so where the runtime must run in a private mount
namespace (crun on a hybrid cgroup layout, see ``RuntimeInfo.needs_private_mount_ns``) conmon is
given a small shell script in its place: ``wrapper_script`` is its text.

Everything here is pure: no files are written and nothing is started (``monitor.py`` does that).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stackd.drivers.runtime import RuntimeInfo
from stackd.errors import PermanentDriverError

SYNC_PIPE_ENV = "_OCI_SYNCPIPE"
"""The environment variable naming conmon's sync pipe (a file descriptor number)."""
API_VERSION = "1"
BUNDLE_LEFTOVERS = ("attach", "ctl", "winsz", "oom")
"""What conmon creates in the bundle directory: the attach socket, the control and window-size
FIFOs, and ``oom`` when the container was killed for lack of memory."""


@dataclass(frozen=True)
class SyncMessage:
    """What conmon reported on the sync pipe: the container's pid (``data`` > 0) or a failure
    (``data`` < 0) with the runtime's message."""

    data: int
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.data > 0


def parse_sync_message(raw: bytes) -> SyncMessage | None:
    """The first JSON line conmon wrote on the sync pipe (``None`` when it wrote nothing usable)."""
    line = raw.split(b"\n", 1)[0].strip()
    if not line:
        return None
    try:
        data = json.loads(line.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("data"), int):
        return None
    message = data.get("message")
    return SyncMessage(data["data"], message.strip() if isinstance(message, str) else "")


def conmon_argv(conmon: str, runtime_path: str, runtime_args: Sequence[str], container_id: str,
                bundle: Path, *, log_path: Path, exit_dir: Path, pid_file: Path, conmon_pid_file: Path,
                socket_dir: Path, tty: bool = False, log_size_max: int | None = None) -> list[str]:
    """The command line that makes conmon create ``container_id`` from ``bundle`` through
    ``runtime_path`` (called with ``runtime_args`` before ``create``) and watch it.

    ``log_size_max`` (bytes) makes conmon start the log file afresh whenever it would grow past
    that size: the file at ``log_path`` is then replaced by a new, empty one."""
    if ":" in str(log_path):
        raise PermanentDriverError(f"conmon cannot log to {log_path}: the path must not contain ':'")
    if log_size_max is not None and log_size_max <= 0:
        raise PermanentDriverError(f"log_size_max must be positive, got {log_size_max}")
    argv = [
        conmon,
        "--api-version", API_VERSION,
        "--cid", container_id,
        "--cuuid", container_id,
        "--name", container_id,
        "--runtime", runtime_path,
        "--bundle", str(bundle),
        "--container-pidfile", str(pid_file),
        "--conmon-pidfile", str(conmon_pid_file),
        "--log-path", f"k8s-file:{log_path}",
        "--exit-dir", str(exit_dir),
        "--socket-dir-path", str(socket_dir),
    ]
    if tty:
        argv.append("--terminal")
    if log_size_max is not None:
        argv += ["--log-size-max", str(log_size_max)]
    for arg in runtime_args:
        argv += ["--runtime-arg", arg]
    return argv


def wrapper_script(info: RuntimeInfo, unshare: str = "unshare") -> str | None:
    """The text of the executable conmon runs in place of the runtime binary, or ``None`` when
    the runtime can be run as it is. ``unshare`` is the path of unshare(1) to write into it."""
    prefix = info.create_prefix()
    if not prefix:
        return None
    if prefix[0] == "unshare":
        prefix = [unshare, *prefix[1:]]
    return (
        "#!/bin/sh\n"
        f"# Written by stackd: conmon runs {info.name} through this file. {info.name} refuses this\n"
        f"# host's hybrid cgroup layout, so it runs in a private mount namespace where\n"
        f"# {info.unified_mount} is unmounted.\n"
        f'exec {shlex.join([*prefix, info.path])} "$@"\n'
    )


def wrapper_name(info: RuntimeInfo, script: str) -> str:
    """The wrapper's file name: the runtime's name and a hash of the text, so that a changed
    text gets a new file and a running conmon's wrapper is never rewritten under it."""
    return f"{info.name}-{hashlib.sha256(script.encode()).hexdigest()[:12]}"


def is_conmon_of(cmdline: bytes, container_id: str) -> bool:
    """Whether a /proc/<pid>/cmdline is a conmon watching ``container_id`` (a pid read from a
    file may have been reused by another process since)."""
    args = cmdline.split(b"\0")
    if not args or Path(args[0].decode(errors="replace")).name != "conmon":
        return False
    wanted = container_id.encode()
    return any(a in (b"--cid", b"-c") and b == wanted for a, b in itertools.pairwise(args))


def proc_state(stat: str) -> str:
    """The state letter of a /proc/<pid>/stat text (``R``, ``S``, ``Z`` ...); ``""`` if malformed."""
    head, paren, rest = stat.rpartition(")")
    fields = rest.split() if paren and "(" in head else []
    return fields[0] if fields else ""
