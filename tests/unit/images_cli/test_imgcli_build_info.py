"""``stack build`` (with a stand-in builder and runtime) and ``stack info`` (with stand-in probes),
plus the pure renderers: sizes, ages, the parser's verbs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stackd.cli import images as cli
from stackd.daemon import images as svc
from stackd.drivers.runtime import RuntimeInfo
from stackd.errors import PermanentDriverError
from stackd.spec.options import ProjectOptions
from tests.unit.images_cli.support import add_image, parser, run

STACK = """\
name: demo
services:
  web:
    image: registry.local/web:dev
    build:
      context: ./web
      dockerfile: web.Dockerfile
      target: prod
      args: {VERSION: "1.2", FROM_ENV: null, UNSET: null}
      labels: {team: core}
      tags: ["web:also"]
  worker:
    build: ./worker
  inline:
    build:
      dockerfile_inline: "FROM scratch\\n"
      no_cache: true
  db:
    image: db:1
"""


@dataclass(frozen=True)
class FakeRef:
    id: str


class FakeBuilder:
    """Records every call; reports two events per build."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, store: Any, runtime: Any, **kw: Any) -> FakeRef:
        self.calls.append({"store": store.dir, "runtime": runtime, **kw})
        kw["progress"]("Step 1/2 : FROM scratch")
        kw["progress"](FakeEvent(text="Step 2/2 : COPY . /"))
        return FakeRef(f"sha256:{len(self.calls):064x}")


@dataclass(frozen=True)
class FakeEvent:
    text: str


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "stack.yaml").write_text(STACK)
    for d in ("web", "worker"):
        (tmp_path / d).mkdir()
    return tmp_path


def _options(project: Path, *services: str) -> ProjectOptions:
    return ProjectOptions(services=services, environ={"FROM_ENV": "from-env", "STACKD_DATA_ROOT": "/x"},
                          cwd=str(project))


def test_build_every_service_with_a_build_section(project: Path) -> None:
    builder = FakeBuilder()
    events: list[tuple[str, str]] = []
    built = svc.build(_options(project), root=project / "data", builder=builder, runtime="rt",
                      progress=lambda s, e: events.append((s, svc.describe_event(e))))
    assert [(b.service, b.names) for b in built] == [
        ("web", ("registry.local/web:dev", "web:also")), ("worker", ("demo-worker:latest",)),
        ("inline", ("demo-inline:latest",))]
    web, worker, inline = builder.calls
    assert web["store"] == project / "data" / "images" and web["runtime"] == "rt"
    assert web["context"] == project / "web"
    assert web["dockerfile"] == project / "web" / "web.Dockerfile"
    assert web["target"] == "prod"
    assert web["build_args"] == {"VERSION": "1.2", "FROM_ENV": "from-env"}  # UNSET is left out
    assert web["labels"] == {"team": "core"} and web["no_cache"] is False
    assert worker["dockerfile"] == project / "worker" / "Dockerfile" and worker["target"] is None
    assert inline["dockerfile"] == "FROM scratch\n" and inline["no_cache"] is True
    assert events[:2] == [("web", "Step 1/2 : FROM scratch"), ("web", "Step 2/2 : COPY . /")]
    assert built[0].id == f"sha256:{1:064x}"


def test_build_named_services_and_no_cache(project: Path) -> None:
    builder = FakeBuilder()
    warnings: list[str] = []
    built = svc.build(_options(project, "worker", "db"), ("worker", "db"), no_cache=True,
                      root=project / "data", builder=builder, runtime="rt", warn=warnings.append)
    assert [b.service for b in built] == ["worker"]
    assert builder.calls[0]["no_cache"] is True
    assert warnings == ["service db has no build section; nothing to build"]


def test_build_of_an_unknown_service_is_a_usage_error(project: Path) -> None:
    r = run(project / "data", "build", "nope", cwd=project)
    assert r.code == 2
    assert "nope" in r.err


def test_build_of_a_remote_context_names_file_and_line(project: Path) -> None:
    (project / "stack.yaml").write_text("services:\n  web:\n    build:\n      context: https://git.example/x.git\n")
    r = run(project / "data", "build", cwd=project)
    assert r.code == 2
    assert "stack.yaml:4" in r.err and "services.web.build.context" in r.err
    assert "remote build contexts are not supported" in r.err


def test_build_through_the_command_line(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builder = FakeBuilder()
    probed: list[str] = []
    monkeypatch.setattr(svc, "load_builder", lambda: builder)

    def detect() -> RuntimeInfo:
        probed.append("detect")
        return RuntimeInfo("runc", "/usr/sbin/runc", "runc version 1.1.5", "v1")

    monkeypatch.setattr(svc, "detect", detect)
    r = run(project / "data", "build", "web", "--pull", cwd=project, STACKD_RUN_DIR=str(project / "run"))
    assert r.code == 0, r.err
    assert r.out == "Built web: registry.local/web:dev, web:also (000000000000)\n"
    assert "web  Step 1/2 : FROM scratch" in r.err.splitlines()
    assert "--pull has no effect" in r.err
    assert probed == ["detect"]
    assert builder.calls[0]["runtime"].root == project / "run" / "runtime" / "runc"
    assert builder.calls[0]["store"] == project / "data" / "images"


class StepFailed(PermanentDriverError):
    """Shaped like the builder's error: it carries the failed step's exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.exit_code = status


def test_a_failed_build_exits_1_whatever_status_the_step_had(project: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: Any, **kw: Any) -> Any:
        raise StepFailed("Dockerfile:3: RUN exited with 7\n  RUN false", 7)

    monkeypatch.setattr(svc, "load_builder", lambda: failing)
    monkeypatch.setattr(svc, "detect", lambda: RuntimeInfo("runc", "/usr/sbin/runc", "runc version 1", "v1"))
    r = run(project / "data", "build", "worker", cwd=project)
    assert r.code == 1
    assert r.err.splitlines()[-2:] == [
        "error: service worker: the build failed: Dockerfile:3: RUN exited with 7", "error:   RUN false"]


def test_nothing_to_build(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svc, "load_builder", lambda: pytest.fail("no builder is needed"))
    r = run(project / "data", "build", "db", cwd=project)
    assert r.code == 0 and r.out == ""
    assert "nothing to build" in r.err


def test_a_missing_builder_is_a_clear_error() -> None:
    with pytest.raises(PermanentDriverError, match=r"cannot build images .*stackd\.drivers\.no_such_builder"):
        svc.load_builder("stackd.drivers.no_such_builder")


def test_load_builder_needs_a_build_image_function() -> None:
    assert svc.load_builder("tests.unit.images_cli.fake_builder") is not None
    with pytest.raises(PermanentDriverError, match="has no build_image function"):
        svc.load_builder("tests.unit.images_cli.support")


def test_the_real_builder_is_found() -> None:
    assert svc.load_builder().__name__ == "build_image"


# ------------------------------------------------------------------------------------------ info


def _runtime() -> RuntimeInfo:
    return RuntimeInfo("crun", "/usr/bin/crun", "crun version 1.8.1\ncommit: x", "hybrid",
                       needs_private_mount_ns=True, unified_mount="/sys/fs/cgroup/unified")


def test_info_reports_what_it_finds(tmp_path: Path) -> None:
    add_image(tmp_path, "web:1.0", {"a": b"x" * 5000})
    conmon = tmp_path / "conmon"
    conmon.write_text("#!/bin/sh\necho 'conmon version 9.8.7'\necho 'commit: unknown'\n")
    conmon.chmod(0o755)
    facts = svc.info({"STACKD_DATA_ROOT": str(tmp_path)}, runtime=_runtime, cgroup_mode=lambda: "hybrid",
                     conmon=lambda: str(conmon))
    d = facts.to_dict()
    assert d["runtime"] == {"name": "crun", "version": "1.8.1", "path": "/usr/bin/crun",
                            "private_mount_namespace": True, "unified_mount": "/sys/fs/cgroup/unified"}
    assert d["cgroup_mode"] == "hybrid" and d["images"] == 1
    assert d["store_bytes"] >= 5000
    assert d["conmon"] == {"path": str(conmon), "version": "9.8.7"}
    assert d["data_root"] == str(tmp_path) and d["version"] and d["problems"] == {}


def test_info_reports_missing_parts_instead_of_failing(tmp_path: Path) -> None:
    def no_runtime() -> RuntimeInfo:
        raise PermanentDriverError("no usable OCI runtime (install crun or runc)")

    def no_conmon() -> str:
        raise PermanentDriverError("conmon is not installed")

    d = svc.info({"STACKD_DATA_ROOT": str(tmp_path / "none")}, runtime=no_runtime,
                 cgroup_mode=lambda: "v2", conmon=no_conmon).to_dict()
    assert d["runtime"] is None and d["conmon"] is None
    assert d["problems"] == {"runtime": "no usable OCI runtime (install crun or runc)",
                             "conmon": "conmon is not installed"}
    assert d["images"] == 0 and d["store_bytes"] == 0 and d["cgroup_mode"] == "v2"


def _fake_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svc, "detect", _runtime)
    monkeypatch.setattr(svc, "find_conmon", lambda: "/usr/bin/conmon")
    monkeypatch.setattr(svc, "conmon_version", lambda path: "2.1.6")

    @dataclass(frozen=True)
    class Layout:
        mode: str = "hybrid"

    monkeypatch.setattr(svc, "detect_cgroups", Layout)


def test_info_text_and_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_probes(monkeypatch)
    add_image(tmp_path, "web:1.0", {"a": b"x"})
    r = run(tmp_path, "info")
    assert r.code == 0
    lines = dict(line.split(":", 1) for line in r.out.splitlines())
    assert lines["runtime"].strip() == "crun 1.8.1 (/usr/bin/crun)"
    assert lines["crun workaround"].strip().startswith("yes: create/run in a private mount namespace "
                                                       "without /sys/fs/cgroup/unified")
    assert lines["cgroups"].strip() == "hybrid"
    assert lines["conmon"].strip() == "2.1.6 (/usr/bin/conmon)"
    assert lines["images"].strip().startswith("1 (") and str(tmp_path) in lines["images"]
    doc = json.loads(run(tmp_path, "info", "--format", "json").out)
    assert doc["runtime"]["name"] == "crun" and doc["images"] == 1


def test_version_number() -> None:
    assert svc.version_number("runc version 1.1.5+ds1") == "1.1.5+ds1"
    assert svc.version_number("conmon version 2.1.6, commit: unknown") == "2.1.6"
    assert svc.version_number("something else") == "something else"


# ------------------------------------------------------------------------------------- renderers


@pytest.mark.parametrize(("n", "text"), [(0, "0B"), (999, "999B"), (1000, "1kB"), (2_010_000, "2.01MB"),
                                         (432_000_000, "432MB"), (1_234_000_000, "1.23GB")])
def test_human_size(n: int, text: str) -> None:
    assert cli.human_size(n) == text


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(0), "Less than a second ago"), (timedelta(seconds=1), "1 second ago"),
    (timedelta(seconds=59), "59 seconds ago"), (timedelta(seconds=90), "About a minute ago"),
    (timedelta(minutes=5), "5 minutes ago"), (timedelta(minutes=61), "About an hour ago"),
    (timedelta(hours=47), "47 hours ago"), (timedelta(days=3), "3 days ago"),
    (timedelta(days=20), "2 weeks ago"), (timedelta(days=90), "3 months ago"),
    (timedelta(days=800), "2 years ago")])
def test_ago(delta: timedelta, text: str) -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    created = (now - delta).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cli.ago(created, now) == text


def test_ago_of_unknown_dates() -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    assert cli.ago(None, now) == "N/A"
    assert cli.ago("yesterday", now) == "yesterday"


def test_parser_has_every_verb() -> None:
    assert set(cli.VERBS) == {"image", "build", "info"}
    p = parser()
    args = p.parse_args(["image", "import", "x.tar", "--name", "a:1"])
    assert (args.command, args.image_command, args.archive) == ("image", "import", "x.tar")
    assert args.image_name == "a:1"
    args = p.parse_args(["build", "web", "db", "--no-cache"])
    assert (args.service_names, args.no_cache, args.pull) == (["web", "db"], True, False)
    for argv in (["image"], ["image", "inspect"], ["image", "export", "only-name"]):
        with pytest.raises(SystemExit):
            p.parse_args(argv)
