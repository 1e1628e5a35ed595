"""Importing OCI-layout and docker save archives built in the test, and exporting them again."""

from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path

import pytest

from stackd.drivers.images.archive import export_archive, import_archive
from stackd.drivers.images.errors import ArchiveError
from stackd.drivers.images.store import ImageStore
from stackd.drivers.images.whiteouts import MemoryWhiteouts
from tests.unit.images.builders import (
    E,
    Image,
    canonical,
    docker_archive,
    layer_tar,
    oci_archive,
    sha,
    write_tar,
)
from tests.unit.images.test_image_store import files_of

BASE = layer_tar([
    E("etc", kind="dir"), E("etc/hosts", data=b"127.0.0.1 localhost\n"), E("etc/motd", data=b"hi"),
    E("var/cache/apt/pkg", data=b"old"), E("bin", kind="symlink", target="usr/bin"),
    E("usr/bin/sh", data=b"sh", mode=0o755),
])
TOP = layer_tar([
    E("etc/.wh.motd"), E("var/cache/apt", kind="dir"), E("var/cache/apt/.wh..wh..opq"),
    E("var/cache/apt/new", data=b"new"), E("srv/app", data=b"app", mode=0o750),
])
IMAGE = Image([BASE, TOP], config={"Cmd": ["/srv/app"], "Env": ["PATH=/usr/bin"]})


@pytest.fixture
def wh() -> MemoryWhiteouts:
    return MemoryWhiteouts()


@pytest.fixture
def store(tmp_path: Path, wh: MemoryWhiteouts) -> ImageStore:
    return ImageStore(tmp_path / "root", whiteouts=wh)


def check_image(store: ImageStore, wh: MemoryWhiteouts, name: str, image: Image) -> None:
    ref = store.resolve(name)
    assert ref.id == sha(image.config_bytes)
    assert ref.config.cmd == ("/srv/app",)
    base, top = ref.layer_dirs
    assert (base / "etc/motd").read_bytes() == b"hi"
    assert (top / "srv/app").read_bytes() == b"app"
    motd = top / "etc/motd"
    assert wh.is_whiteout(motd, motd.lstat())
    assert wh.is_opaque(top / "var/cache/apt")
    assert (top / "var/cache/apt/new").read_bytes() == b"new"


@pytest.mark.parametrize("tar_gz", [False, True])
def test_import_oci_layout(tmp_path: Path, store: ImageStore, wh: MemoryWhiteouts, tar_gz: bool) -> None:
    archive = oci_archive(tmp_path / "img.tar", [("example/app:1.0", IMAGE)], tar_gz=tar_gz)
    refs = import_archive(store, archive)
    assert [r.name for r in refs] == ["example/app:1.0"]
    assert refs[0].manifest_digest == sha(IMAGE.manifest)  # kept as it was
    check_image(store, wh, "example/app:1.0", IMAGE)


def test_import_oci_layout_with_several_images(tmp_path: Path, store: ImageStore) -> None:
    other = Image([BASE], config={"Cmd": ["/bin/sh"]})
    archive = oci_archive(tmp_path / "img.tar", [("app", IMAGE), ("base:3", other)])
    assert sorted(r.name for r in import_archive(store, archive)) == ["app:latest", "base:3"]
    assert store.resolve("base:3").layer_dirs[0] == store.resolve("app").layer_dirs[0]


def test_a_name_is_needed_when_the_archive_has_none(tmp_path: Path, store: ImageStore) -> None:
    archive = oci_archive(tmp_path / "img.tar", [(None, IMAGE)])
    with pytest.raises(ArchiveError, match="has no name"):
        import_archive(store, archive)
    assert [r.name for r in import_archive(store, archive, name="given")] == ["given:latest"]
    two = oci_archive(tmp_path / "two.tar", [("a", IMAGE), ("b", Image([BASE]))])
    with pytest.raises(ArchiveError, match="holds 2 images"):
        import_archive(store, two, name="x")


@pytest.mark.parametrize("new_layout", [False, True])
def test_import_docker_save(tmp_path: Path, store: ImageStore, wh: MemoryWhiteouts, new_layout: bool) -> None:
    archive = docker_archive(tmp_path / "save.tar", ["example/app:1.0", "example/app:latest"], IMAGE,
                             new_layout=new_layout)
    refs = import_archive(store, archive)
    assert [r.name for r in refs] == ["example/app:1.0", "example/app:latest"]
    assert refs[0].manifest_digest == refs[1].manifest_digest
    check_image(store, wh, "example/app", IMAGE)
    assert store.inspect("example/app")["Size"] == len(BASE) + len(TOP)  # docker save layers are plain tars


def test_docker_save_without_tags_takes_the_given_name(tmp_path: Path, store: ImageStore,
                                                       wh: MemoryWhiteouts) -> None:
    archive = docker_archive(tmp_path / "save.tar", None, IMAGE)
    with pytest.raises(ArchiveError, match="no name"):
        import_archive(store, archive)
    import_archive(store, archive, name="mine:v2")
    check_image(store, wh, "mine:v2", IMAGE)


def rewrite(archive: Path, out: Path, change: dict[str, bytes]) -> Path:
    """A copy of ``archive`` with some members' content replaced."""
    files = []
    with tarfile.open(archive) as tf:
        for m in tf.getmembers():
            f = tf.extractfile(m)
            assert f is not None
            files.append((m.name, change.get(m.name, f.read())))
    return write_tar(out, files)


def test_tampered_layer_in_oci_layout_changes_nothing(tmp_path: Path, store: ImageStore) -> None:
    import_archive(store, oci_archive(tmp_path / "base.tar", [("base", Image([BASE]))]))
    before = files_of(store.dir)
    good = oci_archive(tmp_path / "img.tar", [("app", IMAGE)])
    top_blob = f"blobs/sha256/{sha(IMAGE.blobs[1])[7:]}"
    bad = rewrite(good, tmp_path / "bad.tar", {top_blob: IMAGE.blobs[0]})
    with pytest.raises(ArchiveError, match=r"bad\.tar: layer 1 .* does not match its digest"):
        import_archive(store, bad)
    assert files_of(store.dir) == before


def test_tampered_manifest_or_config_is_refused(tmp_path: Path, store: ImageStore) -> None:
    good = oci_archive(tmp_path / "img.tar", [("app", IMAGE)])
    config_blob = f"blobs/sha256/{sha(IMAGE.config_bytes)[7:]}"
    evil = IMAGE.config_bytes.replace(b"/srv/app", b"/srv/evil")
    bad = rewrite(good, tmp_path / "bad.tar", {config_blob: evil})
    with pytest.raises(ArchiveError, match=r"image config .* does not match its digest"):
        import_archive(store, bad)
    assert not store.dir.exists() or files_of(store.dir).get("index.json") is None


def test_tampered_docker_layer_is_caught_by_its_diff_id(tmp_path: Path, store: ImageStore) -> None:
    archive = docker_archive(tmp_path / "save.tar", ["app"], IMAGE)
    with tarfile.open(archive) as tf:
        layers = [n for n in tf.getnames() if n.endswith("layer.tar")]
        layer = next(n for n in layers if tf.extractfile(n).read() == TOP)  # type: ignore[union-attr]
    evil = layer_tar([E("srv/app", data=b"evil")])
    bad = rewrite(archive, tmp_path / "bad.tar", {layer: evil})
    with pytest.raises(ArchiveError, match=r"bad\.tar: layer 1 .* the image config says"):
        import_archive(store, bad)
    assert files_of(store.dir) == {"blobs": None, "blobs/sha256": None, "layers": None,
                                   "oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}


def test_docker_config_not_matching_its_file_name(tmp_path: Path, store: ImageStore) -> None:
    archive = docker_archive(tmp_path / "save.tar", ["app"], IMAGE)
    name = f"{sha(IMAGE.config_bytes)[7:]}.json"
    bad = rewrite(archive, tmp_path / "bad.tar", {name: IMAGE.config_bytes + b"\n"})
    words = re.escape(f"image config of manifest.json[0] ({name}) does not match")
    with pytest.raises(ArchiveError, match=words):
        import_archive(store, bad)


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_archives_change_nothing(tmp_path: Path, store: ImageStore, fraction: float) -> None:
    import_archive(store, oci_archive(tmp_path / "base.tar", [("base", Image([BASE]))]))
    before = files_of(store.dir)
    big = Image([BASE, layer_tar([E("blob", data=bytes(range(256)) * 400)])], compress=False)
    data = docker_archive(tmp_path / "save.tar", ["app"], big).read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ArchiveError, match=r"cut\.tar"):
        import_archive(store, cut)
    assert files_of(store.dir) == before


def test_not_an_archive(tmp_path: Path, store: ImageStore) -> None:
    (tmp_path / "junk").write_bytes(b"no tar here" * 100)
    with pytest.raises(ArchiveError, match="not a tar archive"):
        import_archive(store, tmp_path / "junk")
    with pytest.raises(ArchiveError, match="no such file"):
        import_archive(store, tmp_path / "missing.tar")
    other = write_tar(tmp_path / "other.tar", [("README", b"hello")])
    with pytest.raises(ArchiveError, match="neither an OCI image layout"):
        import_archive(store, other)


def test_multi_platform_index_picks_this_machine(tmp_path: Path, store: ImageStore,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    amd, arm = Image([BASE], config={"Cmd": ["amd"]}), Image([BASE], config={"Cmd": ["arm"]})
    nested = canonical({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [
                            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                             "digest": sha(i.manifest), "size": len(i.manifest),
                             "platform": {"os": "linux", "architecture": arch}}
                            for arch, i in (("amd64", amd), ("arm64", arm))]})
    index = canonical({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(nested), "size": len(nested),
         "annotations": {"org.opencontainers.image.ref.name": "multi:1"}}]})
    files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
             (f"blobs/sha256/{sha(nested)[7:]}", nested)]
    for image in (amd, arm):
        blobs = (image.manifest, image.config_bytes, *image.blobs)
        files += [(f"blobs/sha256/{sha(b)[7:]}", b) for b in blobs]
    import_archive(store, write_tar(tmp_path / "multi.tar", files))
    assert store.resolve("multi:1").config.cmd == ("arm",)


def test_export_then_import_round_trip(tmp_path: Path, store: ImageStore) -> None:
    import_archive(store, docker_archive(tmp_path / "save.tar", ["example/app:1.0"], IMAGE))
    out = export_archive(store, "example/app:1.0", tmp_path / "out.tar")
    with tarfile.open(out) as tf:
        names = tf.getnames()
        index = json.loads(tf.extractfile("index.json").read())  # type: ignore[union-attr]
        layout = json.loads(tf.extractfile("oci-layout").read())  # type: ignore[union-attr]
    assert layout == {"imageLayoutVersion": "1.0.0"}
    (desc,) = index["manifests"]
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == "example/app:1.0"
    assert desc["digest"] == store.resolve("example/app:1.0").manifest_digest
    assert all(n in ("oci-layout", "index.json", "blobs", "blobs/sha256") or n.startswith("blobs/sha256/")
               for n in names)
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []

    wh2 = MemoryWhiteouts()
    fresh = ImageStore(tmp_path / "fresh", whiteouts=wh2)
    (ref,) = import_archive(fresh, out)
    original = store.resolve("example/app:1.0")
    assert (ref.name, ref.manifest_digest, ref.id) == (original.name, original.manifest_digest, original.id)
    assert fresh.inspect(ref.name) == store.inspect(ref.name)
    check_image(fresh, wh2, ref.name, IMAGE)


def linked_docker_archive(path: Path, target: str) -> Path:
    """An old-style docker save archive whose second layer is a symlink (docker writes one when
    two layers have the same content)."""
    image = Image([BASE, BASE], compress=False)
    config_name = f"{sha(image.config_bytes)[7:]}.json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": ["dup:1"],
                            "Layers": ["a/layer.tar", "b/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tf:
        files = (("a/layer.tar", BASE), (config_name, image.config_bytes), ("manifest.json", manifest))
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("b/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, target
        tf.addfile(link)
    return path


def test_docker_save_with_a_symlinked_layer(tmp_path: Path, store: ImageStore) -> None:
    (ref,) = import_archive(store, linked_docker_archive(tmp_path / "dup.tar", "../a/layer.tar"))
    assert ref.layer_dirs[0] == ref.layer_dirs[1]
    assert ref.overlay_lowerdirs() == (ref.layer_dirs[0],)
    assert (ref.layer_dirs[0] / "etc/hosts").is_file()
    with pytest.raises(ArchiveError, match=r"links to '\.\./c/layer\.tar', which is missing"):
        import_archive(store, linked_docker_archive(tmp_path / "dangling.tar", "../c/layer.tar"))
