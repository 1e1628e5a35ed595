"""OciRuntime against a stand-in runtime binary (a script that records its argv and plays runc):
command lines, stackd's own --root, the container's stdio, exit codes, error translation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from stackd.drivers.runtime.base import ContainerRuntime
from stackd.drivers.runtime.runtime import (
    ContainerNotFound,
    ContainerNotRunning,
    OciRuntime,
    RuntimeInfo,
    detect,
    probe,
)
from stackd.errors import PermanentDriverError, TransientDriverError

FAKE = r'''
import json, os, shutil, signal, sys, time

argv = sys.argv[1:]
with open(os.environ["FAKE_RT_RECORD"], "a") as f:
    f.write(json.dumps(argv) + "\n")
if argv == ["--version"]:
    print("fake-runtime version 9.9")
    sys.exit(0)
root = log = None
i = 0
while argv[i].startswith("-"):
    if argv[i] in ("--root", "--log", "--log-format"):
        root = argv[i + 1] if argv[i] == "--root" else root
        log = argv[i + 1] if argv[i] == "--log" else log
        i += 2
        continue
    if argv[i].startswith("--log=file:"):
        log = argv[i][len("--log=file:"):]
    i += 1
cmd, rest = argv[i], argv[i + 1:]


def fail(msg):
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"level": "error", "msg": msg}) + "\n")
    sys.stderr.write(msg + "\n")
    sys.exit(1)


if cmd == "list":
    names = sorted(os.listdir(root)) if os.path.isdir(root) else []
    print(json.dumps([{"id": n, "status": "created"} for n in names]) if names else "null")
    sys.exit(0)
cid = [a for a in rest if not a.startswith("-") and not a.startswith("/")][0]
sdir = os.path.join(root, cid)
status_file = os.path.join(sdir, "status")


def status():
    if not os.path.isdir(sdir):
        fail("container does not exist")
    with open(status_file) as f:
        return f.read()


def set_status(s):
    with open(status_file, "w") as f:
        f.write(s)


if cmd == "create":
    if cid.startswith("bad") or os.environ.get("FAKE_RT_FAIL_CREATE"):
        fail('exec: "/nope": stat /nope: no such file or directory')
    if cid.startswith("busy"):
        fail("cgroup: write: resource temporarily unavailable")
    bundle = rest[rest.index("--bundle") + 1]
    with open(os.path.join(bundle, "config.json")) as f:
        assert json.load(f)["process"]["args"], "a config without args"
    os.makedirs(sdir)
    set_status("created")
    print("container says hello")
elif cmd == "start":
    status()
    set_status("running")
elif cmd == "state":
    if cid.startswith("slow"):
        time.sleep(30)
    print(json.dumps({"ociVersion": "1.0.2", "id": cid, "status": status(), "pid": 4242}))
elif cmd == "kill":
    if status() != "running":
        fail("container not running")
    if os.path.exists(os.path.join(sdir, "pid")):
        with open(os.path.join(sdir, "pid")) as f:
            os.kill(int(f.read()), signal.SIGKILL)
    set_status("stopped")
elif cmd == "delete":
    if status() == "running" and "--force" not in rest:
        fail("cannot delete container that is not stopped")
    shutil.rmtree(sdir)
elif cmd == "run":
    os.makedirs(sdir)
    set_status("running")
    if cid.startswith("runfail"):
        shutil.rmtree(sdir)
        fail("unable to start container process: exec: no such file or directory")
    if cid.startswith("hang"):
        with open(os.path.join(sdir, "pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
    print("out")
    sys.stderr.write("err\n")
    shutil.rmtree(sdir)
    sys.exit(int(cid.split("-")[1]))
'''


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "fake-runtime"
    script.write_text(f"#!{sys.executable}\n{FAKE}")
    script.chmod(0o755)
    monkeypatch.setenv("FAKE_RT_RECORD", str(tmp_path / "calls.jsonl"))
    monkeypatch.delenv("FAKE_RT_FAIL_CREATE", raising=False)
    return script


def calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def make(fake: Path, tmp_path: Path, name: str = "runc", timeout: float = 30.0) -> OciRuntime:
    info = RuntimeInfo(name=name, path=str(fake), version="9.9", cgroup_mode="v2")
    return OciRuntime(info, root=tmp_path / "state", command_timeout=timeout)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "bundle"
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"process": {"args": ["sh"]}}))
    return path


def test_lifecycle_and_translated_errors(fake: Path, tmp_path: Path, bundle: Path) -> None:
    rt: ContainerRuntime = make(fake, tmp_path)  # OciRuntime is a ContainerRuntime
    rt.create("stkt-c1", bundle)
    assert rt.state("stkt-c1")["status"] == "created"
    rt.start("stkt-c1")
    assert rt.state("stkt-c1") == {"ociVersion": "1.0.2", "id": "stkt-c1", "status": "running", "pid": 4242}
    assert [c["id"] for c in rt.list()] == ["stkt-c1"]
    rt.kill("stkt-c1", "SIGKILL")
    assert rt.state("stkt-c1")["status"] == "stopped"
    with pytest.raises(ContainerNotRunning):
        rt.kill("stkt-c1", 9)
    rt.delete("stkt-c1")
    with pytest.raises(ContainerNotFound, match="container does not exist"):
        rt.state("stkt-c1")
    with pytest.raises(ContainerNotFound):
        rt.delete("stkt-c1", force=True)
    with pytest.raises(ContainerNotFound):
        rt.kill("stkt-c1")
    assert rt.list() == []


def test_an_existing_container_is_never_replaced_nor_cleaned_up(
        fake: Path, tmp_path: Path, bundle: Path) -> None:
    rt = make(fake, tmp_path)
    rt.create("stkt-c1", bundle)
    rt.start("stkt-c1")
    with pytest.raises(PermanentDriverError, match="already exists"):
        rt.create("stkt-c1", bundle)
    with pytest.raises(PermanentDriverError, match="already exists"):
        rt.run_to_completion("stkt-c1", bundle)
    assert rt.state("stkt-c1")["status"] == "running"
    assert sum("create" in argv for argv in calls(tmp_path)) == 1


def test_every_command_uses_stackds_own_root(fake: Path, tmp_path: Path, bundle: Path) -> None:
    rt = make(fake, tmp_path)
    rt.create("stkt-c1", bundle, pid_file=tmp_path / "pid")
    rt.start("stkt-c1")
    rt.kill("stkt-c1", 15, all_processes=True)
    rt.delete("stkt-c1", force=True)
    rt.list()
    recorded = calls(tmp_path)
    assert all(argv[:2] == ["--root", str(tmp_path / "state")] for argv in recorded)
    create = recorded[0]
    assert create[2:4] == ["--log", create[3]] and create[4:6] == ["--log-format", "json"]
    assert create[6:] == ["create", "--bundle", str(bundle), "--pid-file", str(tmp_path / "pid"), "stkt-c1"]
    assert recorded[1][2:] == ["start", "stkt-c1"]
    assert recorded[2][2:] == ["kill", "--all", "stkt-c1", "15"]
    assert recorded[3][2:] == ["delete", "--force", "stkt-c1"]
    assert recorded[4][2:] == ["list", "--format", "json"]
    assert not Path(create[3]).exists()  # the log file is temporary


def test_crun_gets_its_own_spelling_of_the_global_options(fake: Path, tmp_path: Path, bundle: Path) -> None:
    make(fake, tmp_path, name="crun").create("stkt-c1", bundle)
    argv = calls(tmp_path)[0]
    assert argv[2] == "--cgroup-manager=cgroupfs"
    assert argv[3].startswith("--log=file:") and argv[4] == "--log-format=json"


def test_the_private_mount_namespace_wraps_only_create_and_run(tmp_path: Path) -> None:
    info = RuntimeInfo(name="crun", path="/usr/bin/crun", version="1.8.1", cgroup_mode="hybrid",
                       needs_private_mount_ns=True, unified_mount="/sys/fs/cgroup/unified")
    rt = OciRuntime(info, root=tmp_path)
    create = rt.create_argv("c1", tmp_path, tmp_path / "log")
    assert create[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    assert "/sys/fs/cgroup/unified" in create
    assert create[create.index("/usr/bin/crun"):][-4:] == ["create", "--bundle", str(tmp_path), "c1"]
    assert rt.run_argv("c1", tmp_path, tmp_path / "log")[0] == "unshare"
    plain = OciRuntime(RuntimeInfo(name="runc", path="/usr/sbin/runc", version="1", cgroup_mode="hybrid",
                                   unified_mount="/sys/fs/cgroup/unified"), root=tmp_path)
    assert plain.create_argv("c1", tmp_path, tmp_path / "log")[0] == "/usr/sbin/runc"


def test_create_gives_the_container_its_stdio_and_failures_carry_the_runtimes_message(
        fake: Path, tmp_path: Path, bundle: Path) -> None:
    rt = make(fake, tmp_path)
    out = tmp_path / "out.log"
    rt.create("stkt-c1", bundle, stdout=out)
    assert out.read_text() == "container says hello\n"
    with pytest.raises(PermanentDriverError, match='exec: "/nope"') as err:
        rt.create("bad-c2", bundle)
    assert not isinstance(err.value, TransientDriverError)
    with pytest.raises(TransientDriverError, match="resource temporarily unavailable"):
        rt.create("busy-c3", bundle)
    assert [c["id"] for c in rt.list()] == ["stkt-c1"]


def test_run_to_completion_returns_the_exit_status_and_streams(
        fake: Path, tmp_path: Path, bundle: Path) -> None:
    rt = make(fake, tmp_path)
    out, err = tmp_path / "out", tmp_path / "err"
    assert rt.run_to_completion("exit-3", bundle, out, err) == 3
    assert out.read_text() == "out\n" and err.read_text() == "err\n"
    with open(out, "ab") as f:
        assert rt.run_to_completion("exit-0", bundle, f, None) == 0
    assert out.read_text() == "out\nout\n"
    assert rt.list() == []


def test_a_runtime_failure_is_not_mistaken_for_an_exit_status(
        fake: Path, tmp_path: Path, bundle: Path) -> None:
    with pytest.raises(PermanentDriverError, match="unable to start container process"):
        make(fake, tmp_path).run_to_completion("runfail-1", bundle)


def test_run_past_its_timeout_is_killed_and_deleted(fake: Path, tmp_path: Path, bundle: Path) -> None:
    rt = make(fake, tmp_path)
    with pytest.raises(PermanentDriverError, match="did not finish within"):
        rt.run_to_completion("hang-0", bundle, timeout=0.5)
    commands = [argv[2] for argv in calls(tmp_path) if argv[0] == "--root"]
    assert "kill" in commands and "delete" in commands
    assert rt.list() == []


def test_a_command_without_answer_is_transient(fake: Path, tmp_path: Path, bundle: Path) -> None:
    rt = make(fake, tmp_path, timeout=0.5)
    rt.create("slow-c1", bundle)
    with pytest.raises(TransientDriverError, match="no answer"):
        rt.state("slow-c1")


def test_a_missing_binary_and_a_bad_id_are_permanent(tmp_path: Path, bundle: Path) -> None:
    rt = OciRuntime(RuntimeInfo(name="runc", path=str(tmp_path / "nope"), version="", cgroup_mode="v2"),
                    root=tmp_path / "state")
    with pytest.raises(PermanentDriverError, match="cannot execute"):
        rt.list()
    with pytest.raises(PermanentDriverError, match="invalid container id"):
        rt.create("../escape", bundle)


def test_probe_accepts_a_runtime_that_creates_and_refuses_one_that_cannot(
        fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = probe("runc", binary=str(fake), prefix="stkt-rt-probe-")
    assert info.version == "fake-runtime version 9.9"
    assert info.path == str(fake) and not info.needs_private_mount_ns
    commands = [argv[argv.index("--bundle") - 1] for argv in calls(tmp_path) if "--bundle" in argv]
    assert commands == ["create"]
    monkeypatch.setenv("FAKE_RT_FAIL_CREATE", "1")
    with pytest.raises(PermanentDriverError, match="cannot create containers"):
        probe("runc", binary=str(fake), prefix="stkt-rt-probe-")


def test_detect_names_what_to_install_when_nothing_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PermanentDriverError, match="apt-get install crun runc") as err:
        detect(preference=("stkt-no-such-runtime",), prefix="stkt-rt-probe-")
    assert "stkt-no-such-runtime is not installed" in str(err.value)
