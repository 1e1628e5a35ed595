"""Utilities of the real host driver's host tests: a tiny busybox image made in the test (an OCI
image-layout tar imported into the test's image store), a snapshot of what the host holds
(links, network namespaces, mounts, cgroup directories, nft tables, processes, each under the
test's names) to prove that cleanup restored it, and a thorough cleanup of everything made
under those names.

Every host object carries the test prefix ``stkt`` (links, namespaces, nft tables), the data
and run directories live in ``/tmp/stkt-ctr-*`` and the cgroups below ``/stkt-ctr-<hex>``.
Outside CI a missing root or tool skips a test; in CI (``CI`` set) it fails it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackd.drivers.images import ImageStore, import_archive
from stackd.drivers.network.names import Naming
from stackd.drivers.runtime.host import cgroup_mount_points, read_mountinfo

PREFIX = "stkt-ctr-"
NAMING = Naming("stkt", "stkt")
BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "nc", "wget", "httpd", "sleep", "cat", "hostname", "ip", "echo", "id", "ls", "true",
           "trap", "kill", "ps", "env", "pwd", "touch", "mkdir", "grep")
IMAGE = "stkt/busybox:test"


def need(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI must run every host test)")
        pytest.skip(why)


def require_host() -> None:
    need(os.geteuid() == 0, "the container host tests need root")
    need(BUSYBOX.is_file(), "needs /bin/busybox (Debian package busybox-static)")
    for tool, package in (("conmon", "conmon"), ("nft", "nftables"), ("ip", "iproute2")):
        need(shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is not None,
             f"{tool} is not installed (Debian package {package})")
    need(any(shutil.which(r, path="/usr/bin:/usr/sbin:/bin:/sbin") for r in ("crun", "runc")),
         "no OCI runtime (Debian packages crun, runc)")


# ----------------------------------------------------------------------------------- the image


def _add(tar: tarfile.TarFile, name: str, *, data: bytes | None = None, mode: int = 0o644,
         link: str | None = None, directory: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = 0
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    elif link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, link, 0o777
        tar.addfile(info)
    else:
        payload = data or b""
        info.size, info.mode = len(payload), mode
        tar.addfile(info, io.BytesIO(payload))


def layer_tar() -> bytes:
    """busybox with its applets, /etc files, a web root with a page, a directory with content
    (for copy-up) and a data directory the image declares as a VOLUME."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "www", "seed", "data", "run", "proc", "sys", "dev"):
            _add(tar, d, directory=True)
        _add(tar, "bin/busybox", data=BUSYBOX.read_bytes(), mode=0o755)
        for applet in APPLETS:
            _add(tar, f"bin/{applet}", link="busybox")
        _add(tar, "etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/www:/bin/sh\n")
        _add(tar, "etc/group", data=b"root:x:0:\nwww:x:33:\nextra:x:50:www\n")
        _add(tar, "www/index.html", data=b"hello from stackd\n")
        _add(tar, "seed/greeting", data=b"seeded\n")
    return out.getvalue()


def _blob(tar: tarfile.TarFile, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    _add(tar, f"blobs/sha256/{digest}", data=data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def image_archive(path: Path, name: str = IMAGE) -> Path:
    """An OCI image-layout tar of the test image at ``path``."""
    layer = layer_tar()
    diff_id = f"sha256:{hashlib.sha256(layer).hexdigest()}"
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin", "FROM_IMAGE=image", "OVERRIDDEN=image"], "Cmd": ["sh"],
                   "WorkingDir": "/", "Volumes": {"/data": {}}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()
    with tarfile.open(path, "w") as tar:
        layer_desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar", **_blob(tar, layer)}
        config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(tar, config)}
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": config_desc, "layers": [layer_desc]}).encode()
        manifest_desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **_blob(tar, manifest),
                         "annotations": {"org.opencontainers.image.ref.name": name}}
        _add(tar, "oci-layout", data=json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _add(tar, "index.json", data=json.dumps({"schemaVersion": 2, "manifests": [manifest_desc]}).encode())
    return path


def import_image(data_root: Path, work: Path) -> str:
    """Import the test image into the image store under ``data_root``; its id."""
    refs = import_archive(ImageStore(data_root), image_archive(work / "image.tar"), IMAGE)
    return str(refs[0].id)


# ------------------------------------------------------------------------------------- snapshot


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30).stdout


@dataclass(frozen=True)
class Snapshot:
    """What the host holds that the tests could have changed."""

    links: frozenset[str]
    netns: frozenset[str]
    mounts: frozenset[str]
    cgroups: frozenset[str]
    tables: frozenset[str]
    processes: frozenset[int]
    ip_forward: frozenset[str]

    @classmethod
    def take(cls, work: Path, cgroup_root: str) -> Snapshot:
        """What the host holds under the test names (other software, and other test runs, may
        change the rest of the host meanwhile)."""
        links = frozenset(name for line in _run("ip", "-o", "link", "show").splitlines() if ":" in line
                          if NAMING.is_link(name := line.split(":")[1].strip().split("@")[0]))
        try:
            netns = frozenset(n for n in os.listdir("/run/netns") if NAMING.is_netns(n))
        except FileNotFoundError:
            netns = frozenset()
        mounts = frozenset(e.mount_point for e in read_mountinfo()
                           if e.mount_point.startswith((f"{work}/", "/run/netns/stkt-")))
        cgroups = frozenset(str(Path(m, cgroup_root.lstrip("/")))
                            for m in cgroup_mount_points(read_mountinfo())
                            if Path(m, cgroup_root.lstrip("/")).exists())
        tables = frozenset(line.strip() for line in _run("nft", "list", "tables").splitlines()
                           if NAMING.is_table(line.strip().split()[-1]))
        ip_forward = frozenset([Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()])
        return cls(links, netns, mounts, cgroups, tables, frozenset(processes_with(str(work))), ip_forward)

    def difference(self, other: Snapshot) -> dict[str, list[str]]:
        out = {}
        for name in ("links", "netns", "mounts", "cgroups", "tables", "processes", "ip_forward"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out[name] = sorted(f"+{x}" for x in theirs - mine) + sorted(f"-{x}" for x in mine - theirs)
        return out


def processes_with(marker: str) -> list[int]:
    """Live (not zombie) processes whose command line mentions ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if marker.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def remove_cgroups(cgroup_root: str) -> None:
    for mount in cgroup_mount_points(read_mountinfo()):
        top = Path(mount, cgroup_root.lstrip("/"))
        for dirpath, _, _ in os.walk(top, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def unmount_under(root: Path) -> None:
    found = [e.mount_point for e in read_mountinfo()
             if e.mount_point == str(root) or e.mount_point.startswith(f"{root}/")]
    points = sorted(found, key=len, reverse=True)
    for point in points:
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
