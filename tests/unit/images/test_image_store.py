"""The image store on a temp directory: blobs, atomic adds, names, gc, inspect."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from stackd.drivers.images import store as store_module
from stackd.drivers.images.errors import ImageError, ImageNotFoundError
from stackd.drivers.images.store import ImageStore
from stackd.drivers.images.whiteouts import MemoryWhiteouts
from tests.unit.images.builders import E, Image, layer_tar, sha

BASE = layer_tar([E("etc", kind="dir"), E("etc/os-release", data=b"ID=test\n"), E("bin/sh", data=b"sh")])
APP = layer_tar([E("etc/.wh.os-release"), E("app/main", data=b"run", mode=0o755)])


def files_of(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its content (None for directories and other non-files)."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        if p.name == "lock":
            continue
        out[str(p.relative_to(root))] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return out


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "root", whiteouts=MemoryWhiteouts())


def add(store: ImageStore, name: str, image: Image) -> None:
    store.add_image(name, image.manifest, image.config_bytes, [io.BytesIO(b) for b in image.blobs])


def test_blobs_are_content_addressed_and_checked(store: ImageStore) -> None:
    digest = store.put_blob(io.BytesIO(b"hello"))
    assert digest == sha(b"hello")
    assert store.blob_path(digest) == store.dir / "blobs/sha256" / digest[7:]
    with store.get_blob(digest) as f:
        assert f.read() == b"hello"
    assert store.put_blob(io.BytesIO(b"hello"), expected=digest, size=5) == digest
    with pytest.raises(ImageError, match="does not match its digest"):
        store.put_blob(io.BytesIO(b"hellO"), expected=digest)
    with pytest.raises(ImageError, match="expected 4"):
        store.put_blob(io.BytesIO(b"hello"), expected=digest, size=4)
    with pytest.raises(ImageError, match="only sha256"):
        store.put_blob(io.BytesIO(b"x"), expected="sha512:" + "a" * 128)
    with pytest.raises(ImageError, match="not a digest"):
        store.get_blob("sha256:../../etc/passwd")
    assert sorted(os.listdir(store.blobs_dir)) == [digest[7:]]  # no temporary file left


def test_add_and_resolve(store: ImageStore) -> None:
    image = Image([BASE, APP], config={"Env": ["A=1"], "Entrypoint": ["/app/main"], "User": "1000",
                                       "ExposedPorts": {"8080/tcp": {}}, "Labels": {"k": "v"}})
    add(store, "example/app", image)
    ref = store.resolve("example/app")
    assert ref.name == "example/app:latest"
    assert ref.manifest_digest == sha(image.manifest)
    assert ref.id == sha(image.config_bytes)
    assert ref.layer_dirs == (store.layers_dir / sha(BASE)[7:], store.layers_dir / sha(APP)[7:])
    assert ref.overlay_lowerdirs() == tuple(reversed(ref.layer_dirs))
    assert (ref.layer_dirs[0] / "etc/os-release").read_bytes() == b"ID=test\n"
    assert (ref.layer_dirs[1] / "app/main").read_bytes() == b"run"
    cfg = ref.config
    assert (cfg.env, cfg.entrypoint, cfg.cmd, cfg.user) == (("A=1",), ("/app/main",), None, "1000")
    assert cfg.exposed_ports == ("8080/tcp",)
    assert dict(cfg.labels) == {"k": "v"}
    assert store.resolve(ref.id) == ref  # by image id too
    assert store.resolve("example/app:latest") == ref


def test_layers_are_shared_between_images(store: ImageStore) -> None:
    add(store, "one", Image([BASE]))
    add(store, "two", Image([BASE, APP], config={"Cmd": ["x"]}))
    assert store.resolve("one").layer_dirs[0] == store.resolve("two").layer_dirs[0]
    assert len(os.listdir(store.layers_dir)) == 2


def test_a_blob_already_in_the_store_need_not_be_given(store: ImageStore) -> None:
    image = Image([BASE, APP])
    add(store, "one", image)
    store.add_image("again", image.manifest)
    assert store.resolve("again").layer_dirs == store.resolve("one").layer_dirs


def test_list_and_inspect(store: ImageStore) -> None:
    image = Image([BASE], compress=False, config={
        "Cmd": ["sh"], "WorkingDir": "/srv", "StopSignal": "SIGQUIT", "Volumes": {"/data": {}},
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 3}})
    add(store, "b/img:2", image)
    add(store, "a/img:1", image)
    listed = store.list()
    assert [s.name for s in listed] == ["a/img:1", "b/img:2"]
    assert listed[0].size == len(BASE) and listed[0].created == "2024-01-02T03:04:05Z"
    info = store.inspect("a/img:1")
    assert info["Id"] == sha(image.config_bytes)
    assert info["RepoTags"] == ["a/img:1", "b/img:2"]
    assert info["RootFS"] == {"Type": "layers", "Layers": [sha(BASE)]}
    assert info["Size"] == len(BASE)
    assert info["Config"] == {
        "Env": [], "Cmd": ["sh"], "Entrypoint": None, "WorkingDir": "/srv", "User": "",
        "ExposedPorts": None, "Volumes": {"/data": {}},
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 3},
        "StopSignal": "SIGQUIT", "Labels": None}


def test_unknown_and_invalid_names(store: ImageStore) -> None:
    with pytest.raises(ImageNotFoundError, match="'nothing:latest'"):
        store.resolve("nothing")
    with pytest.raises(ImageError, match="lowercase"):
        add(store, "Upper/Case", Image([BASE]))
    with pytest.raises(ImageError, match="by digest"):
        store.resolve("app@sha256:" + "0" * 64)


def test_wrong_layer_content_leaves_the_store_unchanged(store: ImageStore) -> None:
    add(store, "kept", Image([BASE]))
    before = files_of(store.dir)
    image = Image([BASE, APP])
    with pytest.raises(ImageError, match="does not match its digest"):
        store.add_image("broken", image.manifest, image.config_bytes,
                        [io.BytesIO(image.blobs[1]), io.BytesIO(image.blobs[0])])
    assert files_of(store.dir) == before
    assert [s.name for s in store.list()] == ["kept:latest"]


def test_config_lying_about_diff_ids_leaves_the_store_unchanged(store: ImageStore) -> None:
    add(store, "kept", Image([BASE]))
    before = files_of(store.dir)
    liar = Image([APP])
    config = liar.config_bytes.replace(sha(APP).encode(), sha(b"other").encode())
    manifest = liar.manifest.replace(sha(liar.config_bytes).encode(), sha(config).encode()) \
        .replace(f'"size":{len(liar.config_bytes)}'.encode(), f'"size":{len(config)}'.encode())
    with pytest.raises(ImageError, match="image config says"):
        store.add_image("liar", manifest, config, [io.BytesIO(b) for b in liar.blobs])
    assert files_of(store.dir) == before


def test_config_not_matching_the_manifest_is_refused(store: ImageStore) -> None:
    image = Image([BASE])
    with pytest.raises(ImageError, match="does not match the manifest"):
        store.add_image("x", image.manifest, image.config_bytes + b" ", [io.BytesIO(image.blobs[0])])
    with pytest.raises(ImageError, match="neither given nor in the image store"):
        store.add_image("x", image.manifest, image.config_bytes, [None])


def test_a_crash_leaves_no_half_image_and_gc_cleans_up(store: ImageStore,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    add(store, "kept", Image([BASE]))
    before = files_of(store.dir)

    def crash(*_args: object, **_kw: object) -> None:
        raise KeyboardInterrupt  # the process dies: no cleanup runs

    image = Image([BASE, APP])
    monkeypatch.setattr(store_module, "remove_tree", lambda _p: None)
    monkeypatch.setattr(store, "_write_index", crash)
    with pytest.raises(KeyboardInterrupt):
        add(store, "half", image)
    monkeypatch.undo()
    (store.layers_dir / (sha(b"x")[7:] + ".tmp-dead01")).mkdir()  # an interrupted unpack
    (store.blobs_dir / "incoming.tmp-dead02").write_bytes(b"partial")  # an interrupted blob write

    assert [s.name for s in store.list()] == ["kept:latest"]
    with pytest.raises(ImageNotFoundError):
        store.resolve("half")
    report = store.gc()
    assert files_of(store.dir) == before
    assert sorted(report.temporary) == ["blobs/sha256/incoming.tmp-dead02",
                                        f"layers/{sha(b'x')[7:]}.tmp-dead01"]
    assert sha(APP) in report.layers
    assert sha(image.manifest) in report.blobs
    assert store.resolve("kept").layer_dirs[0].is_dir()


def test_remove_then_gc_frees_only_unshared_content(store: ImageStore) -> None:
    one, two = Image([BASE]), Image([BASE, APP])
    add(store, "one", one)
    add(store, "two", two)
    store.remove("two")
    with pytest.raises(ImageNotFoundError):
        store.resolve("two")
    assert (store.layers_dir / sha(APP)[7:]).is_dir()  # content stays until gc
    report = store.gc()
    assert report.layers == (sha(APP),)
    assert set(report.blobs) == {sha(two.manifest), sha(two.config_bytes), sha(two.blobs[1])}
    assert store.resolve("one").layer_dirs == (store.layers_dir / sha(BASE)[7:],)
    assert store.gc() == type(report)()
    with pytest.raises(ImageNotFoundError):
        store.remove("two")


def test_gc_keeps_manifests_it_is_told_to_keep(store: ImageStore) -> None:
    image = Image([APP])
    add(store, "app", image)
    store.remove("app")
    assert store.gc(keep=[sha(image.manifest)]).layers == ()
    assert (store.layers_dir / sha(APP)[7:]).is_dir()
    assert store.gc().layers == (sha(APP),)


def test_damaged_images_are_reported(store: ImageStore) -> None:
    add(store, "app", Image([BASE]))
    layer = store.resolve("app").layer_dirs[0]
    layer.rename(layer.with_name("moved"))
    with pytest.raises(ImageError, match="damaged"):
        store.resolve("app")
    config = store.blob_path(store.list()[0].id)
    config.write_bytes(config.read_bytes() + b" ")
    with pytest.raises(ImageError, match="corrupt"):
        store.resolve("app")


def test_index_is_an_oci_image_layout(store: ImageStore) -> None:
    image = Image([BASE])
    add(store, "reg.example:5000/team/app:v1", image)
    assert (store.dir / "oci-layout").read_text() == '{"imageLayoutVersion":"1.0.0"}'
    index = (store.dir / "index.json").read_text()
    assert '"org.opencontainers.image.ref.name":"reg.example:5000/team/app:v1"' in index
    assert sha(image.manifest) in index
