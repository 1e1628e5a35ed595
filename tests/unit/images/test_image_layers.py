"""Layer tars <-> directories, without root: whiteouts go through the in-memory fake."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from stackd.drivers.images.errors import ImageError
from stackd.drivers.images.layers import diff_to_tar, unpack_layer
from stackd.drivers.images.whiteouts import MemoryWhiteouts, OverlayWhiteouts
from stackd.errors import PermanentDriverError
from tests.unit.images.builders import E, gz, layer_tar, sha


def unpack(tmp_path: Path, data: bytes, wh: MemoryWhiteouts | None = None, sub: str = "layer") -> Path:
    dest = tmp_path / sub
    dest.mkdir()
    unpack_layer(io.BytesIO(data), dest, wh or MemoryWhiteouts())
    return dest


def test_unpack_keeps_files_modes_links_and_times(tmp_path: Path) -> None:
    data = layer_tar([
        E("./etc", kind="dir", mode=0o755),
        E("./etc/passwd", data=b"root:x:0:0\n", mode=0o600, mtime=1_600_000_000),
        E("usr/bin/tool", data=b"#!/bin/sh\n", mode=0o4755),
        E("usr/bin/alias", kind="hardlink", target="usr/bin/tool"),
        E("bin", kind="symlink", target="usr/bin"),
        E("run/fifo", kind="fifo", mode=0o640),
        E("srv", kind="dir", mode=0o555),
        E("srv/data", data=b"d", mode=0o444),
    ])
    dest = unpack(tmp_path, data)
    assert (dest / "etc/passwd").read_bytes() == b"root:x:0:0\n"
    assert stat.S_IMODE((dest / "etc/passwd").stat().st_mode) == 0o600
    assert (dest / "etc/passwd").stat().st_mtime == 1_600_000_000
    assert stat.S_IMODE((dest / "usr/bin/tool").stat().st_mode) == 0o4755
    assert (dest / "usr/bin/alias").stat().st_ino == (dest / "usr/bin/tool").stat().st_ino
    assert os.readlink(dest / "bin") == "usr/bin"
    assert stat.S_ISFIFO((dest / "run/fifo").lstat().st_mode)
    assert stat.S_IMODE((dest / "srv").stat().st_mode) == 0o555  # set after its contents
    assert (dest / "srv/data").read_bytes() == b"d"


def test_unpack_reports_diff_id_and_size_of_the_uncompressed_tar(tmp_path: Path) -> None:
    data = layer_tar([E("a", data=b"hello")])
    for n, blob in enumerate((data, gz(data))):
        dest = tmp_path / str(n)
        dest.mkdir()
        info = unpack_layer(io.BytesIO(blob), dest, MemoryWhiteouts())
        assert (info.diff_id, info.size) == (sha(data), len(data))
        assert (dest / "a").read_bytes() == b"hello"


def test_whiteouts_and_opaque_directories_become_overlay_markers(tmp_path: Path) -> None:
    wh = MemoryWhiteouts()
    data = layer_tar([
        E("etc/.wh.hosts"),
        E("var/cache/.wh..wh..opq"),
        E("var/cache/new", data=b"n"),
        E(".wh..wh.plnk/123"),  # aufs hard-link directory: ignored
    ])
    dest = unpack(tmp_path, data, wh)
    hosts = dest / "etc/hosts"
    assert wh.is_whiteout(hosts, hosts.lstat())
    assert wh.is_opaque(dest / "var/cache")
    assert not wh.is_opaque(dest / "var")
    assert (dest / "var/cache/new").read_bytes() == b"n"
    names = {str(p.relative_to(dest)) for p in dest.rglob("*")}
    assert not any(".wh." in n for n in names)


def test_a_whiteout_hides_only_lower_layers_whatever_the_order(tmp_path: Path) -> None:
    wh = MemoryWhiteouts()
    dest = unpack(tmp_path, layer_tar([
        E("etc/.wh.conf.d"), E("etc/conf.d", kind="dir"), E("etc/conf.d/new", data=b"n"),
        E("opt/tool", kind="dir"), E("opt/tool/bin", data=b"b"), E("opt/.wh.tool"),
        E("file", data=b"mine"), E(".wh.file"),
        E(".wh.later"), E("later", data=b"here"),
    ]), wh)
    for d in ("etc/conf.d", "opt/tool"):  # a new directory in place of the lower one
        assert (dest / d).is_dir() and wh.is_opaque(dest / d)
    assert (dest / "etc/conf.d/new").read_bytes() == b"n"
    assert (dest / "opt/tool/bin").read_bytes() == b"b"
    for f, content in (("file", b"mine"), ("later", b"here")):
        assert (dest / f).read_bytes() == content
        assert not wh.is_whiteout(dest / f, (dest / f).lstat())


def test_a_later_entry_replaces_an_earlier_one(tmp_path: Path) -> None:
    data = layer_tar([
        E("x", data=b"file"),
        E("x", kind="dir"),
        E("x/inner", data=b"i"),
        E("y", kind="dir"),
        E("y/z", data=b"z"),
        E("y", data=b"now a file"),
    ])
    dest = unpack(tmp_path, data)
    assert (dest / "x/inner").read_bytes() == b"i"
    assert (dest / "y").read_bytes() == b"now a file"


def test_paths_through_symlinks_stay_inside_the_layer(tmp_path: Path) -> None:
    data = layer_tar([
        E("usr/lib", kind="dir"),
        E("lib", kind="symlink", target="/usr/lib"),
        E("lib/libc.so", data=b"c"),
        E("usr/share", kind="symlink", target="../usr/lib"),
        E("usr/share/doc", data=b"d"),
    ])
    dest = unpack(tmp_path, data)
    assert (dest / "usr/lib/libc.so").read_bytes() == b"c"
    assert (dest / "usr/lib/doc").read_bytes() == b"d"


@pytest.mark.parametrize(("entries", "words"), [
    ([E("../escape", data=b"x")], "'..'"),
    ([E("a/../../escape", data=b"x")], "'..'"),
    ([E("/etc/passwd", data=b"x")], "absolute"),
    ([E("up", kind="symlink", target="../.."), E("up/escape", data=b"x")], "symlink"),
    ([E("deep/up", kind="symlink", target="../../outside"), E("deep/up/x", data=b"x")], "symlink"),
    ([E("h", kind="hardlink", target="../../etc/shadow")], "'..'"),
    ([E("h", kind="hardlink", target="missing")], "not earlier in the layer"),
])
def test_unsafe_entries_are_refused(tmp_path: Path, entries: list[E], words: str) -> None:
    outside = tmp_path / "escape"
    with pytest.raises(ImageError, match=words):
        unpack(tmp_path, layer_tar(entries))
    assert not outside.exists()
    assert not (tmp_path / "outside").exists()


def test_overlay_xattrs_in_a_layer_are_not_applied(tmp_path: Path) -> None:
    data = layer_tar([E("d", kind="dir", xattrs={"trusted.overlay.opaque": b"y", "user.note": b"kept"})])
    dest = unpack(tmp_path, data)
    with pytest.raises(OSError):
        os.getxattr(dest / "d", "trusted.overlay.opaque")
    assert os.getxattr(dest / "d", "user.note") == b"kept"


def test_binary_xattr_values_survive(tmp_path: Path) -> None:
    value = bytes(range(256))
    dest = unpack(tmp_path, layer_tar([E("f", data=b"x", xattrs={"user.blob": value})]))
    assert os.getxattr(dest / "f", "user.blob") == value


def test_zstd_layers_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="zstd"):
        unpack(tmp_path, b"\x28\xb5\x2f\xfd" + b"\0" * 100)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_layers_are_refused(tmp_path: Path, compress: bool) -> None:
    data = layer_tar([E("big", data=os.urandom(20000))])
    blob = gz(data) if compress else data
    with pytest.raises(ImageError, match="truncated"):
        unpack(tmp_path, blob[: len(blob) // 2])


def test_device_nodes_without_root_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "mknod", refuse)
    with pytest.raises(ImageError, match="root"):
        unpack(tmp_path, layer_tar([E("dev/null", kind="chr", dev=(1, 3))]))


def tar_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getnames()


def test_diff_to_tar_turns_markers_back_into_oci_whiteouts(tmp_path: Path) -> None:
    wh = MemoryWhiteouts()
    upper = unpack(tmp_path, layer_tar([
        E("etc/.wh.hosts"),
        E("var/cache/.wh..wh..opq"),
        E("var/cache/new", data=b"n", mode=0o640),
        E("usr/bin/tool", data=b"t", mode=0o755),
        E("usr/bin/alias", kind="hardlink", target="usr/bin/tool"),
        E("bin", kind="symlink", target="usr/bin"),
    ]), wh, "upper")
    out = io.BytesIO()
    info = diff_to_tar(upper, out, wh)
    data = out.getvalue()
    assert (info.diff_id, info.size) == (sha(data), len(data))
    names = tar_names(data)
    assert "etc/.wh.hosts" in names
    assert "var/cache/.wh..wh..opq" in names
    assert names.index("var/cache") < names.index("var/cache/.wh..wh..opq")
    assert "etc/hosts" not in names
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        first, second = tf.getmember("usr/bin/alias"), tf.getmember("usr/bin/tool")  # sorted order
        assert first.isreg() and second.islnk() and second.linkname == "usr/bin/alias"
        assert tf.getmember("bin").linkname == "usr/bin"
        assert stat.S_IMODE(tf.getmember("var/cache/new").mode) == 0o640

    wh2 = MemoryWhiteouts()
    again = unpack(tmp_path, data, wh2, "again")
    hosts = again / "etc/hosts"
    assert wh2.is_whiteout(hosts, hosts.lstat())
    assert wh2.is_opaque(again / "var/cache")
    assert (again / "var/cache/new").read_bytes() == b"n"
    assert (again / "usr/bin/alias").stat().st_ino == (again / "usr/bin/tool").stat().st_ino


def test_diff_to_tar_is_deterministic(tmp_path: Path) -> None:
    upper = unpack(tmp_path, layer_tar([E("b", data=b"2"), E("a/x", data=b"1"), E("c", kind="dir")]))
    first, second = io.BytesIO(), io.BytesIO()
    wh = MemoryWhiteouts()
    assert diff_to_tar(upper, first, wh) == diff_to_tar(upper, second, wh)
    assert tar_names(first.getvalue()) == ["a", "a/x", "b", "c"]


def test_diff_to_tar_refuses_redirected_directories(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "moved").mkdir(parents=True)
    try:
        os.setxattr(upper / "moved", "trusted.overlay.redirect", b"/old")
    except PermissionError:
        pytest.skip("trusted.* xattrs need root")
    with pytest.raises(ImageError, match="redirect"):
        diff_to_tar(upper, io.BytesIO(), MemoryWhiteouts())


def test_overlay_whiteouts_without_root_say_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "mknod", refuse)
    monkeypatch.setattr(os, "setxattr", refuse)
    with pytest.raises(PermanentDriverError, match="needs root"):
        OverlayWhiteouts().make_whiteout(tmp_path / "x")
    with pytest.raises(PermanentDriverError, match="needs root"):
        OverlayWhiteouts().make_opaque(tmp_path)
