"""Volumes as root on the real kernel: copy-up keeps owners, privileged xattrs (file
capabilities, trusted.*), device nodes, fifos and hard links, also from an overlay root file
system; removal is refused while a container-like mount namespace, or this one, mounts the
volume, also when the data root itself sits on a bind mount."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from stackd.drivers.volumes import VolumeDriver, VolumeInUseError
from tests.host.volumes.support import in_new_mount_namespace, need_root, scratch, snapshot

pytestmark = pytest.mark.host

CAP_NET_BIND = bytes.fromhex("0100000200040000000000000000000000000000")  # cap_net_bind_service=ep


def _image_tree(root: Path) -> Path:
    app = root / "srv" / "app"
    (app / "bin").mkdir(parents=True)
    (app / "bin" / "server").write_bytes(b"\x7fELF pretend")
    os.chmod(app / "bin" / "server", 0o4755)
    os.setxattr(app / "bin" / "server", "security.capability", CAP_NET_BIND)
    os.setxattr(app / "bin" / "server", "trusted.stackd-test", b"t")
    os.setxattr(app / "bin" / "server", "user.stackd-test", b"u")
    os.link(app / "bin" / "server", app / "bin" / "server-alias")
    (app / "data").mkdir(mode=0o700)
    os.chown(app / "data", 999, 999)
    (app / "data" / "db").write_text("rows")
    os.chown(app / "data" / "db", 999, 998)
    os.mknod(app / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mkfifo(app / "pipe", 0o640)
    (app / "link").symlink_to("data/db")
    os.lchown(app / "link", 7, 8)
    os.chown(app, 33, 33)
    os.chmod(app, 0o2750)
    return app


def test_copy_up_keeps_owners_xattrs_devices_and_links() -> None:
    need_root()
    with scratch() as root:
        src = _image_tree(root / "image")
        vols = VolumeDriver(root / "volumes")
        data = vols.ensure("stkt_app", {})
        assert vols.populate_from("stkt_app", src) is True
        assert snapshot(data) == snapshot(src)
        assert data.stat()[4:6] == (33, 33) and stat.S_IMODE(data.stat().st_mode) == 0o2750


def test_copy_up_from_an_overlay_root_file_system() -> None:
    need_root()
    with scratch() as root:
        lower = root / "lower"
        src_in_lower = _image_tree(lower)
        upper, work, merged = root / "upper", root / "work", root / "merged"
        for d in (upper, work, merged):
            d.mkdir()
        opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
        done = subprocess.run(["mount", "-t", "overlay", "stkt-vol-overlay", "-o", opts, str(merged)],
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        (merged / "srv" / "app" / "data" / "db").unlink()  # a whiteout in the upper layer
        expected = snapshot(src_in_lower)
        del expected["data/db"]
        vols = VolumeDriver(root / "volumes")
        data = vols.ensure("stkt_app", {})
        assert vols.populate_from("stkt_app", merged / "srv" / "app") is True
        got = snapshot(data)
        assert got == expected
        assert not (data / "data" / "db").exists()
        assert not any(k.startswith("trusted.overlay") for k in os.listxattr(data / "data"))


def test_remove_is_refused_while_another_mount_namespace_mounts_the_volume() -> None:
    need_root()
    with scratch() as root:
        vols = VolumeDriver(root / "volumes")
        data = vols.ensure("stkt_busy", {})
        target = root / "container-rootfs-data"
        target.mkdir()
        script = f"mount --bind '{data}' '{target}' && echo ready && exec sleep 600"
        with in_new_mount_namespace(script) as proc:
            users = vols.users("stkt_busy")
            assert str(target) in {u.mount_point for u in users}
            assert proc.pid in {u.pid for u in users}  # unshare and sh exec: one process, one pid
            with pytest.raises(VolumeInUseError, match="in use"):
                vols.remove("stkt_busy")
            assert vols.exists("stkt_busy")
        assert vols.users("stkt_busy") == []
        assert vols.remove("stkt_busy") is True


def test_remove_is_refused_while_something_is_mounted_inside_here() -> None:
    need_root()
    with scratch() as root:
        vols = VolumeDriver(root / "volumes")
        data = vols.ensure("stkt_inner", {})
        (data / "mnt").mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "stkt-vol-tmpfs", str(data / "mnt")], check=True)
        try:
            with pytest.raises(VolumeInUseError, match=str(data / "mnt")):
                vols.remove("stkt_inner")
        finally:
            subprocess.run(["umount", str(data / "mnt")], check=True)
        assert vols.remove("stkt_inner") is True


def test_uses_are_found_when_the_data_root_is_itself_a_bind_mount() -> None:
    need_root()
    with scratch() as root:
        real_root, seen_root = root / "disk", root / "data-root"
        real_root.mkdir()
        seen_root.mkdir()
        subprocess.run(["mount", "--bind", str(real_root), str(seen_root)], check=True)
        vols = VolumeDriver(seen_root / "volumes")
        data = vols.ensure("stkt_bound", {})
        target = root / "ctr"
        target.mkdir()
        script = f"mount --bind '{data}' '{target}' && echo ready && exec sleep 600"
        with in_new_mount_namespace(script):
            assert [u.mount_point for u in vols.users("stkt_bound")] == [str(target)]
            with pytest.raises(VolumeInUseError):
                vols.remove("stkt_bound")
        assert vols.remove("stkt_bound") is True
