"""The project-wide half of ``RealHost``: a stack's cgroup groups, networks and volumes, and the
``refresh`` that keeps every hosts file and the nft table of a project in step with its
containers and networks (under a per-project lock file, for threads and other stackd processes
alike).

Refreshes are cheap and coalesced, because every create and removal asks for one: a hosts file
is only written when its text changed, the nft table only applied when its rendered text differs
from the last one this process applied (``Networks.apply_table``), and requests that arrive
while a refresh of the project runs are all served by the next one, which starts after they
were made (so when ``refresh`` returns, what existed when it was called is reflected). Concurrent
creates of N containers thus cost a few refreshes, not N.

``StackResources`` is the base class of ``stackd.drivers.realhost.RealHost``, which sets the
attributes declared here; the container half lives there. It carries out what it is told and
reports what it finds; which resources should exist is decided above the drivers. Blocking.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import threading
from collections.abc import Iterator
from pathlib import Path

from stackd import labels
from stackd.drivers import cgroups
from stackd.drivers.containers import dnsfiles, listing
from stackd.drivers.containers.create import Parts
from stackd.drivers.containers.drift import DriftRepair
from stackd.drivers.containers.networks import Networks, write_in_place
from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.fsutil import write_atomic
from stackd.drivers.host import ResourceRecord
from stackd.errors import PermanentDriverError
from stackd.plan import names
from stackd.spec.models import Stack
from stackd.store import Store, StoredResource


class _Refreshes:
    """The refresh requests of one project in this process: ``asked`` counts requests, ``served``
    is the last request a finished refresh covered; ``running`` lets one refresh run at a time."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.running = threading.Lock()
        self.asked = 0
        self.served = 0


class StackResources:
    """Groups, networks, volumes and the per-project refresh (see the module docstring)."""

    layout: HostLayout
    store: Store
    networks: Networks
    parts: Parts
    _lock: threading.Lock
    _cgroups: cgroups.CgroupDriver | None
    _refreshes: dict[str, _Refreshes]
    drift_repair: DriftRepair

    def cgroups(self) -> cgroups.CgroupDriver:
        with self._lock:
            if self._cgroups is None:
                self._cgroups = cgroups.CgroupDriver(cgroups.detect(), root=self.layout.cgroup_root)
            return self._cgroups

    # ------------------------------------------------------------------------------ locks

    @contextlib.contextmanager
    def _file_lock(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _project_lock(self, project: str) -> contextlib.AbstractContextManager[None]:
        return self._file_lock(self.layout.lock_file(project))

    def refresh(self, project: str) -> None:
        """Bring every hosts file of the project's containers and its nft table up to date with
        what exists now (coalesced with concurrent requests: see the module docstring)."""
        with self._lock:
            state = self._refreshes.setdefault(project, _Refreshes())
        with state.mutex:
            state.asked += 1
            ticket = state.asked
        with state.running:
            if state.served >= ticket:
                return  # a refresh that began after this request has finished
            with state.mutex:
                covers = state.asked
            self._refresh_now(project)
            state.served = covers

    def _refresh_now(self, project: str) -> None:
        with self._project_lock(project):
            infos = list(listing.infos(self.layout, project))
            hf = self.parts.host_files
            host_hosts = hf.read(hf.hosts)
            for info in infos:
                if info.network_mode != "join":
                    write_in_place(self.layout.container(info.name).hosts,
                                   dnsfiles.hosts_text(info, infos, host_hosts=host_hosts))
            self.networks.apply_table(project, infos)

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
        self.drift_repair.groups.forget(project, group)
        self.store.remove_resource("group", project, group)
        self.layout.group_file(project, group).unlink(missing_ok=True)
        if not cg.list_groups(project):
            cg.remove_project(project)

    def list_groups(self, project: str) -> list[ResourceRecord]:
        cg = self.cgroups()
        groups = self.drift_repair.groups
        out = []
        for res in self.store.resources(project, "group"):
            observed = groups.found(project, res.key)
            if observed is None:
                continue
            wanted = groups.saved(project, res.key)
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
