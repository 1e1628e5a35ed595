"""``stack image ls/inspect/rm/prune/import/export/bootstrap`` over a temporary store: what they
print, their exit codes, and that a failure leaves the store as it was."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from stackd.daemon import images as svc
from stackd.drivers.host import ContainerRecord
from stackd.drivers.images import ImageStore
from stackd.errors import PermanentDriverError
from tests.unit.images_cli.support import add_image, docker_archive, run

BUSY = {"bin/busybox": b"\x7fELF pretend", "etc/motd": b"hello\n"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_ls_table_has_docker_columns_and_short_ids(root: Path) -> None:
    web = add_image(root, "web:1.0", BUSY, Cmd=["/bin/busybox"])
    add_image(root, "registry.local:5000/team/db", {"db": b"x" * 3000})
    r = run(root, "image", "ls")
    assert r.code == 0
    header, *lines = r.out.splitlines()
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert len(lines) == 2
    db, w = (line.split("   ") for line in lines)  # sorted by name: registry... < web
    assert [c.strip() for c in w if c.strip()][:3] == ["web", "1.0", web.id.removeprefix("sha256:")[:12]]
    assert [c.strip() for c in db if c.strip()][:2] == ["registry.local:5000/team/db", "latest"]
    assert re.search(r"\d+ years ago", lines[1])
    assert re.search(r"\b\d+(\.\d+)?kB\b", lines[0])


def test_ls_of_an_empty_or_missing_store_prints_only_the_header(root: Path) -> None:
    r = run(root, "image", "ls")
    assert (r.code, r.out.split()) == (0, ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"])
    assert not root.exists()  # listing creates nothing


def test_ls_json_lines_and_quiet(root: Path) -> None:
    ref = add_image(root, "web:1.0", BUSY)
    rows = [json.loads(line) for line in run(root, "image", "ls", "--format", "json").out.splitlines()]
    assert rows == [{"name": "web:1.0", "repository": "web", "tag": "1.0", "id": ref.id,
                     "manifest_digest": ref.manifest_digest, "created": "2020-01-02T03:04:05Z",
                     "size": rows[0]["size"]}]
    assert rows[0]["size"] > 0
    assert run(root, "image", "ls", "-q").out == ref.id.removeprefix("sha256:")[:12] + "\n"


def test_inspect_is_a_json_array_like_docker(root: Path) -> None:
    ref = add_image(root, "web:1.0", BUSY, Cmd=["/bin/busybox", "httpd"], Env=["A=1"], Labels={"k": "v"})
    ImageStore(root).add_image("web:stable", ImageStore(root).read_blob(ref.manifest_digest))
    r = run(root, "image", "inspect", "web:1.0")
    assert r.code == 0
    (doc,) = r.json()
    assert doc["Id"] == ref.id
    assert doc["RepoTags"] == ["web:1.0", "web:stable"]
    assert doc["Config"]["Cmd"] == ["/bin/busybox", "httpd"]
    assert doc["Config"]["Env"] == ["A=1"] and doc["Config"]["Labels"] == {"k": "v"}
    assert doc["RootFS"]["Layers"] == list(ref.config.diff_ids)


@pytest.mark.parametrize("how", ["short", "full", "prefix"])
def test_inspect_by_id(root: Path, how: str) -> None:
    ref = add_image(root, "web:1.0", BUSY)
    hexid = ref.id.removeprefix("sha256:")
    name = {"short": hexid[:12], "full": ref.id, "prefix": f"sha256:{hexid[:8]}"}[how]
    assert run(root, "image", "inspect", name).json()[0]["Id"] == ref.id


def test_inspect_reports_missing_images_and_shows_the_others(root: Path) -> None:
    add_image(root, "web:1.0", BUSY)
    r = run(root, "image", "inspect", "nope", "web:1.0")
    assert r.code == 1
    assert [d["RepoTags"] for d in r.json()] == [["web:1.0"]]
    assert "error: no image 'nope:latest' in the image store" in r.err
    assert "Traceback" not in r.err


def test_a_malformed_name_is_a_usage_error(root: Path) -> None:
    r = run(root, "image", "inspect", "Web/App")
    assert r.code == 2
    assert "lowercase" in r.err


def test_rm_untags_and_prune_frees_the_content(root: Path) -> None:
    ref = add_image(root, "web:1.0", BUSY)
    add_image(root, "db:1", {"db": b"d"})
    layer_dir = ref.layer_dirs[0]
    r = run(root, "image", "rm", "web:1.0")
    assert r.code == 0
    assert r.out.splitlines() == ["Untagged: web:1.0",
                                  f"Unreferenced: {ref.id} (`stack image prune` frees its content)"]
    assert layer_dir.is_dir()  # only the name went
    p = run(root, "image", "prune")
    assert p.code == 0
    assert "Deleted 3 blob(s), 1 unpacked layer(s)" in p.out
    assert re.search(r"Total reclaimed space: \d", p.out)
    assert not layer_dir.exists()
    assert [row.name for row in svc.image_ls(root)] == ["db:1"]
    assert ImageStore(root).resolve("db:1").layer_dirs[0].is_dir()


def test_rm_of_one_of_two_names_keeps_the_image(root: Path) -> None:
    ref = add_image(root, "web:1.0", BUSY)
    ImageStore(root).add_image("web:stable", ImageStore(root).read_blob(ref.manifest_digest))
    r = run(root, "image", "rm", "web:stable", "ghost")
    assert r.code == 1
    assert r.out == "Untagged: web:stable\n"
    assert "no image 'ghost:latest'" in r.err
    assert [row.name for row in svc.image_ls(root)] == ["web:1.0"]


def test_rm_by_id_of_an_image_with_several_names_is_refused(root: Path) -> None:
    ref = add_image(root, "web:1.0", BUSY)
    ImageStore(root).add_image("web:stable", ImageStore(root).read_blob(ref.manifest_digest))
    r = run(root, "image", "rm", ref.id.removeprefix("sha256:")[:12])
    assert r.code == 1 and "several names (web:1.0, web:stable)" in r.err
    assert len(svc.image_ls(root)) == 2


def _used_by(image_id: str) -> Any:
    return lambda: [ContainerRecord(name="demo-web-1", project="demo", service="web", number=1,
                                    config_hash="h", image_id=image_id)]


def test_an_image_a_container_uses_cannot_be_removed(root: Path) -> None:
    ref = add_image(root, "web:1.0", BUSY)
    with pytest.raises(PermanentDriverError, match=r"used by container.*demo-web-1"):
        svc.image_rm(root, "web:1.0", in_use=_used_by(ref.id))
    assert [row.name for row in svc.image_ls(root)] == ["web:1.0"]
    # another name of the same content may go: the container's image keeps a name
    ImageStore(root).add_image("web:stable", ImageStore(root).read_blob(ref.manifest_digest))
    assert svc.image_rm(root, "web:stable", in_use=_used_by(ref.id)).untagged == ("web:stable",)


def test_prune_keeps_what_containers_use_even_without_a_name(root: Path) -> None:
    old = add_image(root, "web:1.0", BUSY)
    add_image(root, "web:1.0", {"new": b"n"})  # the name now points elsewhere
    pruned = svc.image_prune(root, in_use=_used_by(old.id))
    assert pruned.layers == 0 and pruned.blobs == 0
    assert old.layer_dirs[0].is_dir() and ImageStore(root).has_blob(old.manifest_digest)
    assert svc.image_prune(root).layers == 1
    assert not old.layer_dirs[0].exists()


def test_export_then_import_round_trips(root: Path, tmp_path: Path) -> None:
    ref = add_image(root, "web:1.0", BUSY, Cmd=["/bin/busybox"])
    r = run(root, "image", "export", "web:1.0", "web.tar", cwd=tmp_path)
    assert r.code == 0 and (tmp_path / "web.tar").is_file()
    with tarfile.open(tmp_path / "web.tar") as tf:
        assert {"oci-layout", "index.json"} <= set(tf.getnames())
    other = tmp_path / "other"
    r = run(other, "image", "import", str(tmp_path / "web.tar"))
    assert (r.code, r.out) == (0, f"Loaded image: web:1.0 ({ref.id.removeprefix('sha256:')[:12]})\n")
    r = run(other, "image", "import", str(tmp_path / "web.tar"), "--name", "copy:2")
    assert r.code == 0
    assert {row.name: row.id for row in svc.image_ls(other)} == {"web:1.0": ref.id, "copy:2": ref.id}


def test_import_of_a_docker_save_archive(root: Path, tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "save.tar", ["app:3", "app:latest"], {"app": b"#!"}, Cmd=["/app"])
    r = run(root, "image", "import", str(archive))
    assert r.code == 0
    assert [line.split(" (")[0] for line in r.out.splitlines()] == ["Loaded image: app:3",
                                                                   "Loaded image: app:latest"]
    assert json.loads(run(root, "image", "inspect", "app:3").out)[0]["Config"]["Cmd"] == ["/app"]


def test_import_of_a_missing_file_is_a_usage_error(root: Path, tmp_path: Path) -> None:
    r = run(root, "image", "import", str(tmp_path / "nothing.tar"))
    assert r.code == 2 and "nothing.tar: no such file" in r.err
    r = run(root, "image", "import", str(tmp_path))
    assert r.code == 2 and "is not a file" in r.err


@pytest.mark.parametrize("content", [b"not a tar at all" * 50, b""], ids=["garbage", "empty"])
def test_import_of_a_broken_archive_fails_and_changes_nothing(root: Path, tmp_path: Path,
                                                            content: bytes) -> None:
    add_image(root, "web:1.0", BUSY)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    bad = tmp_path / "bad.tar"
    bad.write_bytes(content)
    r = run(root, "image", "import", str(bad))
    assert r.code == 1
    assert r.err.startswith(f"error: {bad}")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_import_of_a_truncated_archive_fails_and_changes_nothing(root: Path, tmp_path: Path) -> None:
    archive = docker_archive(tmp_path / "save.tar", ["app:3"], {"app": b"x" * 20000})
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    r = run(root, "image", "import", str(archive))
    assert r.code == 1 and "error:" in r.err
    assert svc.image_ls(root) == []


def test_export_errors(root: Path, tmp_path: Path) -> None:
    add_image(root, "web:1.0", BUSY)
    r = run(root, "image", "export", "nope", str(tmp_path / "x.tar"))
    assert r.code == 1 and "no image 'nope:latest'" in r.err
    r = run(root, "image", "export", "web:1.0", str(tmp_path / "missing" / "x.tar"))
    assert r.code == 2 and "no such directory" in r.err
    assert not (tmp_path / "x.tar").exists()


def test_bootstrap_refuses_what_cannot_be_bootstrapped(root: Path) -> None:
    r = run(root, "image", "bootstrap", "nginx:1.25")
    assert r.code == 2
    assert "only Debian images" in r.err and "debian:bookworm-slim" in r.err


def test_bootstrap_passes_suite_slim_and_mirror(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake(store: ImageStore, name: str, **kw: Any) -> Any:
        calls.append({"name": name, **kw})
        return add_image(root, name, {"etc/debian_version": b"12\n"})

    monkeypatch.setattr(svc, "bootstrap_debian", fake)
    r = run(root, "image", "bootstrap", "debian:12-slim", "--mirror", "http://mirror.example/debian")
    assert r.code == 0 and r.out.startswith("Loaded image: debian:12-slim (")
    assert calls == [{"name": "debian:12-slim", "suite": "bookworm", "slim": True,
                      "mirror": "http://mirror.example/debian"}]


def test_data_root_comes_from_the_environment() -> None:
    assert svc.data_root({"STACKD_DATA_ROOT": "/srv/stackd"}) == Path("/srv/stackd")
    assert svc.data_root({}) == Path("/var/lib/stackd")
    assert svc.run_dir({"STACKD_RUN_DIR": "/tmp/r"}) == Path("/tmp/r")
    assert svc.run_dir({}) == Path("/run/stackd")


def test_docker_style_aliases(root: Path, tmp_path: Path) -> None:
    add_image(root, "web:1.0", BUSY)
    assert run(root, "image", "list").out == run(root, "image", "ls").out
    assert run(root, "image", "save", "web:1.0", str(tmp_path / "w.tar")).code == 0
    loaded = run(tmp_path / "other", "image", "load", str(tmp_path / "w.tar"))
    assert loaded.out.startswith("Loaded image: web:1.0")
    assert run(root, "image", "remove", "web:1.0").out.startswith("Untagged: web:1.0")
