"""conmon's command line, its sync-pipe message, /proc checks, and the runtime wrapper (its text,
and what it really passes on, run against a stand-in for unshare)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackd.drivers.monitor.conmon import (
    SyncMessage,
    conmon_argv,
    is_conmon_of,
    parse_sync_message,
    proc_state,
    wrapper_name,
    wrapper_script,
)
from stackd.drivers.monitor.monitor import ensure_wrapper
from stackd.drivers.runtime import RuntimeInfo
from stackd.errors import PermanentDriverError

CRUN = RuntimeInfo(name="crun", path="/usr/bin/crun", version="crun 1.8.1", cgroup_mode="hybrid",
                   needs_private_mount_ns=True, unified_mount="/sys/fs/cgroup/unified")
RUNC = RuntimeInfo(name="runc", path="/usr/sbin/runc", version="runc 1.1.5", cgroup_mode="hybrid",
                   unified_mount="/sys/fs/cgroup/unified")


def _argv(*, log_path: Path = Path("/var/log/c1.log"), tty: bool = False,
          log_size_max: int | None = None) -> list[str]:
    return conmon_argv("/usr/bin/conmon", "/usr/sbin/runc", ["--root", "/run/rt", "--log-format", "json"],
                       "c1", Path("/b/c1"), log_path=log_path, exit_dir=Path("/run/x/exits"),
                       pid_file=Path("/run/x/c1.pid"), conmon_pid_file=Path("/run/x/c1.conmon.pid"),
                       socket_dir=Path("/run/x/sockets"), tty=tty, log_size_max=log_size_max)


def _option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def test_conmon_argv_names_every_path_and_the_runtime() -> None:
    argv = _argv()
    assert argv[0] == "/usr/bin/conmon"
    assert _option(argv, "--api-version") == ["1"]
    assert _option(argv, "--cid") == _option(argv, "--cuuid") == ["c1"]
    assert _option(argv, "--runtime") == ["/usr/sbin/runc"]
    assert _option(argv, "--bundle") == ["/b/c1"]
    assert _option(argv, "--container-pidfile") == ["/run/x/c1.pid"]
    assert _option(argv, "--conmon-pidfile") == ["/run/x/c1.conmon.pid"]
    assert _option(argv, "--log-path") == ["k8s-file:/var/log/c1.log"]
    assert _option(argv, "--exit-dir") == ["/run/x/exits"]
    assert _option(argv, "--socket-dir-path") == ["/run/x/sockets"]
    # the runtime's own flags go through one by one, in order
    assert _option(argv, "--runtime-arg") == ["--root", "/run/rt", "--log-format", "json"]
    assert "--terminal" not in argv and "--log-size-max" not in argv


def test_conmon_argv_terminal_and_log_size() -> None:
    argv = _argv(tty=True, log_size_max=1 << 20)
    assert "--terminal" in argv
    assert _option(argv, "--log-size-max") == [str(1 << 20)]


def test_conmon_argv_refuses_what_conmon_would_misread() -> None:
    with pytest.raises(PermanentDriverError, match="must not contain ':'"):
        _argv(log_path=Path("/var/log/a:b.log"))
    with pytest.raises(PermanentDriverError, match="positive"):
        _argv(log_size_max=0)


@pytest.mark.parametrize(("raw", "expected"), [
    (b'{"data": 4242}\n', SyncMessage(4242)),
    (b'{"data": -1, "message": "exec: \\"/nope\\": no such file\\n"}\n',
     SyncMessage(-1, 'exec: "/nope": no such file')),
    (b'{"data": 7}\n{"data": 0}\n', SyncMessage(7)),
    (b"", None),
    (b"garbage\n", None),
    (b'{"pid": 12}\n', None),
    (b'["data", 1]\n', None),
])
def test_sync_message(raw: bytes, expected: SyncMessage | None) -> None:
    assert parse_sync_message(raw) == expected


def test_sync_message_ok_only_for_a_pid() -> None:
    assert SyncMessage(12).ok
    assert not SyncMessage(-1, "failed").ok
    assert not SyncMessage(0).ok


def test_is_conmon_of_checks_the_binary_and_the_id() -> None:
    cmd = b"\0".join([b"/usr/bin/conmon", b"--api-version", b"1", b"--cid", b"web-1", b"--cuuid", b"web-1",
                      b""])
    assert is_conmon_of(cmd, "web-1")
    assert not is_conmon_of(cmd, "web-2")
    assert not is_conmon_of(cmd, "web")  # no prefix matches
    assert not is_conmon_of(cmd.replace(b"/usr/bin/conmon", b"/usr/bin/sleep"), "web-1")
    assert not is_conmon_of(b"/usr/bin/conmon\0--name\0web-1\0", "web-1")  # the id must follow --cid
    assert not is_conmon_of(b"", "web-1")


def test_proc_state_survives_odd_process_names() -> None:
    assert proc_state("123 (conmon) S 1 123 123 0 -1") == "S"
    assert proc_state("123 (a) b) Z 1 123") == "Z"
    assert proc_state("garbage") == ""


def test_no_wrapper_for_a_runtime_that_runs_as_it_is() -> None:
    assert wrapper_script(RUNC) is None


def test_wrapper_script_runs_the_runtime_in_a_private_mount_namespace() -> None:
    script = wrapper_script(CRUN, "/usr/bin/unshare")
    assert script is not None
    assert script.startswith("#!/bin/sh\n")
    last = script.rstrip("\n").splitlines()[-1]
    assert last.startswith("exec /usr/bin/unshare --mount --propagation private -- /bin/sh -c ")
    assert last.endswith(' /sys/fs/cgroup/unified /usr/bin/crun "$@"')


def test_wrapper_passes_every_argument_through_unchanged(tmp_path: Path) -> None:
    """The script really calls unshare with the runtime and conmon's arguments, spaces and
    quotes intact (unshare is played by a script that prints its argv)."""
    fake_unshare = tmp_path / "unshare"
    fake_unshare.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    fake_unshare.chmod(0o755)
    script = wrapper_script(CRUN, str(fake_unshare))
    assert script is not None
    wrapper = tmp_path / "wrapper"
    wrapper.write_text(script)
    wrapper.chmod(0o755)
    args = ["--root", "/run/a b", "create", "--bundle", "/b/it's \"here\"", "c1"]
    out = subprocess.run([str(wrapper), *args], capture_output=True, check=True, text=True).stdout
    received = json.loads(out)
    assert received[:5] == ["--mount", "--propagation", "private", "--", "/bin/sh"]
    assert received[-(len(args) + 2):] == ["/sys/fs/cgroup/unified", "/usr/bin/crun", *args]


def test_wrapper_name_follows_the_text() -> None:
    script = wrapper_script(CRUN, "/usr/bin/unshare")
    other = wrapper_script(CRUN, "/bin/unshare")
    assert script is not None and other is not None
    assert wrapper_name(CRUN, script) == wrapper_name(CRUN, script)
    assert wrapper_name(CRUN, script).startswith("crun-")
    assert wrapper_name(CRUN, script) != wrapper_name(CRUN, other)


def test_ensure_wrapper_writes_an_executable_once(tmp_path: Path) -> None:
    assert ensure_wrapper(RUNC, tmp_path) == RUNC.path
    assert not (tmp_path / "runtime-wrappers").exists()
    path = Path(ensure_wrapper(CRUN, tmp_path))
    assert path.parent == tmp_path / "runtime-wrappers"
    assert os.access(path, os.X_OK)
    assert path.read_text() == wrapper_script(CRUN, path.read_text().splitlines()[-1].split()[1])
    before = path.stat()
    assert Path(ensure_wrapper(CRUN, tmp_path)) == path
    after = path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
