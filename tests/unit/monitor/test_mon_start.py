"""start_container's failure paths against stand-ins for conmon and the runtime (scripts that
play their parts): the runtime's message reaches the caller and nothing of the call is left.
The real thing, with crun and runc, is in tests/host/monitor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from stackd.drivers.monitor.monitor import MonitoredContainer, read_exit_code, read_pid, start_container
from stackd.drivers.runtime import OciRuntime, RuntimeInfo
from stackd.errors import PermanentDriverError

# plays conmon: goes to the background like conmon, creates what conmon creates, then reports
# what SCENARIO says on the sync pipe
FAKE_CONMON = r'''
import json, os, sys
SCENARIO = {scenario!r}
args = sys.argv[1:]
opt = {{args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}}
if SCENARIO == "early":
    print("conmon: option parsing failed: Unknown option --bogus")
    sys.exit(1)
child = os.fork()
if child:
    with open(opt["--conmon-pidfile"], "w") as f:
        f.write(str(child))
    sys.exit(0)
os.setsid()
bundle = opt["--bundle"]
os.symlink(bundle, os.path.join(opt["--socket-dir-path"], opt["--cid"]))
for name in ("attach", "ctl", "winsz"):
    open(os.path.join(bundle, name), "w").close()
open(opt["--log-path"].split(":", 1)[1], "a").close()
sync = int(os.environ["_OCI_SYNCPIPE"])
if SCENARIO == "fails":
    message = 'exec: "/nope": stat /nope: no such file\n'
    os.write(sync, json.dumps({{"data": -1, "message": message}}).encode() + b"\n")
os._exit(1)
'''

# plays the runtime: there is no container, unless STATE is set
FAKE_RUNTIME = r'''#!/bin/sh
case " $* " in
  *" state "*) [ -n "{state}" ] && {{ echo '{state}'; exit 0; }} ;;
esac
echo "container does not exist" >&2
exit 1
'''


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def _conmon(tmp_path: Path, scenario: str) -> str:
    return _script(tmp_path / "conmon", f"#!{sys.executable}\n" + FAKE_CONMON.format(scenario=scenario))


def _runtime(tmp_path: Path, state: str = "") -> OciRuntime:
    path = _script(tmp_path / "runtime", FAKE_RUNTIME.format(state=state))
    info = RuntimeInfo(name="runc", path=path, version="fake", cgroup_mode="v2")
    return OciRuntime(info, root=tmp_path / "rt-state")


def _bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    (bundle / "config.json").write_text(json.dumps({"root": {"path": "rootfs"}, "linux": {}}))
    return bundle


def _start(tmp_path: Path, scenario: str, *, conmon: str | None = None,
           state_dir: Path | None = None) -> MonitoredContainer:
    return start_container(
        _runtime(tmp_path), "stkt-mon-c1", _bundle(tmp_path), log_path=tmp_path / "logs" / "c1.log",
        exit_dir=tmp_path / "exits", pid_file=tmp_path / "run" / "c1.pid",
        conmon_pid_file=tmp_path / "run" / "c1.conmon.pid", state_dir=state_dir or tmp_path / "mon",
        conmon=conmon or _conmon(tmp_path, scenario))


def _left(tmp_path: Path) -> list[str]:
    """Every file under tmp_path that is not one of the test's own."""
    own = {"conmon", "runtime", "bundle/config.json"}
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
                  if not p.is_dir() and str(p.relative_to(tmp_path)) not in own)


def test_the_runtimes_message_reaches_the_caller_and_nothing_is_left(tmp_path: Path) -> None:
    expected = r'create stkt-mon-c1 \(under conmon\) failed: exec: "/nope"'
    with pytest.raises(PermanentDriverError, match=expected):
        _start(tmp_path, "fails")
    assert _left(tmp_path) == []


def test_a_log_that_existed_before_is_kept(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "c1.log").write_text("earlier run\n")
    with pytest.raises(PermanentDriverError):
        _start(tmp_path, "fails")
    assert _left(tmp_path) == ["logs/c1.log"]
    assert (tmp_path / "logs" / "c1.log").read_text() == "earlier run\n"


def test_conmon_that_reports_nothing(tmp_path: Path) -> None:
    with pytest.raises(PermanentDriverError, match="conmon ended without reporting the container"):
        _start(tmp_path, "silent")
    assert _left(tmp_path) == []


def test_conmon_that_fails_before_going_to_the_background(tmp_path: Path) -> None:
    with pytest.raises(PermanentDriverError, match="conmon failed: conmon: option parsing failed"):
        _start(tmp_path, "early")
    assert _left(tmp_path) == []


def test_missing_conmon_binary(tmp_path: Path) -> None:
    with pytest.raises(PermanentDriverError, match="cannot execute"):
        _start(tmp_path, "fails", conmon=str(tmp_path / "no-conmon"))


def test_an_existing_container_is_never_replaced(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, state='{"id": "stkt-mon-c1", "status": "running"}')
    with pytest.raises(PermanentDriverError, match="already exists"):
        start_container(runtime, "stkt-mon-c1", _bundle(tmp_path), log_path=tmp_path / "c1.log",
                        exit_dir=tmp_path / "exits", pid_file=tmp_path / "c1.pid",
                        conmon_pid_file=tmp_path / "c1.conmon.pid", state_dir=tmp_path / "mon",
                        conmon=_conmon(tmp_path, "fails"))


def test_a_missing_bundle(tmp_path: Path) -> None:
    with pytest.raises(PermanentDriverError, match="no OCI bundle"):
        start_container(_runtime(tmp_path), "stkt-mon-c1", tmp_path / "nowhere", log_path=tmp_path / "l",
                        exit_dir=tmp_path, pid_file=tmp_path / "p", conmon_pid_file=tmp_path / "cp",
                        conmon=_conmon(tmp_path, "fails"))


def test_a_state_dir_too_deep_for_the_attach_socket(tmp_path: Path) -> None:
    with pytest.raises(PermanentDriverError, match="too deep"):
        _start(tmp_path, "fails", state_dir=tmp_path / ("d" * 120))


def test_invalid_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PermanentDriverError, match="invalid container id"):
        start_container(_runtime(tmp_path), "../x", _bundle(tmp_path), log_path=tmp_path / "l",
                        exit_dir=tmp_path, pid_file=tmp_path / "p", conmon_pid_file=tmp_path / "cp")


def test_reading_what_conmon_left(tmp_path: Path) -> None:
    mc = MonitoredContainer("c1", tmp_path / "b", tmp_path / "c1.log", tmp_path / "exits",
                            tmp_path / "c1.pid", tmp_path / "c1.cpid", tmp_path / "sockets")
    assert mc.exit_code() is None and mc.container_pid() is None and not mc.conmon_alive()
    assert not mc.oom_killed()
    (tmp_path / "exits").mkdir()
    (tmp_path / "exits" / "c1").write_text("137")
    (tmp_path / "c1.pid").write_text("4242\n")
    (tmp_path / "c1.cpid").write_text("1")  # pid 1 is not a conmon
    assert mc.exit_code() == 137 and read_exit_code(tmp_path / "exits", "c1") == 137
    assert mc.container_pid() == 4242
    assert not mc.conmon_alive()
    (tmp_path / "c1.pid").write_text("")
    assert read_pid(tmp_path / "c1.pid") is None
    (tmp_path / "exits" / "c1").write_text("garbage")
    with pytest.raises(PermanentDriverError, match="not a number"):
        mc.exit_code()
