"""Unpacked layers under a real overlayfs mount, and upper directories turned back into layers."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from stackd.drivers.images.archive import import_archive
from stackd.drivers.images.layers import diff_to_tar
from stackd.drivers.images.oci import OCI_LAYER, build_manifest
from stackd.drivers.images.store import ImageStore
from stackd.drivers.images.whiteouts import OPAQUE_XATTR, OverlayWhiteouts
from tests.host.images.hostutil import mount_overlay, need_root, scratch, snapshot, umount
from tests.unit.images.builders import E, Image, config_json, layer_tar, oci_archive, sha

pytestmark = pytest.mark.host

BASE = layer_tar([
    E("etc", kind="dir"), E("etc/hosts", data=b"127.0.0.1 localhost\n"), E("etc/motd", data=b"hi"),
    E("var/cache/apt/pkg", data=b"old"), E("var/cache/apt/sub/deep", data=b"old"),
    E("bin", kind="symlink", target="usr/bin"), E("usr/bin/sh", data=b"sh", mode=0o755),
    E("home/user", kind="dir", mode=0o700, uid=1000, gid=1000),
    E("home/user/.profile", data=b"p", uid=1000, gid=1000, mode=0o600),
    E("usr/bin/su", data=b"su", mode=0o4755),
    E("dev/null", kind="chr", dev=(1, 3), mode=0o666),
    E("usr/bin/ping", data=b"ping", mode=0o755, xattrs={"trusted.stkt-test": b"\x01\x00\xff"}),
    E("opt/tool/old", data=b"old"),
])
TOP = layer_tar([
    E("etc/.wh.motd"), E("var/cache/apt", kind="dir"), E("var/cache/apt/.wh..wh..opq"),
    E("var/cache/apt/new", data=b"new"), E("srv/app", data=b"app", mode=0o750),
    E("opt/.wh.tool"), E("opt/tool", kind="dir"), E("opt/tool/new", data=b"new"),
])


def store_with_image(root: Path) -> ImageStore:
    store = ImageStore(root / "store")
    import_archive(store, oci_archive(root / "img.tar", [("stkt-img/test:1", Image([BASE, TOP]))]))
    return store


def test_merged_view_hides_whiteouts_and_opaque_directories() -> None:
    need_root()
    with scratch() as root:
        store = store_with_image(root)
        image = store.resolve("stkt-img/test:1")
        top = image.layer_dirs[1]
        motd = (top / "etc/motd").lstat()
        assert stat.S_ISCHR(motd.st_mode) and motd.st_rdev == 0
        assert os.getxattr(top / "var/cache/apt", OPAQUE_XATTR) == b"y"

        merged = root / "merged"
        mount_overlay(merged, image.overlay_lowerdirs())
        try:
            assert not (merged / "etc/motd").exists()
            assert (merged / "etc/hosts").read_bytes() == b"127.0.0.1 localhost\n"
            assert sorted(os.listdir(merged / "var/cache/apt")) == ["new"]
            assert sorted(os.listdir(merged / "opt/tool")) == ["new"]  # whiteout + directory, one layer
            assert (merged / "bin/sh").read_bytes() == b"sh"
            assert (merged / "srv/app").read_bytes() == b"app"
        finally:
            umount(merged)


def test_unpack_keeps_owners_set_id_bits_devices_and_xattrs() -> None:
    need_root()
    with scratch() as root:
        base = store_with_image(root).resolve("stkt-img/test:1").layer_dirs[0]
        profile = (base / "home/user/.profile").lstat()
        assert (profile.st_uid, profile.st_gid, stat.S_IMODE(profile.st_mode)) == (1000, 1000, 0o600)
        home = (base / "home/user").lstat()
        assert (home.st_uid, stat.S_IMODE(home.st_mode)) == (1000, 0o700)
        assert stat.S_IMODE((base / "usr/bin/su").lstat().st_mode) == 0o4755
        null = (base / "dev/null").lstat()
        assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
        assert os.getxattr(base / "usr/bin/ping", "trusted.stkt-test") == b"\x01\x00\xff"


def test_upper_dir_becomes_a_layer_that_reproduces_the_changes() -> None:
    need_root()
    with scratch() as root:
        store = store_with_image(root)
        image = store.resolve("stkt-img/test:1")
        upper, work, merged = root / "upper", root / "work", root / "merged"
        upper.mkdir()
        work.mkdir()
        mount_overlay(merged, image.overlay_lowerdirs(), upper, work)
        try:
            (merged / "etc/hosts").unlink()
            for entry in (merged / "var/cache/apt").iterdir():
                if entry.is_dir():
                    (entry / "deep").unlink()
                    entry.rmdir()
                else:
                    entry.unlink()
            (merged / "var/cache/apt").rmdir()
            (merged / "var/cache/apt").mkdir()  # a new directory over a removed one is opaque
            (merged / "var/cache/apt/fresh").write_bytes(b"fresh")
            (merged / "srv/app").write_bytes(b"app v2")
            (merged / "srv/data").write_bytes(b"data")
            os.chown(merged / "srv/data", 1000, 1000)
            os.chmod(merged / "usr/bin/sh", 0o700)
            os.link(merged / "srv/data", merged / "srv/data.link")
            expected = snapshot(merged)
        finally:
            umount(merged)

        out = io.BytesIO()
        info = diff_to_tar(upper, out, OverlayWhiteouts())
        diff = out.getvalue()
        with tarfile.open(fileobj=io.BytesIO(diff)) as tf:
            names = tf.getnames()
            assert tf.getmember("srv/data").uid == 1000
        assert "etc/.wh.hosts" in names
        assert "var/cache/apt/.wh..wh..opq" in names
        assert "var/cache/apt/fresh" in names
        assert not any(n.startswith("work") for n in names)

        layers = [BASE, TOP, diff]
        config = config_json(layers)
        manifest = build_manifest(config, [(OCI_LAYER, sha(t), len(t)) for t in layers])
        assert info.diff_id == sha(diff)
        store.add_image("stkt-img/test:2", manifest, config, [io.BytesIO(t) for t in layers])
        again = root / "again"
        mount_overlay(again, store.resolve("stkt-img/test:2").overlay_lowerdirs())
        try:
            assert snapshot(again) == expected
        finally:
            umount(again)

