"""``infos`` of one project with the driver's ``InfoCache``: the records of other projects are
not read again, a new container is found, a removed one goes, and without the cache every file
is read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stackd.drivers.containers import listing
from stackd.drivers.containers.info import ContainerInfo, write_info
from stackd.drivers.containers.paths import HostLayout


def _put(layout: HostLayout, name: str, project: str) -> None:
    path = layout.container(name).info
    path.parent.mkdir(parents=True, exist_ok=True)
    write_info(path, ContainerInfo(name=name, project=project, service="s", number=1, image="i",
                                   image_id="sha256:" + "0" * 64, cgroups_path="/x", hostname=name))


def test_a_project_reads_only_its_own_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = HostLayout(tmp_path / "data", tmp_path / "run")
    for p in ("a", "b", "c"):
        for n in (1, 2):
            _put(layout, f"{p}-s-{n}", p)
    cache = listing.InfoCache()
    assert [i.name for i in listing.infos(layout, None, cache)] == [
        "a-s-1", "a-s-2", "b-s-1", "b-s-2", "c-s-1", "c-s-2"]
    read: list[str] = []
    real = cache.read

    def counting(path: Path) -> ContainerInfo | None:
        read.append(path.parent.name)
        return real(path)

    monkeypatch.setattr(cache, "read", counting)
    assert [i.name for i in listing.infos(layout, "b", cache)] == ["b-s-1", "b-s-2"]
    assert read == ["b-s-1", "b-s-2"]
    _put(layout, "a-s-0", "b")  # a new entry: unknown until read, then kept as b's
    read.clear()
    assert [i.name for i in listing.infos(layout, "b", cache)] == ["a-s-0", "b-s-1", "b-s-2"]
    read.clear()
    assert [i.name for i in listing.infos(layout, "a", cache)] == ["a-s-1", "a-s-2"]
    assert read == ["a-s-1", "a-s-2"]
    shutil.rmtree(layout.container("b-s-1").info.parent)
    assert [i.name for i in listing.infos(layout, "b", cache)] == ["a-s-0", "b-s-2"]
    assert cache.names() == {"a-s-0", "a-s-1", "a-s-2", "b-s-2", "c-s-1", "c-s-2"}
    assert [i.name for i in listing.infos(layout, "c")] == ["c-s-1", "c-s-2"]  # no cache


def test_an_index_made_from_an_older_listing_is_not_used_for_a_newer_one(tmp_path: Path) -> None:
    """Passes of several projects share the cache: one may index the listing it had while
    another lists the directory again. A newer listing never goes by the older index."""
    layout = HostLayout(tmp_path / "data", tmp_path / "run")
    _put(layout, "a-s-1", "a")
    cache = listing.InfoCache()
    assert [i.name for i in listing.infos(layout, None, cache)] == ["a-s-1"]
    old = ["a-s-1"]
    assert cache.candidates(old, "a") == ["a-s-1"]  # indexed from the older listing
    assert cache.candidates(["a-s-1", "a-s-2"], "a") == ["a-s-1", "a-s-2"]  # a newer one: made again
