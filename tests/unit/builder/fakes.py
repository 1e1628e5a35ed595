"""Fakes for the builder's unit tests: an OCI runtime that "runs" RUN steps with a tiny command
language, a base image source that makes images from dictionaries of files, and helpers to read
a store's image back as a dictionary of files.

The fake runtime reads the bundle's config.json like a real runtime would, records what it was
asked (argv, env, cwd, user, mounts, namespaces) and carries out ``;``-separated commands of the
shell-form script: ``write PATH TEXT`` (a file), ``mkdir PATH``, ``rm PATH``, ``say TEXT``
(a line of output), ``fail N`` (exit status N). With the plain mounter the root filesystem is
the step's upper directory, so what it writes becomes the step's layer.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackd.drivers.builder.events import BuildEvent, Progress
from stackd.drivers.images.records import ImageRef
from stackd.drivers.images.store import ImageStore
from stackd.drivers.runtime.boundary import StdioTarget
from tests.unit.images.builders import E, Image, layer_tar


@dataclass(frozen=True)
class RunCall:
    """What one RUN container was asked to do."""

    container_id: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    rootfs: Path
    mounts: dict[str, str]
    namespaces: tuple[str, ...]
    cgroups_path: str


@dataclass
class FakeRuntime:
    """Runs nothing; follows the script of each RUN step in the root filesystem it was given."""

    calls: list[RunCall] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)

    def run_to_completion(self, container_id: str, bundle: Path, stdout: StdioTarget = None,
                          stderr: StdioTarget = None, timeout: float | None = None) -> int:
        config: dict[str, Any] = json.loads((bundle / "config.json").read_text())
        process = config["process"]
        user = process["user"]
        call = RunCall(container_id, tuple(process["args"]), tuple(process["env"]), process["cwd"],
                       user["uid"], user["gid"], tuple(user.get("additionalGids", ())),
                       Path(config["root"]["path"]),
                       {m["destination"]: m["source"] for m in config["mounts"]},
                       tuple(ns["type"] for ns in config["linux"]["namespaces"]),
                       config["linux"].get("cgroupsPath", ""))
        self.calls.append(call)
        self._make_mount_points(config)
        output, code = self._script(call)
        if isinstance(stdout, int):
            os.write(stdout, output.encode())
        return code

    @staticmethod
    def _make_mount_points(config: dict[str, Any]) -> None:
        """Create missing mount points in the root filesystem, as runc and crun do."""
        root = Path(config["root"]["path"])
        for mount in config["mounts"]:
            dest = mount["destination"]
            if dest.count("/") > 1 and dest.split("/")[1] in ("dev", "proc", "sys"):
                continue  # inside the tmpfs, proc or sysfs mounted there
            target = root / dest.lstrip("/")
            if mount["type"] == "bind" and Path(mount["source"]).is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            else:
                target.mkdir(parents=True, exist_ok=True)

    def kill(self, container_id: str, signal: int | str = 15, *, all_processes: bool = False) -> None:
        self.killed.append(container_id)

    @staticmethod
    def _script(call: RunCall) -> tuple[str, int]:
        if call.args[:2] != ("/bin/sh", "-c"):
            return "", 0
        out: list[str] = []
        for command in call.args[2].split(";"):
            verb, _, rest = command.strip().partition(" ")
            path = call.rootfs / rest.partition(" ")[0].lstrip("/")
            if verb == "write":
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(rest.partition(" ")[2])
            elif verb == "mkdir":
                path.mkdir(parents=True, exist_ok=True)
            elif verb == "rm":
                path.unlink()
            elif verb == "say":
                out.append(rest)
            elif verb == "fail":
                return "".join(f"{line}\n" for line in out), int(rest)
        return "".join(f"{line}\n" for line in out), 0


PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1001:\nstaff:x:50:app\n"


def image_of(files: dict[str, bytes], env: tuple[str, ...] = ("PATH=/usr/bin:/bin",),
             cmd: tuple[str, ...] = ("sh",)) -> Image:
    entries = [E(name, data=data) for name, data in sorted(files.items())]
    return Image([layer_tar(entries)], compress=True, config={"Env": list(env), "Cmd": list(cmd)})


@dataclass
class FakeSource:
    """A ``BaseImageSource`` that makes the images it knows (``name`` -> files) on request."""

    images: dict[str, Image] = field(default_factory=dict)
    provided: list[str] = field(default_factory=list)

    def provide(self, store: ImageStore, ref: str, progress: Progress) -> ImageRef | None:
        image = self.images.get(ref)
        if image is None:
            return None
        self.provided.append(ref)
        progress(BuildEvent("message", f"making {ref}"))
        return store.add_image(ref, image.manifest, image.config_bytes, [io.BytesIO(b) for b in image.blobs])


def image_files(store: ImageStore, name: str) -> dict[str, bytes | str | None]:
    """The files of image ``name`` as its layers say, bottom up (whiteouts applied): content
    of files, ``->target`` of symlinks, ``None`` for directories."""
    ref = store.resolve(name)
    manifest = json.loads(store.read_blob(ref.manifest_digest))
    files: dict[str, bytes | str | None] = {}
    for layer in manifest["layers"]:
        with store.get_blob(layer["digest"]) as f, tarfile.open(fileobj=f, mode="r:*") as tf:
            for m in tf:
                name_ = m.name.rstrip("/")
                base = os.path.basename(name_)
                if base.startswith(".wh."):
                    gone = os.path.join(os.path.dirname(name_), base[4:])
                    files = {k: v for k, v in files.items() if k != gone and not k.startswith(gone + "/")}
                elif m.isdir():
                    files[name_] = None
                elif m.issym():
                    files[name_] = "->" + m.linkname
                else:
                    data = tf.extractfile(m)
                    files[name_] = data.read() if data is not None else b""
    return files


def layer_members(store: ImageStore, name: str, index: int) -> dict[str, tarfile.TarInfo]:
    """The tar members of layer ``index`` of image ``name``."""
    ref = store.resolve(name)
    manifest = json.loads(store.read_blob(ref.manifest_digest))
    blob = store.read_blob(manifest["layers"][index]["digest"])
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}
