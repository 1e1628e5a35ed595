"""Import and export of a ~400 MB root filesystem: stackd's image store against podman.

``python bench/image_io.py [--repeat N] [--no-podman]`` (root; needs Debian's archive).
Bootstraps a Debian bookworm root filesystem with nginx, redis and postgres (the size of the
example stack's images together, as HOST-NOTES measured) into a tar, wraps it as a one-layer OCI
image-layout archive, then times ``stack image import`` (unpacking the layer into the store) and
``stack image export`` (writing an OCI archive), and prints sizes. Where podman runs, ``podman
load`` and ``podman save`` of the same archive run side by side, in podman's own temporary
storage. Prints numbers and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_images import Podman  # the same isolated podman as the build bench

from stackd.drivers.images import export_archive, import_archive
from stackd.drivers.images.store import ImageStore

PACKAGES = "nginx-light,redis-server,postgresql-15"
SOURCES = ["deb http://deb.debian.org/debian bookworm main",
           "deb http://deb.debian.org/debian bookworm-updates main",
           "deb http://deb.debian.org/debian-security bookworm-security main"]
NAME = "bench/rootfs:latest"


def bootstrap(out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", f"--include={PACKAGES}", "bookworm",
                    str(out), *SOURCES], check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def oci_archive(layer: Path, out: Path) -> Path:
    """A one-layer OCI image-layout archive around an uncompressed layer tar."""
    digest = _sha256(layer)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": ["bash"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest}"]}}).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": f"sha256:{config_digest}", "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": f"sha256:{digest}", "size": layer.stat().st_size}]}).encode()
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{manifest_digest}",
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": NAME}}]}).encode()
    with tarfile.open(out, "w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        _add(tar, "index.json", index)
        _add(tar, f"blobs/sha256/{config_digest}", config)
        _add(tar, f"blobs/sha256/{manifest_digest}", manifest)
        tar.add(layer, arcname=f"blobs/sha256/{digest}")
    return out


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def mb(n: float) -> str:
    return f"{n / 1e6:7.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-podman", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("image_io.py needs root (overlay whiteouts, mmdebstrap --mode=root)")
    with tempfile.TemporaryDirectory(prefix="stackd-bench-io-") as tmp_name:
        tmp = Path(tmp_name)
        t_boot = bootstrap(tmp / "rootfs.tar")
        archive = oci_archive(tmp / "rootfs.tar", tmp / "rootfs.oci.tar")
        (tmp / "rootfs.tar").unlink()
        imports, exports = [], []
        for i in range(args.repeat):
            store = ImageStore(tmp / f"store{i}")
            imports.append(timed(partial(import_archive, store, archive)))
            exports.append(timed(partial(export_archive, store, NAME, tmp / f"out{i}.tar")))
        archive_size = archive.stat().st_size
        store_size = du(tmp / "store0")
        export_size = (tmp / "out0.tar").stat().st_size
        theirs: tuple[list[float], list[float]] | None = None
        note = "skipped (--no-podman)"
        if not args.no_podman:
            podman = Podman(tmp / "podman")
            note = podman.works()
            if not note:
                try:
                    loads, saves = [], []
                    for i in range(args.repeat):
                        loads.append(timed(partial(podman, "load", "-i", str(archive))))
                        out = str(tmp / f"p{i}.tar")
                        save = partial(podman, "save", "--format", "oci-archive", "-o", out)
                        saves.append(timed(partial(save, NAME)))
                        podman("rmi", "-f", NAME)
                    theirs = (loads, saves)
                except subprocess.CalledProcessError as exc:
                    note = f"podman failed: {exc.stderr.decode(errors='replace').strip()[-300:]}"
                finally:
                    podman.teardown()
    med = statistics.median
    print(f"root filesystem: {mb(archive_size)} archive (bootstrap took {t_boot:.1f} s)")
    print(f"store after import: {mb(store_size)}; export archive: {mb(export_size)}; median of {args.repeat}")
    print(f"{'':8} {'stackd':>9} {'podman':>9} {'ratio':>6}")
    for label, ours, idx in (("import", imports, 0), ("export", exports, 1)):
        if theirs is not None:
            other = med(theirs[idx])
            print(f"{label:8} {med(ours):8.2f}s {other:8.2f}s {other / med(ours):6.2f}")
        else:
            print(f"{label:8} {med(ours):8.2f}s {'-':>9}")
    if theirs is None:
        print(f"podman: {note}")
    print("ratio = podman time / stackd time (above 1: stackd is faster); "
          "podman: load / save --format oci-archive")


if __name__ == "__main__":
    main()
