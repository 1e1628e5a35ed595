"""Other OCI tools read what the store writes, and the store reads what they write (skopeo, umoci)."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from stackd.drivers.images.archive import export_archive, import_archive
from stackd.drivers.images.store import ImageStore
from tests.host.images.hostutil import need_root, need_tool, scratch
from tests.unit.images.builders import E, Image, docker_archive, layer_tar

pytestmark = pytest.mark.host

NAME = "stkt-img/interop:1.0"
BASE = layer_tar([
    E("etc", kind="dir"), E("etc/hosts", data=b"127.0.0.1 localhost\n"), E("etc/motd", data=b"hi"),
    E("var/cache/apt/pkg", data=b"old"), E("usr/bin/sh", data=b"sh", mode=0o755),
    E("bin", kind="symlink", target="usr/bin"),
])
TOP = layer_tar([
    E("etc/.wh.motd"), E("var/cache/apt", kind="dir"), E("var/cache/apt/.wh..wh..opq"),
    E("var/cache/apt/new", data=b"new"), E("srv/app", data=b"app", mode=0o750),
])
IMAGE = Image([BASE, TOP], config={"Env": ["PATH=/usr/bin"], "Cmd": ["/srv/app"], "Labels": {"k": "v"}})


def run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} failed: {result.stderr}"
    return result.stdout


def exported(root: Path) -> tuple[ImageStore, Path]:
    store = ImageStore(root / "store")
    import_archive(store, docker_archive(root / "save.tar", [NAME], IMAGE))
    return store, export_archive(store, NAME, root / "export.tar")


def test_skopeo_inspects_our_export() -> None:
    need_root()
    skopeo = need_tool("skopeo", "skopeo")
    with scratch() as root:
        store, archive = exported(root)
        ref = store.resolve(NAME)
        for target in (f"oci-archive:{archive}", f"oci-archive:{archive}:{NAME}", f"oci:{store.dir}:{NAME}"):
            info: dict[str, Any] = json.loads(run(skopeo, "inspect", target))
            assert info["Digest"] == ref.manifest_digest
            assert info["Env"] == ["PATH=/usr/bin"]
            assert info["Labels"] == {"k": "v"}
            assert len(info["Layers"]) == 2
        config = json.loads(run(skopeo, "inspect", "--config", f"oci-archive:{archive}"))
        assert config["rootfs"]["diff_ids"] == list(ref.config.diff_ids)


def test_umoci_unpacks_our_export() -> None:
    need_root()
    umoci = need_tool("umoci", "umoci")
    with scratch() as root:
        _, archive = exported(root)
        layout = root / "layout"
        with tarfile.open(archive) as tf:
            tf.extractall(layout, filter="data")
        bundle = root / "bundle"
        run(umoci, "unpack", "--image", f"{layout}:{NAME}", str(bundle))
        rootfs = bundle / "rootfs"
        assert not (rootfs / "etc/motd").exists()
        assert (rootfs / "etc/hosts").read_bytes() == b"127.0.0.1 localhost\n"
        assert sorted(os.listdir(rootfs / "var/cache/apt")) == ["new"]
        assert (rootfs / "srv/app").read_bytes() == b"app"
        assert os.readlink(rootfs / "bin") == "usr/bin"
        spec = json.loads((bundle / "config.json").read_text())
        assert spec["process"]["args"] == ["/srv/app"]


@pytest.mark.parametrize("transport", ["oci-archive", "docker-archive"])
def test_we_import_what_skopeo_writes(transport: str) -> None:
    need_root()
    skopeo = need_tool("skopeo", "skopeo")
    with scratch() as root:
        store, archive = exported(root)
        theirs = root / f"{transport}.tar"
        run(skopeo, "copy", "--quiet", f"oci-archive:{archive}", f"{transport}:{theirs}:stkt-img/copied:2")
        fresh = ImageStore(root / "fresh")
        (ref,) = import_archive(fresh, theirs)
        # docker archives carry docker's normalised names; the store keeps names as they are written
        prefix = "docker.io/" if transport == "docker-archive" else ""
        assert ref.name == f"{prefix}stkt-img/copied:2"
        assert ref.config.diff_ids == store.resolve(NAME).config.diff_ids
        assert ref.config.cmd == ("/srv/app",)
        top = ref.layer_dirs[1]
        assert (top / "srv/app").read_bytes() == b"app"
        assert (top / "etc/motd").lstat().st_rdev == 0
