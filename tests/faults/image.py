"""The image of the fault tests: Debian's static busybox in one layer, with the applets the test
stacks run (a shell, ``sleep``, ``httpd``, ``wget``, ``true``...), written as a ``docker save``
archive that ``stack image import`` reads (the shape ``bench/up_many.py`` makes, with more applets
and a web root).

It only writes the archive; importing it is the caller's (through the CLI).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
IMAGE = "stkf/busybox:1"
APPLETS = ("sh", "sleep", "true", "false", "httpd", "wget", "ping", "nc", "cat", "echo", "kill", "ls",
           "mkdir", "hostname", "ip", "ps", "trap", "test")
PAGE = b"hello from the fault tests\n"


def _file(tf: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tf.addfile(info, io.BytesIO(data))


def _layer() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("bin", "tmp", "proc", "sys", "dev", "etc", "www", "data", "run"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tf.addfile(info)
        _file(tf, "bin/busybox", BUSYBOX.read_bytes(), 0o755)
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tf.addfile(info)
        _file(tf, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\n")
        _file(tf, "etc/group", b"root:x:0:\n")
        _file(tf, "www/index.html", PAGE)
    return out.getvalue()


def busybox_archive(path: Path) -> Path:
    """Write the ``docker save`` archive of ``IMAGE`` to ``path``; ``path``."""
    layer = _layer()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]},
    }).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [IMAGE], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tf:
        _file(tf, "layer.tar", layer)
        _file(tf, "config.json", config)
        _file(tf, "manifest.json", manifest)
    return path
