"""Support for the image verb tests: tiny images made in memory and added to a temporary store,
archives in the ``docker save`` layout, and a runner that parses argv like ``stack`` does and
reports errors the way the command line does (message lines, exit code, no traceback).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackd.cli.images import VERBS, add_parsers
from stackd.drivers.images import ImageRef, ImageStore
from stackd.drivers.images.oci import OCI_LAYER, build_manifest, dump_json
from stackd.errors import StackdError
from stackd.spec.options import ProjectOptions

CREATED = "2020-01-02T03:04:05Z"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar holding ``files`` (path -> content), mode 0755."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config(layers: list[bytes], **cfg: Any) -> bytes:
    return dump_json({"created": CREATED, "architecture": "amd64", "os": "linux", "config": cfg,
                      "rootfs": {"type": "layers", "diff_ids": [sha(b) for b in layers]}})


def add_image(root: Path, name: str, files: dict[str, bytes], **cfg: Any) -> ImageRef:
    """Add a one-layer image to the store under ``root``."""
    blob = layer(files)
    conf = config([blob], **cfg)
    manifest = build_manifest(conf, [(OCI_LAYER, sha(blob), len(blob))])
    return ImageStore(root).add_image(name, manifest, conf, [io.BytesIO(blob)])


def docker_archive(path: Path, tags: list[str], files: dict[str, bytes], **cfg: Any) -> Path:
    """A ``docker save`` archive (``manifest.json``, ``<id>.json``, ``<n>/layer.tar``)."""
    blob = layer(files)
    conf = config([blob], **cfg)
    conf_name = sha(conf).removeprefix("sha256:") + ".json"
    entries = [{"Config": conf_name, "RepoTags": tags, "Layers": ["l0/layer.tar"]}]
    with tarfile.open(path, "w") as tf:
        for name, data in (("manifest.json", json.dumps(entries).encode()), (conf_name, conf),
                           ("l0/layer.tar", blob)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stack")
    p.add_argument("-f", "--file", dest="files", action="append", default=[])
    p.add_argument("-p", "--project-name")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_parsers(sub)
    return p


def run(root: Path, *argv: str, cwd: Path | None = None, **environ: str) -> Result:
    """``stack ARGV`` with the data root ``root``; errors rendered as the command line does."""
    args = parser().parse_args(list(argv))
    env = {"STACKD_DATA_ROOT": str(root), **environ}
    options = ProjectOptions(files=tuple(args.files), project_name=args.project_name,
                             services=tuple(getattr(args, "service_names", ())), environ=env,
                             cwd=str(cwd or root))
    out, err = io.StringIO(), io.StringIO()
    try:
        code = VERBS[args.command](args, options, out, err)
    except StackdError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=err)
        code = exc.exit_code
    return Result(code, out.getvalue(), err.getvalue())
