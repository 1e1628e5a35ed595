"""The pure parts of the builder: config changes per instruction, the state's JSON form, users
and groups, --chmod, layer tars from entries, and the layered view of an image."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from stackd.build.dockerfile import parse_dockerfile
from stackd.build.instructions import Instruction
from stackd.build.resolve import resolve
from stackd.drivers.builder.fsview import ContextFS, LayeredFS, ResolveError
from stackd.drivers.builder.fsview import resolve as resolve_path
from stackd.drivers.builder.layertar import CopyError, Entry, parse_chmod, write_layer
from stackd.drivers.builder.state import ConfigState, StageState, apply_metadata, config_blob, set_env
from stackd.drivers.builder.users import UnknownUser, resolve_chown, resolve_user
from stackd.drivers.images.whiteouts import MemoryWhiteouts
from tests.unit.builder.fakes import GROUP, PASSWD


def instructions(text: str) -> list[Instruction]:
    plan = resolve(parse_dockerfile("FROM scratch\n" + text), platform="linux/amd64")
    return [s.instruction for s in plan.stages[-1].steps]


def configure(text: str, state: StageState | None = None) -> StageState:
    state = state or StageState()
    for instr in instructions(text):
        state = apply_metadata(state, instr)
    return state


def test_env_replaces_a_variable_in_place_and_appends_new_ones() -> None:
    assert set_env(("A=1", "B=2"), [("A", "3"), ("C", "4")]) == ("A=3", "B=2", "C=4")
    state = configure("ENV A=1 B=2\nENV A=x${B}\n")
    assert state.config.env == ("A=x2", "B=2")


def test_workdir_user_ports_volumes_labels_signal_author() -> None:
    c = configure("WORKDIR /a\nWORKDIR b/../c\nUSER app:staff\nEXPOSE 80 53/udp\nEXPOSE 80\n"
                  "VOLUME /data /logs\nLABEL x=1 y=2\nLABEL x=3\nSTOPSIGNAL SIGINT\nMAINTAINER me\n")
    assert (c.config.working_dir, c.config.user) == ("/a/c", "app:staff")
    assert c.config.exposed_ports == ("53/udp", "80/tcp") and c.config.volumes == ("/data", "/logs")
    assert c.config.labels == (("x", "3"), ("y", "2"))
    assert (c.config.stop_signal, c.author) == ("SIGINT", "me")


def test_entrypoint_resets_an_inherited_cmd_but_not_one_set_in_the_stage() -> None:
    inherited = StageState(config=ConfigState(cmd=("bash",)))
    assert configure('ENTRYPOINT ["/run"]\n', inherited).config.cmd is None
    kept = configure('CMD ["serve"]\nENTRYPOINT ["/run"]\n', inherited).config
    assert (kept.entrypoint, kept.cmd) == (("/run",), ("serve",))


def test_shell_form_commands_use_the_current_shell() -> None:
    c = configure('CMD echo hi\nSHELL ["/bin/bash", "-eu", "-c"]\nENTRYPOINT exec app\n').config
    assert c.cmd == ("/bin/sh", "-c", "echo hi")
    assert c.entrypoint == ("/bin/bash", "-eu", "-c", "exec app") and c.shell == ("/bin/bash", "-eu", "-c")


def test_healthcheck_replaces_the_whole_check() -> None:
    c = configure("HEALTHCHECK --interval=5s CMD curl -f http://localhost/\n").config
    assert c.healthcheck is not None and c.healthcheck.test == ("CMD-SHELL", "curl -f http://localhost/")
    assert c.healthcheck.interval == 5_000_000_000 and c.healthcheck.retries == 0
    assert configure("HEALTHCHECK NONE\n").config.healthcheck.test == ("NONE",)  # type: ignore[union-attr]


def test_layer_instructions_are_not_metadata() -> None:
    (run,) = instructions("RUN true\n")
    with pytest.raises(ValueError, match="not a metadata instruction"):
        apply_metadata(StageState(), run)


def test_state_round_trips_through_json_and_makes_the_config_document() -> None:
    state = configure('ENV A=1\nCMD ["x"]\nHEALTHCHECK --retries=2 CMD ["true"]\nLABEL k=v\nUSER 5\n',
                      StageState(created="2024-01-01T00:00:00Z", architecture="amd64", os="linux"))
    assert StageState.from_json(json.loads(json.dumps(state.to_json()))) == state
    doc = json.loads(config_blob(state, {"extra": "1"}))
    assert doc["config"]["Labels"] == {"k": "v", "extra": "1"}
    assert doc["config"]["Healthcheck"] == {"Test": ["CMD", "true"], "Retries": 2}
    assert doc["rootfs"] == {"type": "layers", "diff_ids": []} and doc["created"] == "2024-01-01T00:00:00Z"


def test_users_resolve_like_docker() -> None:
    app = resolve_user("app", PASSWD, GROUP)
    assert (app.uid, app.gid, app.additional_gids) == (1000, 1001, (50,))
    assert resolve_user("app:root", PASSWD, GROUP).gid == 0
    assert (resolve_user("4242", PASSWD, GROUP).uid, resolve_user("4242", PASSWD, GROUP).gid) == (4242, 0)
    with pytest.raises(UnknownUser, match="nobody"):
        resolve_user("nobody", PASSWD, GROUP)
    with pytest.raises(UnknownUser, match="group 'wheel'"):
        resolve_user("app:wheel", PASSWD, GROUP)
    assert resolve_chown("app", PASSWD, GROUP) == (1000, 1000)  # no group: the user's number
    assert resolve_chown("app:staff", PASSWD, GROUP) == (1000, 50)
    assert resolve_chown("10:20", "", "") == (10, 20)


@pytest.mark.parametrize(("spec", "mode", "is_dir", "expected"), [
    ("0755", 0o600, False, 0o755),
    ("u+x", 0o644, False, 0o744),
    ("go-rwx", 0o755, True, 0o700),
    ("a=rX", 0o700, True, 0o555),
    ("a=rX", 0o600, False, 0o444),
    ("u+s,o+t", 0o755, True, 0o5755),
])
def test_chmod_octal_and_symbolic(spec: str, mode: int, is_dir: bool, expected: int) -> None:
    assert parse_chmod(spec)(mode, is_dir) == expected


def test_chmod_refuses_nonsense() -> None:
    with pytest.raises(CopyError):
        parse_chmod("rwx")


def test_write_layer_keeps_owners_modes_links_and_content(tmp_path: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"content")
    entries = [Entry("d", "dir", 0o750, 1, 2, 100), Entry("d/f", "file", 0o640, 3, 4, 200, source=src),
               Entry("d/l", "symlink", 0o777, 0, 0, 300, target="f"), Entry("d/inline", "file", data=b"x")]
    buf = io.BytesIO()
    info = write_layer(entries, buf)
    assert info.size == len(buf.getvalue())
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        m = {x.name: x for x in tf.getmembers()}
        body = tf.extractfile(m["d/f"])
        assert body is not None and body.read() == b"content"
    assert (m["d"].isdir(), m["d"].mode, m["d"].uid, m["d"].gid) == (True, 0o750, 1, 2)
    assert (m["d/f"].mode, m["d/f"].uid, m["d/f"].mtime) == (0o640, 3, 200)
    assert m["d/l"].issym() and m["d/l"].linkname == "f" and m["d/inline"].size == 1


def test_layered_view_applies_whiteouts_opaque_directories_and_symlinks(tmp_path: Path) -> None:
    wo = MemoryWhiteouts()
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in (lower / "etc" / "old", lower / "var" / "lib", upper / "var", upper / "etc"):
        d.mkdir(parents=True)
    (lower / "etc" / "gone.conf").write_text("x")
    (lower / "etc" / "kept.conf").write_text("lower")
    (lower / "var" / "lib" / "data").write_text("hidden")
    (upper / "etc" / "kept.conf").write_text("upper")
    wo.make_whiteout(upper / "etc" / "gone.conf")
    wo.make_opaque(upper / "var")
    (upper / "var" / "new").write_text("n")
    (upper / "lnk").symlink_to("/etc/../etc/kept.conf")
    fs = LayeredFS([upper, lower], wo)
    assert fs.listdir("etc") == ["kept.conf", "old"]
    assert fs.lstat("etc/gone.conf") is None and fs.real("etc/kept.conf") == upper / "etc" / "kept.conf"
    assert fs.listdir("var") == ["new"] and fs.lstat("var/lib/data") is None
    assert resolve_path(fs, "/lnk") == "etc/kept.conf" and resolve_path(fs, "lnk", follow_last=False) == "lnk"
    assert resolve_path(fs, "/../../etc") == "etc"
    (upper / "loop").symlink_to("loop")
    with pytest.raises(ResolveError):
        resolve_path(fs, "loop")


def test_context_view_shows_only_the_kept_entries(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c.txt").write_text("c")
    (tmp_path / "a" / "secret").write_text("s")
    fs = ContextFS(tmp_path, ["a", "a/b", "a/b/c.txt"])
    assert fs.listdir("a") == ["b"] and fs.lstat("a/secret") is None and fs.lstat("a/b/c.txt") is not None
