"""The records kept beside each container and what ``list_containers`` makes of them, signal
names, the overlay's mount options, and the content of secrets and configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackd import labels
from stackd.drivers.containers.create import file_content
from stackd.drivers.containers.info import Attachment, ContainerInfo, PortInfo, read_info, write_info
from stackd.drivers.containers.listing import record, state_of
from stackd.drivers.containers.process import last_lines, signal_name
from stackd.drivers.containers.rootfs import overlay_options, read_etc
from stackd.errors import PermanentDriverError
from stackd.spec.models import Config, Secret
from stackd.store import StoredContainer
from stackd.store.base import utc_now

INFO = ContainerInfo(
    name="demo-web-1", project="demo", service="web", number=1, image="busybox:latest", image_id="sha256:ab",
    cgroups_path="/stackd/demo/default/demo-web-1", hostname="demo-web-1", group="default",
    netns="stk-demo-web-1",
    attachments=(Attachment("default", "demo_default", "10.90.0.2", ("www",)),), gateway="default",
    ports=(PortInfo(80, 8080, "tcp", "127.0.0.1"),), extra_hosts=(("gw", "10.0.0.1"),),
    anonymous_volumes=("demo-web-1-anon-0123456789ab",), stop_signal="SIGQUIT", tty=True, labels={"a": "b"})


def test_info_survives_the_file(tmp_path: Path) -> None:
    write_info(tmp_path / "container.json", INFO)
    assert read_info(tmp_path / "container.json") == INFO
    assert read_info(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text('{"name": 1}')
    with pytest.raises(PermanentDriverError, match=r"bad\.json is damaged"):
        read_info(tmp_path / "bad.json")


@pytest.mark.parametrize(("status", "code", "state"), [
    (None, None, "created"), (None, 0, "exited"), ("created", None, "created"), ("created", 1, "exited"),
    ("running", None, "running"), ("paused", None, "paused"), ("stopped", 137, "exited"),
    ("stopped", None, "exited"), ("weird", None, "dead"),
])
def test_state_of(status: str | None, code: int | None, state: str) -> None:
    assert state_of(status, code) == state


def test_record_combines_every_source() -> None:
    notes = {labels.PROJECT: "demo", labels.SERVICE: "web", labels.NUMBER: "1", labels.CONFIG_HASH: "h",
             labels.CONFIG_PARTS: json.dumps({"image": "x"}), labels.IMAGE_ID: "sha256:ab"}
    stored = StoredContainer("demo-web-1", "demo", "web", 1, "h", utc_now(), restarts=3)
    running = record(INFO, notes, runtime={"status": "running", "pid": 42, "created": "2026-01-01T00:00:00Z"},
                     exit_code=None, finished=None, stored=stored)
    assert (running.state, running.pid, running.exit_code, running.restarts) == ("running", 42, None, 3)
    assert running.config_parts == {"image": "x"} and running.started_at == "2026-01-01T00:00:00Z"
    assert running.addresses == {"default": "10.90.0.2"} and running.ports == ("127.0.0.1:8080->80/tcp",)
    ended = record(INFO, notes, runtime={"status": "stopped", "pid": 0}, exit_code=2, finished=0.0,
                   stored=None)
    assert (ended.state, ended.pid, ended.exit_code, ended.restarts) == ("exited", None, 2, 0)
    assert ended.finished_at == "1970-01-01T00:00:00+00:00"


@pytest.mark.parametrize(("given", "expected"), [
    ("SIGTERM", "SIGTERM"), ("term", "SIGTERM"), ("KILL", "SIGKILL"), ("15", "15"), ("sigusr1", "SIGUSR1"),
])
def test_signal_names(given: str, expected: str) -> None:
    assert signal_name(given) == expected


@pytest.mark.parametrize("bad", ["SIGNOPE", "999", ""])
def test_unknown_signals(bad: str) -> None:
    with pytest.raises(PermanentDriverError, match="unknown signal"):
        signal_name(bad)


def test_last_lines_of_the_log(tmp_path: Path) -> None:
    log = tmp_path / "ctr.log"
    assert last_lines(log) == " and wrote nothing"
    log.write_text("".join(f"2026-01-01T00:00:0{i}.000000000Z stdout F line {i}\n" for i in range(5)))
    assert last_lines(log, 2) == "; its last output:\n  line 3\n  line 4"


def test_overlay_options_put_the_top_layer_first() -> None:
    text = overlay_options([Path("/l/top"), Path("/l/bottom")], Path("/c/upper"), Path("/c/work"))
    assert text.startswith("lowerdir=/l/top:/l/bottom,upperdir=/c/upper,workdir=/c/work,")
    with pytest.raises(PermanentDriverError, match="not allowed"):
        overlay_options([Path("/a:b")], Path("/u"), Path("/w"))


def test_etc_files_are_read_without_following_links(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "etc" / "group").symlink_to("/etc/group")
    assert read_etc(tmp_path, "passwd").startswith("root:")
    assert read_etc(tmp_path, "group") == ""
    assert read_etc(tmp_path / "nowhere", "passwd") == ""


def test_secret_and_config_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_bytes(b"s3cret")
    assert file_content("secret", "pw", Secret(file=str(tmp_path / "pw")), "web") == b"s3cret"
    assert file_content("config", "c", Config(content="hello"), "web") == b"hello"
    monkeypatch.setenv("STKT_TOKEN", "tok")
    assert file_content("secret", "t", Secret(environment="STKT_TOKEN"), "web") == b"tok"
    monkeypatch.delenv("STKT_TOKEN")
    with pytest.raises(PermanentDriverError, match=r"service web: secret t comes from .* STKT_TOKEN, which"):
        file_content("secret", "t", Secret(environment="STKT_TOKEN"), "web")
    with pytest.raises(PermanentDriverError, match="service web: external secrets"):
        file_content("secret", "x", Secret(external=True), "web")
    with pytest.raises(PermanentDriverError, match="service web: cannot read secret m"):
        file_content("secret", "m", Secret(file=str(tmp_path / "missing")), "web")
