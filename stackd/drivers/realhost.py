"""``RealHost``: the ``HostDriver`` of this machine, composing the narrow drivers: images (the
image store), containers (``stackd.drivers.containers``: overlay root file systems, OCI bundles,
conmon-monitored processes), networks (bridges, veths, namespaces, IPAM leases kept in the
store, one nft table per project), cgroup groups, volumes, and the store. The project-wide half
(groups, networks, volumes, ``refresh``) is its base class ``StackResources``.

Layout: see ``stackd.drivers.containers.paths`` (data root ``STACKD_DATA_ROOT`` or
/var/lib/stackd, run directory ``STACKD_RUN_DIR`` or /run/stackd). The OCI runtime (crun, else
runc) is found by probing once per boot (the answer is kept in the run directory), lazily, so
that commands that never touch a container do not pay for it. ``require_root`` is what a
caller checks before it makes a ``RealHost`` (whose store lives where only root may write);
``host_problems`` names every kernel feature or tool that is missing (``containers.hostcheck``).

Whenever a container or a network of a project is made or removed, the hosts files of the
project's containers are brought up to date in place (so names follow a recreated container's
new address) and the project's nft table is rendered and applied in one transaction, under a
per-project lock file (threads and other stackd processes alike); concurrent requests share one
refresh (``StackResources.refresh``). Starting a container brings its network endpoints back
first (after a reboot, or when someone deleted them), except right after this ``RealHost``
created it, when they were just made. ``repair_drift`` puts back what was changed behind
stackd's back on a running stack (``containers.drift``), under the same per-project lock. A
container that publishes ports is
created under a host-wide lock, after checking that no listening socket and no other container
holds them (``containers.ports``). Every method blocks: the executor calls them from worker
threads. Nothing here decides what should exist; it does what it is told and reports what it
finds. Failures are ``DriverError``s that name the service where there is one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import os
import threading
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, TypeVar, cast

from stackd import labels
from stackd.drivers import cgroups
from stackd.drivers.cgroups.paths import DEFAULT_ROOT as DEFAULT_CGROUP_ROOT
from stackd.drivers.cgroups.usage import CgroupUsage
from stackd.drivers.containers import hostcheck, listing, ports, teardown
from stackd.drivers.containers.create import Assembler, HostFiles, Parts
from stackd.drivers.containers.drift import DriftRepair
from stackd.drivers.containers.health import read_health, write_health
from stackd.drivers.containers.info import ContainerInfo, read_info
from stackd.drivers.containers.networks import Networks
from stackd.drivers.containers.paths import DATA_ENV, DEFAULT_DATA_ROOT, DEFAULT_RUN_DIR, RUN_ENV, HostLayout
from stackd.drivers.containers.process import START_CHECK, Processes
from stackd.drivers.containers.rootfs import is_mounted, mount_overlay
from stackd.drivers.containers.stackres import StackResources
from stackd.drivers.fsutil import write_atomic
from stackd.drivers.host import ContainerRecord, ExecResult, HealthRecord, Repair
from stackd.drivers.images import ImageNotFoundError, ImageStore
from stackd.drivers.monitor import exec_in as monitor_exec
from stackd.drivers.monitor.exec import EXEC_TIMEOUT
from stackd.drivers.monitor.monitor import read_exit_code
from stackd.drivers.network.ipam import DEFAULT_POOL
from stackd.drivers.network.links import read_sysctl
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
from stackd.errors import DriverError, PermanentDriverError, needs_root
from stackd.spec.models import Stack
from stackd.store import Store, StoredContainer

INIT_CANDIDATES = ("/usr/bin/catatonit", "/usr/libexec/podman/catatonit", "/usr/bin/tini-static")
BUILDER_MODULE = "stackd.drivers.builder"


def find_init() -> str | None:
    """A static init for ``init: true``: catatonit (Debian's ``catatonit``) or tini-static (``tini``)."""
    return next((c for c in INIT_CANDIDATES if os.access(c, os.X_OK)), None)


def require_root(verb: str, euid: int | None = None) -> None:
    """Refuse, in one line naming the verb, to go on when not root (before anything is touched)."""
    if (os.geteuid() if euid is None else euid) != 0:
        raise PermanentDriverError(needs_root(verb))


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _changes_containers(method: _Method) -> _Method:
    """A method after which what the runtime lists has to be asked again."""
    @functools.wraps(method)
    def wrapped(self: RealHost, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        finally:
            self._states.forget()

    return cast(_Method, wrapped)


class RealHost(StackResources):
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
        self._problems: list[str] | None = None
        self._refreshes = {}
        self._fresh: set[str] = set()  # created by this RealHost and not started since
        self._annotations: listing.ConfigCache = {}  # each container's OCI config, see listing
        self.networks = Networks(self.store, self.layout, naming, pool)
        self.parts = Parts(self.layout, naming, self.store, ImageStore(self.layout.data_root),
                           VolumeDriver(self.layout.volumes_dir), self.networks, self.limits,
                           lambda: self._init_binary or find_init(), host_files or HostFiles())
        self.processes = Processes(self.layout, self.runtime, conmon, start_check)
        self.assembler = Assembler(self.parts)
        self._infos = listing.InfoCache()  # container.json of each container, while unchanged
        self._records: dict[str, tuple[ContainerInfo, tuple[object, ...], ContainerRecord]] = {}
        self._states = listing.RuntimeStates(self.runtime, lambda: (
            self.layout.containers_dir, self.layout.exit_dir, self.runtime().root))
        self.drift_repair = DriftRepair(self.layout, self.store, self.networks, self.cgroups,
                                        infos=self._infos, states=self._states, configs=self._annotations)

    @classmethod
    def from_env(cls) -> RealHost:
        """The host at ``$STACKD_DATA_ROOT`` / ``$STACKD_RUN_DIR`` (or the defaults)."""
        return cls(Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT),
                   Path(os.environ.get(RUN_ENV) or DEFAULT_RUN_DIR))

    def close(self) -> None:
        self.drift_repair.limit_watch.close()
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

    def _info(self, name: str) -> ContainerInfo:
        info = read_info(self.layout.container(name).info)
        if info is None:
            raise PermanentDriverError(f"no such container: {name}")
        return info

    # ------------------------------------------------------------------------------ the host

    def host_problems(self) -> list[str]:
        """What this host lacks to run containers (found once per ``RealHost``)."""
        with self._lock:
            if self._problems is None:
                self._problems = hostcheck.problems(hostcheck.gather())
            return list(self._problems)

    def port_conflicts(self, stack: Stack, containers: Sequence[tuple[str, str]], *,
                       replacing: Collection[str] = ()) -> list[str]:
        sockets = ports.read_sockets()
        relevant = ports.relevant_sockets(stack, containers, sockets)
        owners = ports.socket_owners(s.inode for s in relevant) if relevant else {}
        going = set(replacing) | {name for _, name in containers}
        infos = list(listing.infos(self.layout))
        claims = ports.claims_of((i for i in infos if i.name not in going), stack.name)
        # the nft tables of this host's own projects are covered by their containers' records
        ours = {self.naming.table(p) for p in {i.project for i in infos} | {stack.name}}
        claims += ports.nat_claims(ports.read_ruleset(), skip_tables=ours)
        return ports.stack_conflicts(stack, containers, claims=claims, sockets=relevant, owners=owners)

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

    # ------------------------------------------------------------------------------ containers

    @_changes_containers
    def create_container(self, stack: Stack, service: str, number: int, name: str, *, image: str,
                         config_hash: str, config_parts: Mapping[str, str]) -> None:
        publishes = bool(stack.services.get(service) and ports.published_by(stack, service))
        claim = self._file_lock(self.layout.ports_lock_file) if publishes else contextlib.nullcontext()
        with claim:  # nobody claims the same ports between the check and the container's record
            if publishes:
                problems = self.port_conflicts(stack, [(service, name)])
                if problems:
                    raise PermanentDriverError("\n".join(problems))
            self.assembler.create(stack, service, number, name, image=image, config_hash=config_hash,
                                  config_parts=dict(config_parts), refresh=lambda: self.refresh(stack.name))
        with self._lock:
            self._fresh.add(name)

    @_changes_containers
    def start_container(self, name: str, *, watch_exit: bool = True) -> None:
        info = self._info(name)
        paths = self.layout.container(name)
        if not is_mounted(paths.rootfs):  # the host rebooted since the create
            ref = self.parts.images.resolve(info.image_id)
            lowers = ref.overlay_lowerdirs() or (paths.empty_lower,)
            mount_overlay(paths.rootfs, lowers, paths.upper, paths.work)
        with self._lock:
            fresh = name in self._fresh
            self._fresh.discard(name)
        if info.network_mode == "networks" and not fresh:  # a fresh container's endpoints were just made
            self.networks.reattach(info)
        self.processes.start(info, fresh=fresh, watch_exit=watch_exit)

    @_changes_containers
    def stop_container(self, name: str, *, timeout: float, signal: str | None = None) -> None:
        info = self._info(name)
        # no signal given: the container's own (its service's stop_signal, else its image's StopSignal)
        self.processes.stop(info, timeout=timeout, signal=signal or info.stop_signal)

    @_changes_containers
    def kill_container(self, name: str, signal: str) -> None:
        self.processes.kill(self._info(name), signal)

    @_changes_containers
    def remove_container(self, name: str, *, volumes: bool) -> None:
        with self._lock:
            self._fresh.discard(name)
            self._records.pop(name, None)
            self._annotations.pop(name, None)
        self.drift_repair.forget_container(name)
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

    def container_infos(self) -> list[ContainerInfo]:
        """The driver's record of every container on the host (kept while unchanged)."""
        return list(listing.infos(self.layout, None, self._infos))

    def list_containers(self, project: str | None = None) -> list[ContainerRecord]:
        infos = list(listing.infos(self.layout, project, self._infos))
        if not infos:
            return []
        states = self._states.get({i.name for i in infos})
        stored = {c.name: c for c in self.store.containers(project)}
        now = datetime.now(UTC)
        out = []
        for info in infos:
            annotations = listing.annotations_of(self.layout, info.name, self._annotations)
            if project is not None and annotations.get(labels.PROJECT, info.project) != project:
                continue
            out.append(self._record(info, annotations, states.get(info.name), stored.get(info.name), now))
        return out

    def _record(self, info: ContainerInfo, annotations: dict[str, str], runtime: dict[str, Any] | None,
                stored: StoredContainer | None, now: datetime) -> ContainerRecord:
        """One container's record, made again only when something it is made of changed (its
        info, config, runtime state, exit file, health file, store row, or a backoff passing)."""
        try:  # conmon's exit file, when the container has ended
            finished: float | None = os.stat(os.path.join(self.layout.exit_dir, info.name)).st_mtime
        except OSError:
            finished = None
        health = self.layout.container(info.name).health
        try:
            st = os.stat(health)
            health_stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            health_stamp = None
        config = self._annotations.get(info.name)
        backoff = stored.backoff_until if stored is not None else None
        key = (config[0] if config else None, runtime, finished, health_stamp, stored,
               backoff is not None and backoff > now)
        kept = self._records.get(info.name)
        if kept is not None and kept[0] is info and kept[1] == key:
            return kept[2]
        exit_code = None if finished is None else read_exit_code(self.layout.exit_dir, info.name)
        record = listing.record(info, annotations, runtime=runtime, exit_code=exit_code, finished=finished,
                                stored=stored, health=read_health(health) if health_stamp else None, now=now)
        self._records[info.name] = (info, key, record)
        return record

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

    def record_health(self, name: str, record: HealthRecord) -> None:
        write_health(self.layout.container(name).health, record)

    def container_stats(self, name: str) -> CgroupUsage | None:
        info = read_info(self.layout.container(name).info)
        if info is None:
            return None
        return self.cgroups().stats(info.cgroups_path)

    def group_stats(self, project: str, group: str) -> CgroupUsage | None:
        driver = self.cgroups()
        return driver.stats(driver.group_path(project, group))

    # ------------------------------------------------------------------------------ drift

    def stamp(self, project: str) -> Hashable | None:
        """What a pass of ``project`` looks at, in a few stats and reads: the store's version;
        the runtime's and conmon's directories and this driver's changes (``RuntimeStates``);
        the runtime's list (its version: it changes when the list does), asked again when a
        process of the project's running containers is gone (or its list is old); no limit
        written in their cgroups or its groups' (``LimitWatch``); the inodes of its groups'
        directories; the image index; the volumes directory; ``ip_forward``. Links and nft
        tables are not in it: their changes come as events. None: something changed too
        recently to tell, or a limit was written."""
        runtime = self._states.stamp()
        if runtime is None:
            return None
        names = {name for name, kept in list(self._records.items()) if kept[2].project == project}
        self._states.get(names)  # the runtime is asked again when a process of these is gone
        groups = [res.key for res in self.store.resources(project, "group")]
        watch = self.drift_repair.limit_watch
        if watch.pending(names | {watch.group_key(project, g) for g in groups}):
            return None
        volumes = listing.dir_stamp(self.parts.volumes.root)
        if volumes is not None and volumes[1]:
            return None
        try:
            st = os.stat(self.parts.images.index_path)
            index: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            index = None
        try:
            forward: str | None = read_sysctl("net.ipv4.ip_forward")
        except DriverError:
            forward = None
        return (self.store.version(), runtime, self._states.version, tuple(sorted(names)),
                tuple(self.drift_repair.groups.dirs(project, g) for g in groups), index, volumes, forward)

    def repair_drift(self, stack: Stack, *, deep: bool = False, table: bool = False,
                     links: bool = True) -> list[Repair]:
        """Put back what drifted on the host objects of ``stack`` (``containers.drift``), holding
        the project's lock so that no container of the project is made or removed meanwhile."""
        with self._project_lock(stack.name):
            return self.drift_repair.run(stack, deep=deep, table=table, links=links)
