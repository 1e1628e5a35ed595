"""Bundles on disk: written atomically, rootfs named absolutely, removed without touching a rootfs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackd.drivers.runtime.bundle import read_config, remove_bundle, write_bundle
from stackd.errors import PermanentDriverError


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    path = tmp_path / "images" / "rootfs"
    path.mkdir(parents=True)
    return path


def test_write_creates_the_bundle_with_config_and_absolute_rootfs(tmp_path: Path, rootfs: Path) -> None:
    cfg = {"ociVersion": "1.0.2", "root": {"readonly": True}}
    bundle = write_bundle(tmp_path / "bundles" / "c1", cfg, rootfs)
    data = json.loads((bundle / "config.json").read_text())
    assert data["root"] == {"path": str(rootfs), "readonly": True}
    assert read_config(bundle) == data
    assert (bundle / "config.json").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in bundle.parent.iterdir()) == ["c1"]  # no staging left behind


def test_rewriting_replaces_config_atomically(tmp_path: Path, rootfs: Path) -> None:
    bundle = tmp_path / "c1"
    write_bundle(bundle, {"root": {"path": str(rootfs)}, "hostname": "a"})
    write_bundle(bundle, {"root": {"path": str(rootfs)}, "hostname": "b"})
    assert read_config(bundle)["hostname"] == "b"
    assert sorted(p.name for p in bundle.iterdir()) == ["config.json"]


def test_relative_rootfs_is_resolved_against_the_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "c1"
    (bundle / "rootfs").mkdir(parents=True)
    write_bundle(bundle, {"root": {"path": "rootfs"}})
    assert read_config(bundle)["root"]["path"] == "rootfs"


def test_missing_rootfs_is_a_permanent_error_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(PermanentDriverError, match="not a directory"):
        write_bundle(tmp_path / "c1", {"root": {"path": str(tmp_path / "nope")}})
    with pytest.raises(PermanentDriverError, match="no root"):
        write_bundle(tmp_path / "c1", {"ociVersion": "1.0.2"})
    assert not (tmp_path / "c1").exists()


def test_read_config_of_a_broken_bundle(tmp_path: Path) -> None:
    with pytest.raises(PermanentDriverError):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text("[1]")
    with pytest.raises(PermanentDriverError):
        read_config(tmp_path)


def test_remove_bundle_never_deletes_a_rootfs_inside_it(tmp_path: Path, rootfs: Path) -> None:
    bundle = write_bundle(tmp_path / "c1", {"root": {"path": str(rootfs)}})
    remove_bundle(bundle)
    assert not bundle.exists() and rootfs.is_dir()
    remove_bundle(bundle)  # already gone: nothing to do
    inner = tmp_path / "c2"
    (inner / "rootfs" / "etc").mkdir(parents=True)
    write_bundle(inner, {"root": {"path": "rootfs"}})
    with pytest.raises(PermanentDriverError):
        remove_bundle(inner)
    assert (inner / "rootfs" / "etc").is_dir()
