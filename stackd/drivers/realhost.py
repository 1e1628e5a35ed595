"""``RealHost``: the ``HostDriver`` of this machine, composing the narrow drivers: images (the
image store), containers (``stackd.drivers.containers``: overlay root file systems, OCI bundles,
conmon-monitored processes), networks (bridges, veths, namespaces, IPAM leases kept in the
store, one nft table per project), cgroup groups, volumes, and the store.

Layout: see ``stackd.drivers.containers.paths`` (data root ``STACKD_DATA_ROOT`` or
/var/lib/stackd, run directory ``STACKD_RUN_DIR`` or /run/stackd). The OCI runtime (crun, else
runc) is found by probing once per boot (the answer is kept in the run directory), lazily, so
that commands that never touch a container do not pay for it.

Whenever a container or a network of a project is made or removed, every hosts file of the
project's containers is rewritten in place (so names follow a recreated container's new address)
and the project's nft table is rendered and applied in one transaction, under a per-project
lock file (threads and other stackd processes alike). Every method blocks: the executor calls
them from worker threads. Nothing here decides what should exist; it does what it is told and
reports what it finds. Failures are ``DriverError``s that name the service where there is one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from stackd import labels
from stackd.drivers import cgroups
from stackd.drivers.cgroups.paths import DEFAULT_ROOT as DEFAULT_CGROUP_ROOT
from stackd.drivers.cgroups.usage import CgroupUsage
from stackd.drivers.containers import dnsfiles, listing, teardown
from stackd.drivers.containers.create import Assembler, HostFiles, Parts
from stackd.drivers.containers.info import ContainerInfo, read_info
from stackd.drivers.containers.networks import Networks, write_in_place
from stackd.drivers.containers.paths import DATA_ENV, DEFAULT_DATA_ROOT, DEFAULT_RUN_DIR, RUN_ENV, HostLayout
from stackd.drivers.containers.process import START_CHECK, Processes
from stackd.drivers.containers.rootfs import is_mounted, mount_overlay
from stackd.drivers.host import ContainerRecord, ExecResult, ResourceRecord
from stackd.drivers.images import ImageNotFoundError, ImageStore
from stackd.drivers.images.fsutil import write_atomic
from stackd.drivers.monitor import exec_in as monitor_exec
from stackd.drivers.monitor.exec import EXEC_TIMEOUT
from stackd.drivers.network.ipam import DEFAULT_POOL
from stackd.drivers.network.names import DEFAULT as DEFAULT_NAMING
from stackd.drivers.network.names import Naming
from stackd.drivers.runtime import (
    ContainerNotFound,
    HostLimits,
    OciRuntime,
    RuntimeInfo,
    detect,
    probe_host_limits,
)
from stackd.drivers.volumes import VolumeDriver
from stackd.errors import DriverError, PermanentDriverError
from stackd.plan import names
from stackd.spec.models import Stack
from stackd.store import Store, StoredResource

INIT_CANDIDATES = ("/usr/bin/catatonit", "/usr/libexec/podman/catatonit", "/usr/bin/tini-static")
BUILDER_MODULE = "stackd.drivers.builder"


def find_init() -> str | None:
    """A static init for ``init: true``: catatonit (Debian's ``catatonit``) or tini-static (``tini``)."""
    return next((c for c in INIT_CANDIDATES if os.access(c, os.X_OK)), None)


class RealHost:
    """This host (implements ``stackd.drivers.host.HostDriver``; also ``container_stats``)."""

    def __init__(self, data_root: Path = DEFAULT_DATA_ROOT, run_dir: Path = DEFAULT_RUN_DIR, *,
                 naming: Naming = DEFAULT_NAMING, cgroup_root: str = DEFAULT_CGROUP_ROOT,
                 runtime: RuntimeInfo | None = None, conmon: str | None = None,
                 pool: IPv4Network = DEFAULT_POOL, host_files: HostFiles | None = None,
                 start_check: float = START_CHECK, init_binary: str | None = None) -> None:
        self.layout = HostLayout(Path(data_root), Path(run_dir), cgroup_root)
        self.naming = naming
        self.store = Store(self.layout.store_path)
        self._lock = threading.Lock()
        self._runtime_info = runtime
        self._runtime: OciRuntime | None = None
        self._limits: HostLimits | None = None
        self._cgroups: cgroups.CgroupDriver | None = None
        self._init_binary = init_binary
        self.networks = Networks(self.store, self.layout, naming, pool)
        self.parts = Parts(self.layout, naming, self.store, ImageStore(self.layout.data_root),
                           VolumeDriver(self.layout.volumes_dir), self.networks, self.limits,
                           lambda: self._init_binary or find_init(), host_files or HostFiles())
        self.processes = Processes(self.layout, self.runtime, conmon, start_check)
        self.assembler = Assembler(self.parts)

    @classmethod
    def from_env(cls) -> RealHost:
        """The host at ``$STACKD_DATA_ROOT`` / ``$STACKD_RUN_DIR`` (or the defaults)."""
        return cls(Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT),
                   Path(os.environ.get(RUN_ENV) or DEFAULT_RUN_DIR))

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------------------ lazily found

    def runtime(self) -> OciRuntime:
        """The OCI runtime, probed once per boot (kept in ``<run>/runtime.json``)."""
        with self._lock:
            if self._runtime is None:
                info = self._runtime_info or self._cached_runtime()
                if info is None:
                    info = detect()
                    self.layout.run_dir.mkdir(parents=True, exist_ok=True)
                    write_atomic(self.layout.runtime_cache, json.dumps(dataclasses.asdict(info)).encode())
                self._runtime = OciRuntime(info, root=self.layout.runtime_root / info.name)
            return self._runtime

    def _cached_runtime(self) -> RuntimeInfo | None:
        try:
            info = RuntimeInfo(**json.loads(self.layout.runtime_cache.read_bytes()))
        except (OSError, ValueError, TypeError):
            return None
        return info if os.access(info.path, os.X_OK) else None

    def limits(self) -> HostLimits:
        with self._lock:
            if self._limits is None:
                self._limits = probe_host_limits()
            return self._limits

    def cgroups(self) -> cgroups.CgroupDriver:
        with self._lock:
            if self._cgroups is None:
                self._cgroups = cgroups.CgroupDriver(cgroups.detect(), root=self.layout.cgroup_root)
            return self._cgroups

    # ------------------------------------------------------------------------------ project state

    @contextlib.contextmanager
    def _project_lock(self, project: str) -> Iterator[None]:
        path = self.layout.lock_file(project)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def refresh(self, project: str) -> None:
        """Rewrite every hosts file of the project's containers and apply its nft table."""
        with self._project_lock(project):
            infos = list(listing.infos(self.layout, project))
            hf = self.parts.host_files
            host_hosts = hf.read(hf.hosts)
            for info in infos:
                if info.network_mode != "join":
                    write_in_place(self.layout.container(info.name).hosts,
                                   dnsfiles.hosts_text(info, infos, host_hosts=host_hosts))
            self.networks.apply_table(project, infos)

    def _info(self, name: str) -> ContainerInfo:
        info = read_info(self.layout.container(name).info)
        if info is None:
            raise PermanentDriverError(f"no such container: {name}")
        return info

    # ------------------------------------------------------------------------------ images

    def image_id(self, ref: str) -> str | None:
        try:
            return str(self.parts.images.resolve(ref).id)
        except ImageNotFoundError:
            return None

    def build_image(self, stack: Stack, service: str, ref: str) -> str:
        """Build the service's image with the image builder (``stackd.drivers.builder``)."""
        build = stack.services[service].build
        if build is None or not build.context:
            raise PermanentDriverError(f"service {service}: no build section to build image {ref} from")
        try:
            builder: Any = importlib.import_module(BUILDER_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name != BUILDER_MODULE:
                raise
            raise PermanentDriverError(f"service {service}: cannot build image {ref}: this stackd has no "
                                       "image builder; build the image elsewhere and import it") from None
        from stackd.drivers.builder.request import build_kwargs

        built = builder.build_image(self.parts.images, self.runtime(), limits=self.limits(),
                                    **build_kwargs(stack.services[service], [ref]))
        return str(built.id)

    # ------------------------------------------------------------------------------ groups

    def ensure_group(self, stack: Stack, group: str, config_hash: str) -> None:
        declared = stack.groups.get(group)
        if declared is None:
            raise PermanentDriverError(f"group {group} is not declared in stack {stack.name}")
        limits = cgroups.GroupLimits.of(declared)
        cg = self.cgroups()
        cg.ensure_group(stack.name, group, limits)
        path = self.layout.group_file(stack.name, group)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(dataclasses.asdict(limits), sort_keys=True).encode())
        self.store.put_resource(StoredResource("group", stack.name, group, cg.group_path(stack.name, group),
                                               config_hash))

    def remove_group(self, project: str, group: str) -> None:
        cg = self.cgroups()
        cg.remove_group(project, group)
        self.store.remove_resource("group", project, group)
        self.layout.group_file(project, group).unlink(missing_ok=True)
        if not cg.list_groups(project):
            cg.remove_project(project)

    def list_groups(self, project: str) -> list[ResourceRecord]:
        cg = self.cgroups()
        out = []
        for res in self.store.resources(project, "group"):
            observed = cg.read_group(project, res.key)
            if observed is None:
                continue
            try:
                saved = json.loads(self.layout.group_file(project, res.key).read_bytes())
                wanted = cgroups.GroupLimits(**saved)
            except (OSError, ValueError, TypeError):
                wanted = None
            same = wanted is not None and not cgroups.drift(wanted, observed, cg.page_size)
            out.append(ResourceRecord(res.key, res.name, res.config_hash if same else ""))
        return out

    # ------------------------------------------------------------------------------ networks

    def ensure_network(self, stack: Stack, key: str, name: str, config_hash: str) -> None:
        defn = names.stack_networks(stack).get(key)
        if names.is_external(defn):
            if self.store.subnet(name) is None:
                raise PermanentDriverError(f"external network {name} does not exist (no stack on this host "
                                           "has created it)")
            return
        pools = [p.model_dump(exclude_none=True) for p in defn.ipam.config] if defn and defn.ipam else []
        driver = names.get(defn, "driver")
        if driver not in (None, "bridge"):
            raise PermanentDriverError(f"network {name}: driver {driver!r} is not supported (only bridge)")
        with self._project_lock(stack.name):
            self.networks.ensure(stack.name, key, name, pools, internal=bool(names.get(defn, "internal")),
                                 config_hash=config_hash)
        self.refresh(stack.name)

    def remove_network(self, project: str, name: str) -> None:
        with self._project_lock(project):
            self.networks.remove(project, name)
        self.refresh(project)

    def list_networks(self, project: str) -> list[ResourceRecord]:
        return [ResourceRecord(res.key, res.name, res.config_hash if intact else "")
                for res, intact in self.networks.records(project)]

    # ------------------------------------------------------------------------------ volumes

    def ensure_volume(self, stack: Stack, key: str, name: str) -> None:
        defn = stack.volumes.get(key)
        vols = self.parts.volumes
        if defn is not None and defn.external:
            if not vols.exists(name):
                raise PermanentDriverError(f"external volume {name} does not exist")
            return
        if defn is not None and (defn.driver not in (None, "local") or defn.driver_opts):
            raise PermanentDriverError(f"volume {name}: only the local driver without options is supported")
        given = {k: v for k, v in (defn.labels if defn else {}).items() if v is not None}
        vols.ensure(name, {**given, labels.PROJECT: stack.name, labels.VOLUME: key})
        self.store.put_resource(StoredResource("volume", stack.name, key, name))

    def remove_volume(self, project: str, name: str) -> None:
        self.parts.volumes.remove(name)
        for res in self.store.resources(project, "volume"):
            if res.name == name:
                self.store.remove_resource("volume", project, res.key)

    def list_volumes(self, project: str) -> list[ResourceRecord]:
        return [ResourceRecord(v.labels[labels.VOLUME], v.name)
                for v in self.parts.volumes.list(project=project) if labels.VOLUME in v.labels]

    # ------------------------------------------------------------------------------ containers

    def create_container(self, stack: Stack, service: str, number: int, name: str, *, image: str,
                         config_hash: str, config_parts: Mapping[str, str]) -> None:
        self.assembler.create(stack, service, number, name, image=image, config_hash=config_hash,
                              config_parts=dict(config_parts), refresh=lambda: self.refresh(stack.name))

    def start_container(self, name: str) -> None:
        info = self._info(name)
        paths = self.layout.container(name)
        if not is_mounted(paths.rootfs):  # the host rebooted since the create
            ref = self.parts.images.resolve(info.image_id)
            lowers = ref.overlay_lowerdirs() or (paths.empty_lower,)
            mount_overlay(paths.rootfs, lowers, paths.upper, paths.work)
        if info.network_mode == "networks":
            self.networks.reattach(info)
        self.processes.start(info)

    def stop_container(self, name: str, *, timeout: float, signal: str) -> None:
        info = self._info(name)
        if not info.stop_signal_from_service and signal.upper().removeprefix("SIG") in ("TERM", "15"):
            signal = info.stop_signal  # the image's StopSignal, which the caller does not know
        self.processes.stop(info, timeout=timeout, signal=signal)

    def kill_container(self, name: str, signal: str) -> None:
        self.processes.kill(self._info(name), signal)

    def remove_container(self, name: str, *, volumes: bool) -> None:
        failures: list[Exception] = []
        info = None
        try:
            info = teardown.remove(self.parts, self.processes, name, volumes=volumes)
        except DriverError as exc:
            failures.append(exc)
            info = read_info(self.layout.container(name).info)
        if info is not None:
            try:
                self.refresh(info.project)
            except DriverError as exc:
                failures.append(exc)
        teardown.raise_all(f"removing container {name}", failures)

    def list_containers(self, project: str | None = None) -> list[ContainerRecord]:
        infos = list(listing.infos(self.layout, project))
        if not infos:
            return []
        states = {str(d.get("id")): d for d in self.runtime().list()}
        stored = {c.name: c for c in self.store.containers(project)}
        out = []
        for info in infos:
            annotations = listing.annotations_of(self.layout, info.name)
            if project is not None and annotations.get(labels.PROJECT, info.project) != project:
                continue
            mc = self.processes.monitored(info.name)
            try:
                finished: float | None = mc.exit_file.stat().st_mtime
            except OSError:
                finished = None
            out.append(listing.record(info, annotations, runtime=states.get(info.name),
                                      exit_code=mc.exit_code(), finished=finished,
                                      stored=stored.get(info.name)))
        return out

    def exec_in(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                user: str | None = None, timeout: float | None = None) -> ExecResult:
        info = self._info(name)
        try:
            done = monitor_exec(self.runtime(), name, argv, env=dict(env or {}), user=user,
                                timeout=timeout if timeout is not None else EXEC_TIMEOUT)
        except ContainerNotFound as exc:
            raise PermanentDriverError(f"service {info.service}: container {name} is not running") from exc
        return ExecResult(done.exit_code, done.stdout, done.stderr)

    def log_path(self, name: str) -> str:
        return str(self.layout.container(name).log)

    def container_stats(self, name: str) -> CgroupUsage | None:
        info = read_info(self.layout.container(name).info)
        if info is None:
            return None
        return self.cgroups().stats(info.cgroups_path)
