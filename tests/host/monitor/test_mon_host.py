"""Containers under conmon, with crun and runc, from a busybox root file system: output and exit
statuses recorded by conmon, containers that outlive the objects and the process that started
them, logs followed as they are written (also across conmon's log rotation), a terminal, exec,
and a failed start that leaves nothing behind.

Root only; see conftest.py for the names used, the cleanup and when tests are skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from stackd.drivers.monitor.conmon import proc_state
from stackd.drivers.monitor.exec import ExecResult, ExecTimeout, exec_in
from stackd.drivers.monitor.logformat import LogLine
from stackd.drivers.monitor.logs import follow_logs, read_logs
from stackd.drivers.monitor.monitor import MonitoredContainer
from stackd.drivers.runtime import ContainerNotRunning, Mount
from stackd.drivers.runtime.host import cgroup_mount_points, read_mountinfo
from stackd.errors import PermanentDriverError
from tests.host.monitor.conftest import Lab, live_conmons, wait_until

pytestmark = pytest.mark.host


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _lines(mc: MonitoredContainer) -> list[tuple[str, str, bool]]:
    return [(line.stream, line.text, line.partial) for line in read_logs(mc.log_path)]


def _signals(lab: Lab) -> tuple[Path, tuple[Mount, ...]]:
    """A host directory the container sees at /sig: the test's way to tell it to go on."""
    sig = lab.work / "sig"
    sig.mkdir(exist_ok=True)
    return sig, (Mount("/sig", str(sig)),)


def test_output_streams_and_exit_code_are_recorded(lab: Lab) -> None:
    script = "echo out1; sleep 0.2; echo err1 >&2; sleep 0.2; echo out2; printf 'no end'; exit 3"
    mc = lab.start("sh", "-c", script)
    wait_until(lambda: mc.exit_code() is not None, "the exit file")
    assert mc.exit_code() == 3
    assert _lines(mc) == [("stdout", "out1", False), ("stderr", "err1", False), ("stdout", "out2", False),
                          ("stdout", "no end", True)]
    wait_until(lambda: not mc.conmon_alive(), "conmon to end with its container")
    assert lab.rt.state(mc.id)["status"] == "stopped"


def test_container_outlives_the_objects_that_started_it(lab: Lab) -> None:
    mc = lab.start("sleep", "1000")
    fields = dataclasses.asdict(mc)
    conmon_pid = mc.conmon_pid()
    assert conmon_pid is not None
    del mc
    gc.collect()
    again = MonitoredContainer(**fields)  # what a restarted stackd rebuilds from its records
    assert again.conmon_alive()
    assert _parent_of(conmon_pid) != os.getpid()  # conmon went to the background: not our child
    state = lab.rt.state(again.id)
    assert state["status"] == "running"
    assert again.container_pid() == state["pid"]
    assert _parent_of(state["pid"]) == conmon_pid  # conmon is the container's parent
    assert again.exit_code() is None
    lab.rt.kill(again.id, "SIGKILL")
    wait_until(lambda: again.exit_code() is not None, "the exit file")
    assert again.exit_code() == 137
    wait_until(lambda: not again.conmon_alive(), "conmon to end")


STARTER = """
import json, sys
from pathlib import Path
from stackd.drivers.monitor.monitor import start_container
from stackd.drivers.runtime import OciRuntime, RuntimeInfo
a = json.loads(sys.argv[1])
rt = OciRuntime(RuntimeInfo(**a["info"]), root=Path(a["root"]))
f = {k: Path(v) for k, v in a["files"].items()}
mc = start_container(rt, a["id"], Path(a["bundle"]), log_path=f["log_path"], exit_dir=f["exit_dir"],
                     pid_file=f["pid_file"], conmon_pid_file=f["conmon_pid_file"],
                     state_dir=Path(a["state_dir"]), conmon=a["conmon"])
print(mc.conmon_pid())
"""


def test_container_outlives_the_process_that_started_it(lab: Lab) -> None:
    script = "trap 'echo bye; exit 7' TERM; echo up; while :; do sleep 0.05; done"
    cid, bundle = lab.bundle("sh", "-c", script)
    f = lab.files(cid)
    args = {"info": dataclasses.asdict(lab.rt.info), "root": str(lab.rt.root), "id": cid,
            "bundle": str(bundle), "state_dir": str(lab.state_dir), "conmon": lab.conmon,
            "files": {k: str(v) for k, v in dataclasses.asdict(f).items()}}
    done = subprocess.run([sys.executable, "-c", STARTER, json.dumps(args)], capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    conmon_pid = int(done.stdout)
    mc = MonitoredContainer(cid, bundle, f.log_path, f.exit_dir, f.pid_file, f.conmon_pid_file,
                            lab.state_dir / "sockets")
    assert mc.conmon_pid() == conmon_pid and mc.conmon_alive()
    assert lab.rt.state(cid)["status"] == "running"
    wait_until(lambda: ("stdout", "up", False) in _lines(mc), "the container's first line")
    lab.rt.kill(cid, "SIGTERM")
    wait_until(lambda: mc.exit_code() is not None, "the exit file")
    assert mc.exit_code() == 7
    assert _lines(mc) == [("stdout", "up", False), ("stdout", "bye", False)]


@pytest.mark.anyio
async def test_follow_logs_sees_lines_written_after_it_started(lab: Lab) -> None:
    sig, mounts = _signals(lab)
    mc = lab.start("sh", "-c", "echo one; while [ ! -e /sig/go ]; do sleep 0.02; done; echo two; echo three",
                   mounts=mounts)
    seen: list[str] = []
    with anyio.fail_after(60):
        following = follow_logs(mc.log_path, done=lambda: mc.exit_code() is not None, poll_interval=0.02)
        async with contextlib.aclosing(following) as lines:
            async for line in lines:
                seen.append(line.text)
                if line.text == "one":
                    assert mc.exit_code() is None
                    (sig / "go").touch()
    assert seen == ["one", "two", "three"]
    assert mc.exit_code() == 0


@pytest.mark.anyio
async def test_follow_logs_across_conmons_log_rotation(lab: Lab) -> None:
    sig, mounts = _signals(lab)
    script = ("i=1; while [ $i -le 6 ]; do echo line-$i-padding-padding-padding; "
              "while [ ! -e /sig/ack-$i ]; do sleep 0.02; done; i=$((i+1)); done")
    mc = lab.start("sh", "-c", script, mounts=mounts, log_size_max=200)
    seen: list[LogLine] = []
    with anyio.fail_after(60):
        following = follow_logs(mc.log_path, done=lambda: mc.exit_code() is not None, poll_interval=0.02)
        async with contextlib.aclosing(following) as lines:
            async for line in lines:
                seen.append(line)
                (sig / f"ack-{line.text.split('-')[1]}").touch()
    assert [line.text.split("-padding")[0] for line in seen] == [f"line-{i}" for i in range(1, 7)]
    # conmon started the file afresh: what is left is only the newest part, under the limit
    left = list(read_logs(mc.log_path))
    assert 0 < len(left) < 6
    assert mc.log_path.stat().st_size <= 200


def test_terminal_output_is_logged_as_stdout(lab: Lab) -> None:
    mc = lab.start("sh", "-c", "echo hello; echo oops >&2; [ -t 1 ] && echo on-a-tty", terminal=True)
    wait_until(lambda: mc.exit_code() is not None, "the exit file")
    assert mc.exit_code() == 0
    assert [(stream, text.rstrip("\r")) for stream, text, _ in _lines(mc)] == [
        ("stdout", "hello"), ("stdout", "oops"), ("stdout", "on-a-tty")]


def test_exec(lab: Lab) -> None:
    mc = lab.start("sleep", "1000")
    both = exec_in(lab.rt, mc.id, ["sh", "-c", "echo hi; echo oops >&2; exit 5"])
    assert both == ExecResult(5, b"hi\n", b"oops\n")
    got = exec_in(lab.rt, mc.id, ["sh", "-c", 'echo "$FOO"; pwd; id -u; id -g; id -G'], env={"FOO": "b a r"},
                  cwd="/tmp", user="www")
    assert got == ExecResult(0, b"b a r\n/tmp\n33\n33\n33 50\n", b"")
    assert exec_in(lab.rt, mc.id, ["cat"], stdin=b"piped\n").stdout == b"piped\n"
    # crun 1.8 relays a terminal's output asynchronously and drops what is still in flight when
    # the command exits at once (seen under load); a short pause before exiting lets it drain.
    script = "if [ -t 1 ]; then echo on-a-tty; else echo no-tty; fi; sleep 0.5; exit 2"
    tty = exec_in(lab.rt, mc.id, ["sh", "-c", script], tty=True)
    assert tty.exit_code == 2 and tty.stdout.replace(b"\r", b"") == b"on-a-tty\n"
    with pytest.raises(PermanentDriverError, match="/nope"):
        exec_in(lab.rt, mc.id, ["/nope"])
    with pytest.raises(ExecTimeout):
        exec_in(lab.rt, mc.id, ["sleep", "1000"], timeout=0.5)
    # the command that ran out of time was killed, the container was not
    procs = exec_in(lab.rt, mc.id, ["sh", "-c", "cat /proc/[0-9]*/cmdline; true"]).stdout
    assert procs.count(b"sleep\x001000") == 1
    lab.rt.kill(mc.id, "SIGKILL")
    wait_until(lambda: mc.exit_code() is not None, "the exit file")
    with pytest.raises(ContainerNotRunning):
        exec_in(lab.rt, mc.id, ["true"])


def test_a_missing_program_fails_the_start_and_leaves_nothing(lab: Lab) -> None:
    cid, bundle = lab.bundle("/nope")
    f = lab.files(cid)
    with pytest.raises(PermanentDriverError, match="/nope") as caught:
        lab.start_bundle(cid, bundle)
    assert lab.rt.info.name in str(caught.value)
    assert cid not in [c["id"] for c in lab.rt.list()]
    assert not live_conmons(cid)
    assert sorted(p.name for p in bundle.iterdir()) == ["config.json"]
    assert not any(p.exists() for p in (f.log_path, f.pid_file, f.conmon_pid_file))
    assert list(f.exit_dir.iterdir()) == []
    assert not (lab.state_dir / "sockets" / cid).is_symlink()
    assert [p.name for p in lab.state_dir.iterdir() if p.name.startswith(".oci-")] == []
    for mount in cgroup_mount_points(read_mountinfo()):
        assert not Path(mount, lab.cgroup_parent.lstrip("/"), cid).exists()


def test_conmon_alive_is_false_for_a_zombie_or_a_stranger(lab: Lab) -> None:
    mc = lab.start("sh", "-c", "exit 0")
    wait_until(lambda: mc.exit_code() is not None, "the exit file")
    wait_until(lambda: not mc.conmon_alive(), "conmon to end")
    pid = mc.conmon_pid()
    assert pid is not None

    def ended() -> bool:
        try:
            return proc_state(Path(f"/proc/{pid}/stat").read_text()) in ("Z", "X")
        except OSError:
            return True  # gone

    # not alive may come a moment before the state says so: an exiting process has already
    # dropped its memory (its command line reads empty) while it still shows as running
    wait_until(ended, "conmon gone, or a zombie nobody reaped yet")
    mc.conmon_pid_file.write_text(str(os.getpid()))  # a live process that is not its conmon
    assert not mc.conmon_alive()
