"""Whole builds against fakes (a scripted runtime, a plain mounter, in-memory whiteouts): what
steps run, what the image holds, cache hits and misses, failures that leave nothing behind."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from textwrap import dedent

import pytest

from stackd.drivers.builder import BuildCache, BuildError, BuildEvent, PlainMounter, build_image
from stackd.drivers.builder.runstep import SCRIPT_PATH
from stackd.drivers.images.records import ImageRef
from stackd.drivers.images.store import ImageStore
from stackd.drivers.images.whiteouts import MemoryWhiteouts
from stackd.drivers.runtime.request import HostLimits
from stackd.errors import SpecError
from tests.unit.builder.fakes import (
    GROUP,
    PASSWD,
    FakeRuntime,
    FakeSource,
    image_files,
    image_of,
    layer_members,
)
from tests.unit.images.builders import E, Image, layer_tar

BASE = Image([layer_tar([E("etc", kind="dir"), E("etc/passwd", data=PASSWD.encode()),
                         E("etc/group", data=GROUP.encode()), E("usr/bin/sh", data=b"sh", mode=0o755),
                         E("bin", kind="symlink", target="usr/bin")])],
             config={"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"]})


class Builder:
    """``build_image`` wired to the fakes, with a clock that ticks one second per call."""

    def __init__(self, root: Path, context: Path) -> None:
        self.store = ImageStore(root / "store", whiteouts=MemoryWhiteouts())
        self.runtime = FakeRuntime()
        self.source = FakeSource({"base:1": BASE, "other:2": image_of({"opt/data.txt": b"data\n"})})
        self.mounter = PlainMounter()
        self.context = context
        self.events: list[BuildEvent] = []
        self.ticks = itertools.count(1_700_000_000)

    def build(self, text: str, *, tags: tuple[str, ...] = ("out:1",),
              build_args: Mapping[str, str] | None = None, no_cache: bool = False, target: str | None = None,
              labels: Mapping[str, str] | None = None) -> ImageRef:
        self.events.clear()
        return build_image(self.store, self.runtime, context=self.context, dockerfile=dedent(text).lstrip(),
                           target=target, build_args=build_args, labels=labels, tags=tags,
                           progress=self.events.append, no_cache=no_cache, sources=[self.source],
                           mounter=self.mounter, limits=HostLimits(), clock=lambda: float(next(self.ticks)))

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events if e.kind in ("step", "cached")]


@pytest.fixture
def b(tmp_path: Path) -> Builder:
    context = tmp_path / "ctx"
    (context / "app" / "sub").mkdir(parents=True)
    (context / "app" / "main.py").write_text("print('hi')\n")
    (context / "app" / "sub" / "util.py").write_text("X = 1\n")
    (context / "conf.txt").write_text("key=value\n")
    (context / "notes.log").write_text("ignored\n")
    (context / ".dockerignore").write_text("*.log\n")
    return Builder(tmp_path, context)


APP = """
    FROM base:1
    ARG GREETING=hello
    ENV APP=/srv/app
    WORKDIR $APP
    COPY app/ ./
    COPY --chown=app:staff --chmod=0640 conf.txt /etc/conf.txt
    RUN write /srv/app/generated made; say ran it
    USER app
    RUN say as app
    EXPOSE 8080
    LABEL stage=test
    ENTRYPOINT ["/srv/app/run"]
"""


def test_a_build_copies_runs_and_configures_the_image(b: Builder) -> None:
    ref = b.build(APP, labels={"extra": "yes"})
    files = image_files(b.store, "out:1")
    assert files["srv/app/main.py"] == b"print('hi')\n" and files["srv/app/sub/util.py"] == b"X = 1\n"
    assert files["srv/app/generated"] == b"made" and files["etc/conf.txt"] == b"key=value\n"
    assert "srv/app/notes.log" not in files and "notes.log" not in files
    conf = layer_members(b.store, "out:1", 3)["etc/conf.txt"]
    assert (conf.uid, conf.gid, conf.mode) == (1000, 50, 0o640)
    c = ref.config
    assert c.env == ("PATH=/usr/bin:/bin", "APP=/srv/app")
    assert (c.working_dir, c.user, c.exposed_ports) == ("/srv/app", "app", ("8080/tcp",))
    assert c.entrypoint == ("/srv/app/run",) and c.cmd is None  # ENTRYPOINT resets the base's CMD
    assert dict(c.labels) == {"stage": "test", "extra": "yes"}
    assert [e.text for e in b.events if e.kind == "output"] == ["ran it", "as app"]
    first, second = b.runtime.calls
    assert first.args == ("/bin/sh", "-c", "write /srv/app/generated made; say ran it")
    assert "GREETING=hello" in first.env and "APP=/srv/app" in first.env
    assert (first.cwd, first.uid, first.gid) == ("/srv/app", 0, 0)
    assert (second.uid, second.gid, second.additional_gids) == (1000, 1001, (50,))
    assert "network" not in first.namespaces  # the host's network, for apt-get
    assert {"/etc/resolv.conf", "/etc/hosts"} <= set(first.mounts)
    assert first.cgroups_path == "/" + first.container_id
    assert b.mounter.mounted == {}


def test_an_unchanged_build_is_all_cache_hits(b: Builder) -> None:
    first = b.build(APP)
    calls = len(b.runtime.calls)
    second = b.build(APP)
    assert len(b.runtime.calls) == calls
    assert set(b.kinds()) == {"cached"} and len(b.kinds()) == 12
    assert second.id == first.id and second.manifest_digest == first.manifest_digest


def test_a_changed_file_invalidates_from_the_copy_that_reads_it(b: Builder) -> None:
    b.build(APP)
    calls = len(b.runtime.calls)
    (b.context / "app" / "main.py").write_text("print('changed')\n")
    b.build(APP)
    assert b.kinds() == ["cached"] * 4 + ["step"] * 8
    assert len(b.runtime.calls) == calls + 2
    assert image_files(b.store, "out:1")["srv/app/main.py"] == b"print('changed')\n"


def test_an_ignored_file_or_an_mtime_changes_nothing(b: Builder) -> None:
    b.build(APP)
    (b.context / "notes.log").write_text("other\n")
    (b.context / "app" / "main.py").touch()
    b.build(APP)
    assert set(b.kinds()) == {"cached"}


def test_a_changed_build_argument_reruns_the_steps_that_see_it(b: Builder) -> None:
    b.build(APP)
    calls = len(b.runtime.calls)
    b.build(APP, build_args={"GREETING": "bye"})
    assert b.kinds() == ["cached"] * 6 + ["step"] * 6
    assert "GREETING=bye" in b.runtime.calls[calls].env


def test_no_cache_runs_every_step_again(b: Builder) -> None:
    b.build(APP)
    calls = len(b.runtime.calls)
    b.build(APP, no_cache=True)
    assert set(b.kinds()) == {"step"} and len(b.runtime.calls) == calls + 2


FAILING = """
    FROM base:1
    RUN write /first done; say one
    RUN say before the end; say broken; fail 3
    CMD ["x"]
"""


def test_a_failing_run_names_the_line_and_leaves_no_image(b: Builder) -> None:
    with pytest.raises(BuildError) as caught:
        b.build(FAILING)
    error = caught.value
    assert error.pos is not None and error.pos.line == 3 and error.exit_status == 3
    assert error.output == ("before the end", "broken")
    assert "Dockerfile (inline):3: RUN failed with exit code 3" in str(error)
    assert "RUN say before the end" in str(error)
    assert list(b.store.names()) == ["base:1"]
    cache = BuildCache(b.store)
    assert list(cache.work_dir.iterdir()) == [] and b.mounter.mounted == {}


def test_a_build_resumes_after_the_last_step_that_succeeded(b: Builder) -> None:
    with pytest.raises(BuildError):
        b.build(FAILING)
    calls = len(b.runtime.calls)
    b.build(FAILING.replace("fail 3", "say fixed"))
    assert b.kinds() == ["cached", "cached", "step", "step"]
    assert len(b.runtime.calls) == calls + 1
    assert image_files(b.store, "out:1")["first"] == b"done"


MULTI = """
    FROM base:1 AS builder
    RUN write /out/tool built
    RUN write /out/extra more
    FROM scratch
    COPY --from=builder /out/tool /app/
    COPY --from=other:2 /opt/data.txt /app/data.txt
    CMD ["/app/tool"]
"""


def test_multi_stage_copies_from_a_stage_and_an_image(b: Builder) -> None:
    ref = b.build(MULTI)
    assert image_files(b.store, "out:1") == {"app": None, "app/tool": b"built", "app/data.txt": b"data\n"}
    assert len(ref.config.diff_ids) == 2 and ref.config.cmd == ("/app/tool",)
    assert b.source.provided == ["base:1", "other:2"]


def test_a_cached_stage_does_not_need_the_stages_it_copies_from(b: Builder) -> None:
    b.build(MULTI)
    b.build(MULTI)
    assert {e.stage for e in b.events if e.kind in ("step", "cached")} == {"stage-1"}
    assert set(b.kinds()) == {"cached"} and len(b.runtime.calls) == 2


def test_target_builds_only_the_stages_it_needs(b: Builder) -> None:
    ref = b.build(MULTI, target="builder")
    assert image_files(b.store, "out:1")["out/extra"] == b"more"
    assert ref.config.cmd == ("sh",)
    assert b.source.provided == ["base:1"]


def test_every_tag_names_the_same_image(b: Builder) -> None:
    ref = b.build("FROM base:1\nLABEL a=b\n", tags=("one:1", "two"))
    assert b.store.names()["one:1"] == b.store.names()["two:latest"] == ref.manifest_digest


def test_a_missing_base_image_is_a_clear_error(b: Builder) -> None:
    with pytest.raises(BuildError, match=r"base image 'nosuch:1' is not in the image store"):
        b.build("FROM nosuch:1\nRUN say hi\n")
    assert b.runtime.calls == [] and b.store.names() == {}


def test_unsupported_instructions_are_refused_before_anything_runs(b: Builder) -> None:
    text = """
        FROM base:1
        RUN say first
        ADD https://example.org/file.tgz /opt/
        RUN --mount=type=cache,target=/root/.cache say cached
        COPY app conf.txt /dest
    """
    with pytest.raises(SpecError) as caught:
        b.build(text)
    assert [p.pos.line for p in caught.value.problems if p.pos] == [3, 4, 5]
    assert b.runtime.calls == [] and b.source.provided == []


def test_mount_points_made_by_the_runtime_stay_out_of_the_layer(b: Builder) -> None:
    b.build("FROM scratch\nRUN write /hello hi\n")
    assert image_files(b.store, "out:1") == {"hello": b"hi"}


def test_workdir_is_created_for_the_user_when_missing(b: Builder) -> None:
    b.build("FROM base:1\nUSER app\nWORKDIR /home/app/work\nWORKDIR /etc\n")
    members = layer_members(b.store, "out:1", 1)
    assert sorted(members) == ["home", "home/app", "home/app/work"]
    assert (members["home/app/work"].uid, members["home/app/work"].gid) == (1000, 1001)
    assert len(b.store.resolve("out:1").config.diff_ids) == 2  # WORKDIR /etc exists: no layer


def test_copy_into_a_symlinked_directory_follows_the_link(b: Builder) -> None:
    b.build("FROM base:1\nCOPY conf.txt /bin/\n")
    assert list(layer_members(b.store, "out:1", 1)) == ["usr/bin/conf.txt"]


def test_a_heredoc_with_an_interpreter_runs_as_a_script_file(b: Builder) -> None:
    b.build("FROM base:1\nRUN <<EOF\n#!/usr/bin/python3\nprint('hi')\nEOF\n")
    (call,) = b.runtime.calls
    assert call.args == (SCRIPT_PATH,)
    assert Path(call.mounts[SCRIPT_PATH]).name == "script"


def test_run_without_network_gets_its_own_namespace(b: Builder) -> None:
    b.build("FROM base:1\nRUN --network=none say offline\n")
    assert "network" in b.runtime.calls[0].namespaces


def test_an_unknown_user_fails_the_run_with_its_line(b: Builder) -> None:
    with pytest.raises(BuildError, match=r":3: RUN failed: unable to find user 'nobody'"):
        b.build("FROM base:1\nUSER nobody\nRUN say hi\n")
