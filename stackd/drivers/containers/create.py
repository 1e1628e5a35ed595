"""Assembling one container on the host, nothing started: its directory, the overlay root file
system, its volumes (made when missing and, when new, filled from the image at the mount target:
Docker's copy-up), copies of its secrets and configs, its network namespace and addresses, its
hosts/hostname/resolv.conf files, the OCI bundle and the records (``container.json``, the store).

Each step that changes the host registers its undo; when a later step fails, every undo runs
(newest first, each past the failures of the others) and the original error is raised: a failed
create leaves nothing behind. ``Parts`` holds the drivers a ``RealHost`` composes. Blocking.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stackd import labels
from stackd.drivers.containers import attach, dnsfiles, sharing
from stackd.drivers.containers.info import ContainerInfo, read_info, write_info
from stackd.drivers.containers.mounts import FileUse, SharedMount, VolumeUse, file_uses, volume_uses
from stackd.drivers.containers.networks import Networks
from stackd.drivers.containers.paths import ContainerPaths, HostLayout
from stackd.drivers.containers.request import EtcFiles, Identity, container_request, device_specs, stop_signal
from stackd.drivers.containers.rootfs import inside, mount_overlay, read_etc, unmount
from stackd.drivers.fsutil import remove_tree
from stackd.drivers.images import ImageNotFoundError, ImageRef, ImageStore
from stackd.drivers.network import links
from stackd.drivers.network.names import Naming, netns_path
from stackd.drivers.runtime import HOST, Device, HostLimits, oci_config, write_bundle
from stackd.drivers.runtime.host import device_from_path
from stackd.drivers.volumes import VolumeDriver
from stackd.errors import DriverError, PermanentDriverError
from stackd.spec.models import Config, Secret, Service, Stack
from stackd.store import Store, StoredContainer


@dataclass(frozen=True)
class HostFiles:
    """The host's own name-resolution files (tests point them elsewhere)."""

    resolv_conf: Path = Path("/etc/resolv.conf")
    upstream_resolv_conf: Path = Path("/run/systemd/resolve/resolv.conf")
    hosts: Path = Path("/etc/hosts")

    def read(self, path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""


@dataclass
class Parts:
    """The drivers and records one ``RealHost`` composes."""

    layout: HostLayout
    naming: Naming
    store: Store
    images: ImageStore
    volumes: VolumeDriver
    networks: Networks
    limits: Callable[[], HostLimits]
    init_binary: Callable[[], str | None]
    host_files: HostFiles = field(default_factory=HostFiles)


class Undo:
    """Undo actions, run newest first; each failure is kept, none stops the others."""

    def __init__(self) -> None:
        self._actions: list[Callable[[], object]] = []
        self.failures: list[BaseException] = []

    def push(self, action: Callable[[], object]) -> None:
        self._actions.append(action)

    def run(self) -> None:
        while self._actions:
            action = self._actions.pop()
            try:
                action()
            except Exception as exc:
                self.failures.append(exc)


@dataclass(frozen=True)
class _Net:
    netns_path: str
    netns: str | None = None
    joins: str | None = None
    files: ContainerPaths | None = None


def file_content(kind: str, source: str, defn: Secret | Config | None, service: str) -> bytes:
    """The bytes a secret or config holds: its file, its ``content`` or an environment variable."""
    if defn is None:
        raise PermanentDriverError(f"service {service}: {kind} {source} is not declared")
    if defn.external:
        raise PermanentDriverError(f"service {service}: external {kind}s ({source}) are not supported on "
                                   "this host; use file, environment or content")
    if isinstance(defn, Config) and defn.content is not None:
        return defn.content.encode()
    if defn.environment:
        return _from_environment(kind, source, defn, service)
    assert defn.file is not None
    try:
        return Path(defn.file).read_bytes()
    except OSError as exc:
        raise PermanentDriverError(f"service {service}: cannot read {kind} {source} from {defn.file}: "
                                   f"{exc.strerror or exc}") from exc


def _from_environment(kind: str, source: str, defn: Secret | Config, service: str) -> bytes:
    """The value of a secret's or config's ``environment:`` variable as the loader saw it (the
    model carries it as ``value`` once the loader fills it), else this process's, as long as its
    digest is the one the loader recorded (a value that changed since would be a surprise)."""
    carried = getattr(defn, "value", None)
    if isinstance(carried, str):
        return carried.encode()
    assert defn.environment is not None
    value = os.environ.get(defn.environment)
    if value is None:
        raise PermanentDriverError(f"service {service}: {kind} {source} comes from the environment "
                                   f"variable {defn.environment}, which is not set")
    if defn.digest and hashlib.sha256(value.encode()).hexdigest() != defn.digest:
        raise PermanentDriverError(f"service {service}: {kind} {source} comes from the environment variable "
                                   f"{defn.environment}, whose value here is not the one the stack was "
                                   "loaded with; run stack where that variable has its intended value")
    return value.encode()


class Assembler:
    """Creates containers (see the module docstring)."""

    def __init__(self, parts: Parts) -> None:
        self.p = parts

    def create(self, stack: Stack, service: str, number: int, name: str, *, image: str, config_hash: str,
               config_parts: dict[str, str], refresh: Callable[[], None]) -> ContainerInfo:
        """Assemble container ``name``; ``refresh`` rewrites the project's hosts files and nft
        table once the container's records exist (undone with the rest on failure)."""
        svc = stack.services.get(service)
        if svc is None:
            raise PermanentDriverError(f"no service {service} in stack {stack.name}")
        paths = self.p.layout.container(name)
        if paths.info.exists():  # the record is written last: without it, what is there is the
            raise PermanentDriverError(f"container {name} already exists")  # remains of a crash
        ref = self._image(service, image)
        undo = Undo()
        try:
            info = self._assemble(stack, svc, number, name, ref=ref, paths=paths, undo=undo,
                                  config_hash=config_hash, config_parts=config_parts)
            undo.push(lambda: paths.info.unlink(missing_ok=True))
            refresh()
            return info
        except BaseException:
            undo.run()
            with contextlib.suppress(DriverError, OSError):
                refresh()
            raise

    def _image(self, service: str, image: str) -> ImageRef:
        try:
            return self.p.images.resolve(image)
        except ImageNotFoundError as exc:
            raise PermanentDriverError(f"service {service}: image {image} is not in the image store "
                                       "(build or import it first)") from exc

    def _assemble(self, stack: Stack, svc: Service, number: int, name: str, *, ref: ImageRef,
                  paths: ContainerPaths, undo: Undo, config_hash: str, config_parts: dict[str, str]
                  ) -> ContainerInfo:
        if paths.dir.exists():  # the remains of a create cut short by a crash
            unmount(paths.rootfs)
            remove_tree(paths.dir)
        paths.dir.mkdir(mode=0o711, parents=True)
        undo.push(lambda: remove_tree(paths.dir))
        for d in (paths.upper, paths.work, paths.rootfs, paths.secrets, paths.configs):
            d.mkdir(mode=0o700 if d in (paths.secrets, paths.configs) else 0o755)
        lowers = ref.overlay_lowerdirs()
        if not lowers:
            paths.empty_lower.mkdir(mode=0o755)
            lowers = (paths.empty_lower,)
        mount_overlay(paths.rootfs, lowers, paths.upper, paths.work)
        undo.push(lambda: unmount(paths.rootfs))
        etc = EtcFiles(read_etc(paths.rootfs, "passwd"), read_etc(paths.rootfs, "group"))
        shared_from = self._shared_from(stack, svc)
        inherited = sharing.inherited_mounts(stack, svc, shared_from)
        uses = volume_uses(stack, svc, ref.config, name, inherited)
        self._volumes(stack, svc, uses, paths, undo)
        self._binds(svc)
        files = file_uses(svc)
        self._copy_files(stack, svc, files, paths)
        mode = attach.network_mode(stack, svc)
        net = self._network(stack, svc, name, mode, undo)
        attachments = self.p.networks.attach(name, net.netns, attach.wanted_networks(stack, svc),
                                             attach.gateway_key(stack, svc)) \
            if mode.kind == "networks" and net.netns else ()
        signal, explicit = stop_signal(svc, ref.config)
        joined = mode.kind == "networks"
        info = ContainerInfo(
            name=name, project=stack.name, service=svc.name, number=number, image=ref.name, image_id=ref.id,
            cgroups_path=paths.cgroups_path(stack.name, svc.group), hostname=svc.hostname or name,
            group=svc.group, network_mode=mode.kind, netns=net.netns, joins=mode.joins,
            attachments=attachments, gateway=attach.gateway_key(stack, svc) if joined else None,
            ports=attach.port_infos(svc) if joined else (),
            extra_hosts=attach.extra_host_pairs(svc),
            anonymous_volumes=tuple(u.volume for u in uses if u.key is None),
            stop_signal=signal, stop_signal_from_service=explicit, tty=bool(svc.tty),
            labels={k: v for k, v in svc.labels.items() if v is not None}, healthcheck=ref.config.healthcheck,
            shared_mounts=sharing.shared_mounts(svc, uses, paths, inherited))
        self._dns_files(svc, info, paths)
        identity = Identity(ref.name, ref.id, config_hash, config_parts)
        request = container_request(stack, svc.name, number, name, image=ref.config, paths=paths,
                                    netns=net.netns_path, identity=identity, etc=etc, net_files=net.files,
                                    init_binary=self.p.init_binary() if svc.init else None,
                                    devices=self._devices(svc), uses=uses, files=files,
                                    shared_from=shared_from)
        write_bundle(paths.bundle, oci_config(request, self.p.limits()))
        write_info(paths.info, info)
        self.p.store.put_container(StoredContainer(
            name=name, project=stack.name, service=svc.name, number=number, config_hash=config_hash,
            created_at=self.p.store.now(), config_parts=dict(config_parts), image_id=ref.id, group=svc.group))
        undo.push(lambda: self.p.store.remove_container(name))
        return info

    # ------------------------------------------------------------------------------ steps

    def _volumes(self, stack: Stack, svc: Service, uses: list[VolumeUse], paths: ContainerPaths,
                 undo: Undo) -> None:
        vols = self.p.volumes
        for use in uses:
            if not vols.exists(use.volume):
                if use.key is not None and names_external(stack, use.key):
                    raise PermanentDriverError(
                        f"service {svc.name}: external volume {use.volume} does not exist")
                owner = {labels.PROJECT: stack.name}
                extra = {labels.VOLUME: use.key} if use.key is not None else {labels.SERVICE: svc.name}
                vols.ensure(use.volume, {**owner, **extra})
                if use.key is None:
                    undo.push(functools.partial(vols.remove, use.volume))
            if not use.nocopy and not use.subpath:
                source = inside(paths.rootfs, use.target)
                if source is not None:
                    vols.populate_from(use.volume, source)
            if use.subpath and not (paths.volume_dir(use.volume) / use.subpath).is_dir():
                raise PermanentDriverError(
                    f"service {svc.name}: subpath {use.subpath} does not exist in volume {use.volume}")

    def _shared_from(self, stack: Stack, svc: Service) -> dict[str, tuple[SharedMount, ...] | None]:
        """What each container of ``volumes_from`` lends, for those that exist here."""
        out: dict[str, tuple[SharedMount, ...] | None] = {}
        for src in sharing.sources(stack, svc):
            other = read_info(self.p.layout.container(src.container).info)
            if other is not None:
                out[src.container] = other.shared_mounts
        return out

    def _binds(self, svc: Service) -> None:
        for v in svc.volumes:
            if v.type != "bind" or not v.source or os.path.exists(v.source):
                continue
            if v.bind is not None and v.bind.create_host_path:
                try:
                    os.makedirs(v.source, exist_ok=True)
                except OSError as exc:
                    raise PermanentDriverError(f"service {svc.name}: cannot create the bind source "
                                               f"{v.source}: {exc.strerror or exc}") from exc
            else:
                raise PermanentDriverError(f"service {svc.name}: bind source {v.source} does not exist")

    def _copy_files(self, stack: Stack, svc: Service, files: list[FileUse], paths: ContainerPaths) -> None:
        for f in files:
            table: Mapping[str, Secret] | Mapping[str, Config] = \
                stack.secrets if f.kind == "secret" else stack.configs
            defn = table.get(f.source)
            data = file_content(f.kind, f.source, defn, svc.name)
            target = (paths.secrets if f.kind == "secret" else paths.configs) / f.file
            target.write_bytes(data)
            os.chown(target, f.uid, f.gid)
            os.chmod(target, f.mode)

    def _network(self, stack: Stack, svc: Service, name: str, mode: attach.Mode, undo: Undo) -> _Net:
        if mode.kind == "host":
            return _Net(HOST)
        if mode.kind == "join":
            assert mode.joins is not None
            other = read_info(self.p.layout.container(mode.joins).info)
            if other is None or other.netns is None:
                raise PermanentDriverError(f"service {svc.name}: container {mode.joins}, whose network it "
                                           "shares, does not exist or has no network namespace of its own")
            return _Net(str(netns_path(other.netns)), joins=mode.joins,
                        files=self.p.layout.container(mode.joins))
        for wanted in attach.wanted_networks(stack, svc) if mode.kind == "networks" else ():
            if self.p.store.subnet(wanted.network) is None:
                raise PermanentDriverError(f"service {svc.name}: network {wanted.network} does not exist "
                                           "(create the stack's networks first)")
        netns = self.p.naming.netns(name)
        undo.push(lambda: self.p.networks.detach(name, netns))
        if mode.kind == "none":
            links.ensure_netns(netns)
        return _Net(str(netns_path(netns)), netns=netns)

    def _dns_files(self, svc: Service, info: ContainerInfo, paths: ContainerPaths) -> None:
        hf = self.p.host_files
        paths.hostname.write_text(dnsfiles.hostname_text(info))
        if info.network_mode == "join":
            return
        if info.network_mode == "host":
            resolv = hf.read(hf.resolv_conf)
        else:
            resolv = dnsfiles.render_resolv(hf.read(hf.resolv_conf),
                                            upstream=hf.read(hf.upstream_resolv_conf), dns=svc.dns,
                                            search=svc.dns_search, options=svc.dns_opt)
        paths.resolv_conf.write_text(resolv)
        paths.hosts.write_text(dnsfiles.hosts_text(info, [info], host_hosts=hf.read(hf.hosts)))

    def _devices(self, svc: Service) -> tuple[Device, ...]:
        out = []
        for host, target, perms in device_specs(svc):
            found = device_from_path(host)
            out.append(Device(target, found.type, found.major, found.minor, found.file_mode, found.uid,
                              found.gid, perms))
        return tuple(out)


def names_external(stack: Stack, key: str) -> bool:
    defn = stack.volumes.get(key)
    return bool(defn is not None and defn.external)
