"""The build cache on its own: entries are hits only while their layers exist, damaged entries
are misses, layers the store holds too are dropped; and where base images come from."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from stackd.drivers.builder import BuildCache, BuildEvent, DebianBootstrap, find_image
from stackd.drivers.builder.state import ConfigState, LayerDesc, StageState
from stackd.drivers.images.digests import digest_bytes
from stackd.drivers.images.store import ImageStore
from stackd.drivers.images.whiteouts import MemoryWhiteouts
from tests.unit.builder.fakes import FakeSource, image_of
from tests.unit.images.builders import E, Image, layer_tar

KEY = "sha256:" + "ab" * 32


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "data", whiteouts=MemoryWhiteouts())


def new_layer(tmp_path: Path, cache: BuildCache, content: bytes) -> LayerDesc:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("file")
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    tar = tmp_path / "layer.tar"
    tar.write_bytes(buf.getvalue())
    digest = digest_bytes(buf.getvalue())
    layer_dir = cache.add_layer(tar, digest)
    assert (layer_dir / "file").read_bytes() == content and not tar.exists()
    return LayerDesc.plain(digest, len(buf.getvalue()))


def test_an_entry_is_a_hit_while_its_layers_exist(tmp_path: Path, store: ImageStore) -> None:
    cache = BuildCache(store)
    layer = new_layer(tmp_path, cache, b"one")
    state = StageState(layers=(layer,), config=ConfigState(env=("A=1",)), created="t")
    cache.record(KEY, state)
    assert cache.lookup(KEY) == state
    assert cache.lookup("sha256:" + "cd" * 32) is None
    (cache.blobs_dir / layer.digest.removeprefix("sha256:")).unlink()
    assert cache.lookup(KEY) is None


def test_a_damaged_entry_is_a_miss(store: ImageStore) -> None:
    cache = BuildCache(store)
    cache.record(KEY, StageState())
    (cache.index_dir / f"{'ab' * 32}.json").write_text('{"layers": [')
    assert cache.lookup(KEY) is None


def test_layers_the_store_holds_are_dropped_from_the_cache(tmp_path: Path, store: ImageStore) -> None:
    cache = BuildCache(store)
    plain = Image([layer_tar([E("x", data=b"1")])], compress=False)  # blob digest = diff id, as builds make
    FakeSource({"base:1": plain}).provide(store, "base:1", lambda _e: None)
    ref = store.resolve("base:1")
    mine = new_layer(tmp_path, cache, b"mine")
    (cache.layers_dir / ref.layer_dirs[0].name).mkdir()  # a copy of a layer the store has too
    assert cache.prune_duplicates() == 1
    assert sorted(p.name for p in cache.layers_dir.iterdir()) == [mine.diff_id.removeprefix("sha256:")]


def test_base_images_come_from_the_store_first_then_from_sources(store: ImageStore) -> None:
    source = FakeSource({"base:1": image_of({"x": b"1"})})
    events: list[BuildEvent] = []
    made = find_image(store, "base:1", [source], events.append)
    again = find_image(store, "base:1", [source], events.append)
    assert made == again and source.provided == ["base:1"]
    assert [e.text for e in events] == ["making base:1"]


def test_the_debian_source_makes_only_debian_images(store: ImageStore) -> None:
    assert DebianBootstrap().provide(store, "alpine:3.19", lambda _e: None) is None
    assert DebianBootstrap().provide(store, "debian:12.5", lambda _e: None) is None
    assert store.names() == {}


def test_only_the_scratch_space_of_dead_builds_is_cleaned(store: ImageStore) -> None:
    cache = BuildCache(store)
    unmounted: list[Path] = []
    with cache.building() as live:
        dead = cache.work_dir / "build.tmp-dead"
        (dead / "rootfs").mkdir(parents=True)
        assert cache.clean_stale(unmounted.append) == [dead]
        assert live.is_dir() and not dead.exists() and unmounted == [dead]
    assert list(cache.work_dir.iterdir()) == []
