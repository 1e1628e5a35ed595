"""The volumes driver on a temp directory: making, labels, listing, copy-up, removal, leftovers.

Ownership of copied files is checked here only when the tests run as root; the host tests check
it (and xattrs that need root, device nodes, overlay sources) as root.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stackd import labels
from stackd.drivers.volumes import (
    MountUse,
    VolumeDriver,
    VolumeError,
    VolumeInUseError,
    VolumeNotFoundError,
)
from stackd.drivers.volumes import driver as driver_module

T0 = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
def vols(tmp_path: Path) -> VolumeDriver:
    return VolumeDriver(tmp_path / "volumes", clock=lambda: T0, proc=tmp_path / "no-proc")


def _tree(root: Path) -> dict[str, tuple[str, int, str]]:
    """path → (kind, mode, content or link target) of everything under ``root``."""
    out: dict[str, tuple[str, int, str]] = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(top, name)
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), "")
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_text())
    return out


def _image_dir(tmp_path: Path) -> Path:
    src = tmp_path / "rootfs" / "var" / "lib" / "app"
    (src / "conf").mkdir(parents=True)
    (src / "conf" / "app.ini").write_text("[a]\nb=1\n")
    (src / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "run.sh", 0o750)
    os.chmod(src / "conf", 0o700)
    (src / "current").symlink_to("conf/app.ini")
    (src / "dangling").symlink_to("/does/not/exist")
    os.link(src / "run.sh", src / "run-again.sh")
    os.chmod(src, 0o1777)
    os.utime(src / "conf" / "app.ini", ns=(1_000_000_000_123_456_789, 1_000_000_000_123_456_789))
    return src


# ------------------------------------------------------------------------------------ making


def test_ensure_makes_the_layout_and_returns_the_mount_directory(vols: VolumeDriver) -> None:
    data = vols.ensure("demo_db", {labels.PROJECT: "demo", labels.VOLUME: "db"})
    assert data == vols.root / "demo_db" / "_data" == vols.path("demo_db")
    assert data.is_dir() and stat.S_IMODE(data.stat().st_mode) == 0o755
    assert stat.S_IMODE(vols.root.stat().st_mode) == 0o700
    meta = json.loads((vols.root / "demo_db" / "volume.json").read_text())
    assert meta == {"name": "demo_db", "labels": {labels.PROJECT: "demo", labels.VOLUME: "db"},
                    "created_at": T0.isoformat(), "populating": False}
    assert sorted(os.listdir(vols.root)) == ["demo_db"]  # no temporary left


def test_ensure_is_idempotent_and_never_relabels(vols: VolumeDriver) -> None:
    vols.ensure("v1", {"a": "1"})
    (vols.path("v1") / "keep").write_text("data")
    assert vols.ensure("v1", {"a": "2"}) == vols.path("v1")
    info = vols.info("v1")
    assert info is not None and info.labels == {"a": "1"}
    assert (vols.path("v1") / "keep").read_text() == "data"


def test_ensure_completes_a_hand_made_directory(vols: VolumeDriver) -> None:
    (vols.root / "manual").mkdir(parents=True)
    vols.ensure("manual", {"x": "y"})
    info = vols.info("manual")
    assert info is not None and info.labels == {"x": "y"} and info.path.is_dir()


def test_concurrent_ensure_makes_one_volume(vols: VolumeDriver) -> None:
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(vols.ensure("shared", {}))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert paths == [vols.path("shared")] * 8
    assert os.listdir(vols.root) == ["shared"]


@pytest.mark.parametrize("name", ["..", "../x", "a/b", ".tmp-x", "x"])
def test_unsafe_names_are_refused_everywhere(vols: VolumeDriver, name: str, tmp_path: Path) -> None:
    for call in (lambda: vols.ensure(name, {}), lambda: vols.path(name), lambda: vols.remove(name),
                 lambda: vols.populate_from(name, tmp_path), lambda: vols.info(name)):
        with pytest.raises(VolumeError, match="invalid volume name"):
            call()
    assert not vols.root.exists() or os.listdir(vols.root) == []


# ----------------------------------------------------------------------------------- listing


def test_list_filters_by_project_prefix_and_labels(vols: VolumeDriver) -> None:
    vols.ensure("demo_db", {labels.PROJECT: "demo", "tier": "data"})
    vols.ensure("demo_cache", {labels.PROJECT: "demo"})
    vols.ensure("other_db", {labels.PROJECT: "other", "tier": "data"})
    (vols.root / ".tmp-123").mkdir()
    (vols.root / "stray-file").write_text("")
    assert [v.name for v in vols.list()] == ["demo_cache", "demo_db", "other_db"]
    assert [v.name for v in vols.list(project="demo")] == ["demo_cache", "demo_db"]
    assert [v.name for v in vols.list(labels={"tier": "data"})] == ["demo_db", "other_db"]
    assert [v.name for v in vols.list(prefix="demo_", labels={"tier": "data"})] == ["demo_db"]
    assert vols.list(project="nobody") == []
    assert vols.list()[0].created_at == T0


def test_list_of_a_missing_root_is_empty(tmp_path: Path) -> None:
    assert VolumeDriver(tmp_path / "nothing").list() == []


def test_a_directory_with_broken_metadata_is_listed_without_labels(vols: VolumeDriver) -> None:
    vols.ensure("vol1", {"a": "b"})
    (vols.root / "vol1" / "volume.json").write_text("{not json")
    (info,) = vols.list()
    assert (info.name, dict(info.labels), info.created_at) == ("vol1", {}, None)


# ----------------------------------------------------------------------------------- copy-up


def test_populate_copies_the_image_content_faithfully(vols: VolumeDriver, tmp_path: Path) -> None:
    src = _image_dir(tmp_path)
    os.setxattr(src / "run.sh", "user.stackd-test", b"kept")
    data = vols.ensure("app", {})
    assert vols.populate_from("app", src) is True
    assert _tree(data) == _tree(src)
    assert stat.S_IMODE(data.stat().st_mode) == 0o1777  # the volume takes the directory's mode
    assert os.getxattr(data / "run.sh", "user.stackd-test") == b"kept"
    assert (data / "run.sh").stat().st_ino == (data / "run-again.sh").stat().st_ino
    assert (data / "conf" / "app.ini").stat().st_mtime_ns == 1_000_000_000_123_456_789
    if os.geteuid() == 0:
        os.chown(src / "conf" / "app.ini", 1234, 5678)
        os.lchown(src / "current", 4321, 8765)
        os.chown(src, 999, 998)
        fresh = vols.ensure("app2", {})
        vols.populate_from("app2", src)
        assert (fresh / "conf" / "app.ini").stat()[4:6] == (1234, 5678)
        assert os.lstat(fresh / "current")[4:6] == (4321, 8765)
        assert fresh.stat()[4:6] == (999, 998)
    meta = json.loads((vols.root / "app" / "volume.json").read_text())
    assert meta["populating"] is False


def test_populate_leaves_a_volume_that_holds_anything(vols: VolumeDriver, tmp_path: Path) -> None:
    src = _image_dir(tmp_path)
    data = vols.ensure("app", {})
    (data / "mine").write_text("user data")
    assert vols.populate_from("app", src) is False
    assert os.listdir(data) == ["mine"]


def test_populate_runs_once(vols: VolumeDriver, tmp_path: Path) -> None:
    src = _image_dir(tmp_path)
    vols.ensure("app", {})
    assert vols.populate_from("app", src) is True
    (vols.path("app") / "run.sh").write_text("changed by the container")
    assert vols.populate_from("app", src) is False
    assert (vols.path("app") / "run.sh").read_text() == "changed by the container"


def test_concurrent_populate_copies_once(vols: VolumeDriver, tmp_path: Path) -> None:
    src = _image_dir(tmp_path)
    vols.ensure("app", {})
    results: list[bool] = []
    def fill() -> None:
        results.append(vols.populate_from("app", src))

    threads = [threading.Thread(target=fill) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    assert _tree(vols.path("app")) == _tree(src)


def test_populate_without_a_source_directory_copies_nothing(vols: VolumeDriver, tmp_path: Path) -> None:
    vols.ensure("app", {})
    assert vols.populate_from("app", tmp_path / "missing") is False
    (tmp_path / "a-file").write_text("x")
    assert vols.populate_from("app", tmp_path / "a-file") is False
    assert os.listdir(vols.path("app")) == []


def test_populate_refuses_a_symlinked_source(vols: VolumeDriver, tmp_path: Path) -> None:
    src = _image_dir(tmp_path)
    (tmp_path / "link").symlink_to(src)
    vols.ensure("app", {})
    with pytest.raises(VolumeError, match="symlink"):
        vols.populate_from("app", tmp_path / "link")


def test_populate_of_a_missing_volume(vols: VolumeDriver, tmp_path: Path) -> None:
    with pytest.raises(VolumeNotFoundError):
        vols.populate_from("nope", tmp_path)


def test_a_copy_cut_short_is_wiped_and_redone(vols: VolumeDriver, tmp_path: Path) -> None:
    src = _image_dir(tmp_path)
    vols.ensure("app", {"k": "v"})
    meta_path = vols.root / "app" / "volume.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "populating": True}))  # as a crash mid-copy leaves it
    (vols.path("app") / "half-copied").write_text("partial")
    assert vols.populate_from("app", src) is True
    assert _tree(vols.path("app")) == _tree(src)
    after = json.loads(meta_path.read_text())
    assert after["populating"] is False and after["labels"] == {"k": "v"}


def test_a_failed_copy_leaves_the_volume_marked_for_a_redo(vols: VolumeDriver, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    src = _image_dir(tmp_path)
    vols.ensure("app", {})

    def broken(source: Path, target: Path) -> None:
        (target / "partial").write_text("x")
        raise VolumeError("disk full")

    monkeypatch.setattr(driver_module, "copy_contents", broken)
    with pytest.raises(VolumeError, match="disk full"):
        vols.populate_from("app", src)
    monkeypatch.undo()
    assert vols.populate_from("app", src) is True
    assert _tree(vols.path("app")) == _tree(src)


# ---------------------------------------------------------------------------------- removing


def test_remove_deletes_everything_and_absent_is_fine(vols: VolumeDriver, tmp_path: Path) -> None:
    vols.ensure("app", {})
    vols.populate_from("app", _image_dir(tmp_path))
    ro = vols.path("app") / "conf"
    os.chmod(ro, 0o500)
    assert vols.remove("app") is True
    assert not (vols.root / "app").exists() and os.listdir(vols.root) == []
    assert vols.remove("app") is False
    assert vols.info("app") is None and not vols.exists("app")


def test_remove_refuses_while_mounted(vols: VolumeDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    vols.ensure("app", {})
    monkeypatch.setattr(driver_module, "find_uses",
                        lambda d, proc: [MountUse(4242, "/data"), MountUse(4343, "/srv")])
    with pytest.raises(VolumeInUseError, match=r"mounted at /data by process 4242 and 1 more"):
        vols.remove("app")
    assert vols.exists("app")
    assert vols.users("app") == [MountUse(4242, "/data"), MountUse(4343, "/srv")]


def test_sweep_removes_only_leftovers(vols: VolumeDriver) -> None:
    vols.ensure("keep", {})
    (vols.root / ".tmp-abc" / "_data").mkdir(parents=True)
    (vols.root / ".rm-def").mkdir()
    assert vols.sweep() == [".rm-def", ".tmp-abc"]
    assert os.listdir(vols.root) == ["keep"]
    assert VolumeDriver(vols.root / "absent").sweep() == []


def test_a_copy_up_waiting_for_a_removal_does_not_fill_the_removed_volume(vols: VolumeDriver,
                                                                          tmp_path: Path) -> None:
    src = _image_dir(tmp_path)
    vol = vols.root / "app"
    vols.ensure("app", {})
    errors: list[BaseException] = []

    def fill() -> None:
        try:
            vols.populate_from("app", src)
        except BaseException as exc:
            errors.append(exc)

    fd = os.open(vol, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as remove() holds it
        t = threading.Thread(target=fill)
        t.start()
        time.sleep(0.05)  # let the copy-up reach the lock
        os.rename(vol, vols.root / ".rm-test")
    finally:
        os.close(fd)
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], VolumeNotFoundError)
    assert os.listdir(vols.root / ".rm-test" / "_data") == []
