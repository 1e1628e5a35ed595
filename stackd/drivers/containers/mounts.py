"""A service's mounts with Docker's semantics, as data: which volumes it uses (named, anonymous,
and the image's ``VOLUME``s no mount covers), which secret and config files it needs, and the
OCI mounts of all of it plus the container's hosts, hostname and resolv.conf files.

- named volumes are ``<data>/volumes/<name>/_data`` (``volume.subpath`` below it);
- an anonymous volume (no ``source``, or an image ``VOLUME``) is named after the container and
  its target, so that a recreated container of the same name finds it again (Compose keeps
  anonymous volumes across a recreate) and ``remove_container(volumes=True)`` knows it;
- binds keep their options (read-only, propagation, non-recursive);
- ``volumes_from`` mounts (``SharedMount``s of another container, see ``sharing``) come first and
  yield to any mount of the service's own at the same target; their targets need no image volume;
- secrets are mounted read-only at ``/run/secrets/<target or source>``, configs at their target
  (``/<source>`` by default), both from copies under the container's directory.

Pure: no file is read or written here; mistakes are ``PermanentDriverError``s naming the service.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from stackd.drivers.containers.paths import ContainerPaths
from stackd.drivers.images.config import ImageConfig
from stackd.drivers.runtime.request import Mount
from stackd.errors import PermanentDriverError
from stackd.plan import names
from stackd.spec.models import FileRef, Service, ServiceVolume, Stack
from stackd.spec.units import parse_bytes

SECRETS_DIR = "/run/secrets"
INIT_PATH = "/run/stackd-init"
"""Where the init binary (``init: true``) is mounted in the container."""
_PROPAGATION = {"shared", "slave", "private", "rshared", "rslave", "rprivate"}
_TMPFS_FLAGS = ("rw", "noexec", "nosuid", "nodev")


@dataclass(frozen=True)
class VolumeUse:
    """One volume the container mounts: the host volume name, where, and how."""

    volume: str
    target: str
    key: str | None = None
    """the volume's key in the stack; ``None`` for an anonymous volume"""
    read_only: bool = False
    nocopy: bool = False
    subpath: str | None = None


@dataclass(frozen=True)
class SharedMount:
    """A volume or bind of a container as ``volumes_from`` passes it on: where it is mounted, the
    host path it comes from, its bind options (``ro`` among them when read-only) and, for a
    volume, the volume's name."""

    target: str
    source: str
    options: tuple[str, ...] = ("rbind",)
    volume: str | None = None

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    def mount(self) -> Mount:
        return Mount(self.target, self.source, "bind", self.options)


@dataclass(frozen=True)
class FileUse:
    """A secret or config the container gets: where its copy goes (a file name under the
    container's ``secrets``/``configs`` directory), where it is mounted, and its owner and mode."""

    kind: str
    """``secret`` or ``config``"""
    source: str
    file: str
    target: str
    uid: int = 0
    gid: int = 0
    mode: int = 0o444


def anonymous_volume_name(container: str, target: str) -> str:
    """The name of ``container``'s anonymous volume at ``target``."""
    digest = hashlib.sha256(posixpath.normpath(target).encode()).hexdigest()[:12]
    return f"{container}-anon-{digest}"


def _norm(path: str) -> str:
    return posixpath.normpath(path) if path.startswith("/") else path


def volume_uses(stack: Stack, svc: Service, image: ImageConfig, container: str,
                inherited: Sequence[SharedMount] = ()) -> list[VolumeUse]:
    """The volumes container ``container`` of ``svc`` mounts, in the service's order, then the
    image's ``VOLUME``s that no mount of the service nor an ``inherited`` one covers."""
    uses: list[VolumeUse] = []
    for v in svc.volumes:
        if v.type != "volume":
            continue
        nocopy = bool(v.volume and v.volume.nocopy)
        subpath = v.volume.subpath if v.volume else None
        if v.source:
            if v.source not in stack.volumes:
                raise PermanentDriverError(f"service {svc.name}: volume {v.source} is not declared "
                                           "under the top-level volumes")
            uses.append(VolumeUse(names.volume_name(stack, v.source), v.target, v.source,
                                  bool(v.read_only), nocopy, subpath))
        else:
            uses.append(VolumeUse(anonymous_volume_name(container, v.target), v.target,
                                  read_only=bool(v.read_only), nocopy=nocopy))
    covered = {_norm(v.target) for v in svc.volumes} | {_norm(m.target) for m in inherited}
    for path in image.volumes:
        if _norm(path) not in covered and path.startswith("/"):
            uses.append(VolumeUse(anonymous_volume_name(container, path), _norm(path)))
    return uses


def _octal(mode: int | None, default: int) -> int:
    return default if mode is None else mode


def _number(value: str | None, what: str, service: str) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit():
        raise PermanentDriverError(f"service {service}: {what} {value!r} must be a number")
    return int(value)


def file_uses(svc: Service) -> list[FileUse]:
    """The secrets and configs of ``svc`` (copies are named by position, so one source may be
    mounted twice with different targets or modes)."""
    out: list[FileUse] = []
    for kind, refs in (("secret", svc.secrets), ("config", svc.configs)):
        for i, ref in enumerate(refs):
            out.append(_file_use(kind, i, ref, svc.name))
    return out


def _file_use(kind: str, i: int, ref: FileRef, service: str) -> FileUse:
    if kind == "secret":
        target = ref.target or ref.source
        target = target if target.startswith("/") else posixpath.join(SECRETS_DIR, target)
    else:
        target = ref.target or f"/{ref.source}"
        target = target if target.startswith("/") else f"/{target}"
    return FileUse(kind, ref.source, f"{i}_{ref.source}", posixpath.normpath(target),
                   _number(ref.uid, f"{kind} {ref.source} uid", service),
                   _number(ref.gid, f"{kind} {ref.source} gid", service), _octal(ref.mode, 0o444))


def volume_source(svc: Service, use: VolumeUse, paths: ContainerPaths) -> str:
    """The host path a volume use mounts (its ``subpath`` below the volume's data)."""
    source = paths.volume_dir(use.volume)
    if use.subpath:
        sub = posixpath.normpath(use.subpath)
        if sub.startswith(("/", "..")):
            raise PermanentDriverError(f"service {svc.name}: volume subpath {use.subpath!r} must stay "
                                       "inside the volume")
        source = source / sub
    return str(source)


def bind_mount(v: ServiceVolume, svc: Service) -> Mount:
    assert v.source is not None
    options: list[str] = []
    recursive = v.bind.recursive if v.bind else None
    options.append("bind" if recursive == "disabled" else "rbind")
    if v.read_only or recursive == "readonly":
        options.append("ro")
    propagation = v.bind.propagation if v.bind else None
    if propagation in _PROPAGATION:
        options.append(propagation)
    if not v.source.startswith("/"):
        raise PermanentDriverError(f"service {svc.name}: bind source {v.source!r} is not an absolute path")
    return Mount(_norm(v.target), v.source, "bind", tuple(options))


def _tmpfs_mount(v: ServiceVolume) -> Mount:
    options = ["nosuid", "nodev"]
    if v.read_only:
        options.append("ro")
    if v.tmpfs is not None and v.tmpfs.size is not None:
        options.append(f"size={parse_bytes(v.tmpfs.size)}")
    if v.tmpfs is not None and v.tmpfs.mode is not None:
        options.append(f"mode={v.tmpfs.mode:o}")
    return Mount(_norm(v.target), "tmpfs", "tmpfs", tuple(options))


def tmpfs_flag_mount(spec: str) -> Mount:
    """``services.*.tmpfs`` entries: ``/path`` or ``/path:opt,opt`` (Docker's ``--tmpfs``)."""
    path, _, opts = spec.partition(":")
    extra = tuple(o for o in opts.split(",") if o)
    flags = tuple(f for f in _TMPFS_FLAGS if not any(o.split("=")[0] == f for o in extra))
    return Mount(_norm(path), "tmpfs", "tmpfs", (*flags, *extra))


def service_mounts(svc: Service, uses: Sequence[VolumeUse], files: Sequence[FileUse],
                   paths: ContainerPaths, *, net_files: ContainerPaths,
                   init_binary: str | None = None, inherited: Sequence[SharedMount] = ()
                   ) -> tuple[Mount, ...]:
    """Every mount of the container (``spec.oci_config`` adds /proc, /dev and the rest):
    ``inherited`` (``volumes_from``), volumes, binds, tmpfs, secrets and configs, the init
    binary, and hosts/hostname/resolv.conf (those of ``net_files``: the container's own, or
    those of the container whose network namespace it joins)."""
    mounts: list[Mount] = []
    for use in uses:
        mounts.append(Mount(_norm(use.target), volume_source(svc, use, paths),
                            "bind", ("rbind", "ro") if use.read_only else ("rbind",)))
    for v in svc.volumes:
        if v.type == "bind":
            mounts.append(bind_mount(v, svc))
        elif v.type == "tmpfs":
            mounts.append(_tmpfs_mount(v))
        elif v.type != "volume":
            raise PermanentDriverError(f"service {svc.name}: `{v.type}` mounts are not supported on this "
                                       "host (use bind, volume or tmpfs)")
    mounts.extend(tmpfs_flag_mount(spec) for spec in svc.tmpfs)
    for f in files:
        folder = paths.secrets if f.kind == "secret" else paths.configs
        mounts.append(Mount(f.target, str(folder / f.file), "bind", ("rbind", "ro")))
    if init_binary is not None:
        mounts.append(Mount(INIT_PATH, init_binary, "bind", ("rbind", "ro")))
    taken = {m.destination for m in mounts}
    mounts[:0] = [m.mount() for m in inherited if _norm(m.target) not in taken]
    taken = {m.destination for m in mounts}
    for destination, source in (("/etc/hosts", net_files.hosts), ("/etc/hostname", paths.hostname),
                                ("/etc/resolv.conf", net_files.resolv_conf)):
        if destination not in taken:
            mounts.append(Mount(destination, str(source), "bind", ("rbind",)))
    targets = [m.destination for m in mounts]
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise PermanentDriverError(f"service {svc.name}: more than one mount at {', '.join(twice)}")
    return tuple(mounts)
