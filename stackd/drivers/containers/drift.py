"""Drift repair of a running stack: put back, as recorded, the host objects someone changed behind
stackd's back, and say what was done (``RealHost.repair_drift`` calls ``DriftRepair.run`` under
the project's lock, on every pass of the reconciler).

What is checked, in this order (what is wanted comes from the driver's own records: the store's
networks, subnets and leases, each container's ``container.json`` and OCI config, the saved
limits of each group; the comparisons are in ``driftrules``):

1. groups: a missing group cgroup is made again with its limits; edited limits are written back
   (``CgroupDriver.read_group`` + ``cgroups.drift`` + ``CgroupDriver.ensure_group``); a group's
   limits are read again only after a file of its directories was written (``GroupReads``), and
   with ``table`` or ``deep``;
2. with ``links`` (or ``table`` or ``deep``), bridges of the project's networks: missing, down,
   wrong address, ``route_localnet`` off -> ``links.ensure_bridge``;
3. with ``links`` (or ``table`` or ``deep``), veths of running (or paused) containers: missing,
   down, detached or in another bridge -> ``Networks.reattach`` (same leased addresses, same
   routes); ``ip_forward`` switched off while the project has networks -> on (always);
4. the cgroup limits of running containers, as their OCI config set them, written back: those
   of a container whose cgroup directories had a file written since the last look
   (``LimitWatch``, inotify), of one looked at for the first time, and with ``table`` or
   ``deep`` of every one;
5. only when ``table`` or ``deep``: the project's nft table (``nftables.status``; missing or
   drifted -> ``Networks.apply_table``); only when ``deep``: inside each running container's
   namespace, its interfaces' addresses and state and its default route (-> ``Networks.reattach``).

The cheap checks (1-4) open no namespace: the state of the links it looks for is read from
sysfs (``/sys/class/net/<name>``: flags, master, kind; the daemon's own network namespace is
the host's), their IPv4 addresses from one netlink address dump, and the rest from small
files; a dump of every link on the host would cost more than all of that together. A
container runs when the runtime lists it running or paused with its process alive (the host
driver's ``RuntimeStates``: the runtime is asked again only when something changed), or,
without those, when its own cgroup holds a process; one that does not is left alone (its
endpoints are rebuilt when it starts), and so is every container's process lifecycle (the
planner's). A network namespace that is gone while its container runs cannot be recreated
(the process keeps the old one) and is reported as a failure. Each failed repair becomes a
``DriverError`` naming its resource; the others still run, and the failures are raised
together at the end as a ``RepairError`` carrying the repairs that were made. Blocking;
decides nothing about desired state.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from stackd.drivers import cgroups
from stackd.drivers.cgroups import cgfs
from stackd.drivers.cgroups.detect import Version
from stackd.drivers.containers import driftrules, listing
from stackd.drivers.containers.info import ContainerInfo
from stackd.drivers.containers.networks import Networks
from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.host import PermanentRepairError, Repair, TransientRepairError
from stackd.drivers.inotify import IN_IGNORED, IN_MODIFY, IN_ONLYDIR, IN_Q_OVERFLOW, Inotify
from stackd.drivers.network import links, nftables
from stackd.drivers.network.links import LinkState
from stackd.drivers.network.sysfs import SYS_NET, observe_links
from stackd.errors import DriverError, PermanentDriverError, TransientDriverError
from stackd.spec.models import Stack
from stackd.store import Store


class RepairPass:
    """The repairs and failures of one ``run``."""

    def __init__(self) -> None:
        self.done: list[Repair] = []
        self.failures: list[DriverError] = []

    @contextlib.contextmanager
    def attempt(self, resource: str, what: str, why: str) -> Iterator[None]:
        """Run the body as the repair ``what`` of ``resource``; a failure is noted, named."""
        try:
            yield
        except DriverError as exc:
            kind = TransientDriverError if isinstance(exc, TransientDriverError) else PermanentDriverError
            failure = kind(f"{resource}: could not repair ({why}): {exc}")
            failure.__cause__ = exc
            self.failures.append(failure)
        else:
            self.done.append(Repair(resource, what, why))

    def fail(self, resource: str, message: str) -> None:
        self.failures.append(PermanentDriverError(f"{resource}: {message}"))

    def finish(self, project: str) -> list[Repair]:
        if not self.failures:
            return self.done
        transient = all(isinstance(f, TransientDriverError) for f in self.failures)
        kind = TransientRepairError if transient else PermanentRepairError
        lines = "\n".join(f"  {f}" for f in self.failures)
        raise kind(f"repairing the drift of stack {project}: {len(self.failures)} repair(s) failed:\n{lines}",
                   self.done) from self.failures[0]


class DriftRepair:
    """Drift checks and repairs for one ``RealHost`` (see the module docstring)."""

    def __init__(self, layout: HostLayout, store: Store, networks: Networks,
                 cgroup_driver: Callable[[], cgroups.CgroupDriver],
                 *, infos: listing.InfoCache | None = None, states: listing.RuntimeStates | None = None,
                 configs: listing.ConfigCache | None = None) -> None:
        self.layout = layout
        self.store = store
        self.networks = networks
        self.cgroups = cgroup_driver
        self._configs: listing.ConfigCache = configs if configs is not None else {}  # shared with listing
        self.limit_watch = LimitWatch()
        self.groups = GroupReads(layout, cgroup_driver, self.limit_watch)
        self.infos = infos if infos is not None else listing.InfoCache()
        self.states = states

    def forget_container(self, name: str) -> None:
        """``name`` is being removed: what is kept of it goes (its config, its watch)."""
        self._configs.pop(name, None)
        self.limit_watch.forget({name})

    def run(self, stack: Stack, *, deep: bool = False, table: bool = False,
            links: bool = True) -> list[Repair]:
        """Check the host objects of ``stack`` and repair what drifted; the caller holds the
        project's lock. Raises ``RepairError`` (with the repairs made) when some repair failed."""
        project = stack.name
        cg = self.cgroups()
        work = RepairPass()
        self._groups(stack, cg, work, every=deep or table)
        infos = list(listing.infos(self.layout, project, self.infos))
        if self.states is not None:
            runs = self.states.running({i.name for i in infos})
            running = [i for i in infos if i.name in runs]
        else:
            running = [i for i in infos if self._runs(cg, i.name)]
        if links or deep or table:
            states = observe_links(self._link_names(project, running))
            self._bridges(project, states, work)
            self._veths(running, states, work)
        self._forwarding(project, work)
        self._limits([i.name for i in infos], running, cg, work, every=deep or table)
        if deep or table:
            self._table(project, infos, work)
        if deep:
            self._inside(running, work)
        return work.finish(project)

    # ------------------------------------------------------------------------------ groups

    def _groups(self, stack: Stack, cg: cgroups.CgroupDriver, work: RepairPass, *, every: bool) -> None:
        for res in self.store.resources(stack.name, "group"):
            wanted = self._group_limits(stack, res.key)
            if wanted is None:
                continue
            resource = f"group:{res.key}"
            try:
                found = self.groups.found(stack.name, res.key, every=every)
            except DriverError as exc:
                work.fail(resource, f"cannot read its limits: {exc}")
                continue
            path = cg.group_path(stack.name, res.key)
            if found is None:
                with work.attempt(resource, f"created cgroup {path} with its limits", "cgroup missing"):
                    cg.ensure_group(stack.name, res.key, wanted)
                continue
            changed = cgroups.drift(wanted, found, cg.page_size)
            if changed:
                why = "; ".join(f"{n} is {_shown(getattr(found, n))}, not {_shown(getattr(wanted, n))}"
                                for n in changed)
                with work.attempt(resource, f"wrote back {', '.join(changed)} of {path}", why):
                    cg.ensure_group(stack.name, res.key, wanted)

    def _group_limits(self, stack: Stack, group: str) -> cgroups.GroupLimits | None:
        """The limits the group was made with (its saved file), else the stack's."""
        saved = self.groups.saved(stack.name, group)
        if saved is not None:
            return saved
        declared = stack.groups.get(group)
        return cgroups.GroupLimits.of(declared) if declared is not None else None

    # ------------------------------------------------------------------------------ links

    def _link_names(self, project: str, running: list[ContainerInfo]) -> set[str]:
        names = {self.networks.bridge(r.name) for r in self.store.resources(project, "network")}
        for info in running:
            if info.network_mode == "networks":
                names.update(self.networks.naming.veth(info.name, a.network) for a in info.attachments)
                names.update(self.networks.bridge(a.network) for a in info.attachments)
        return names

    def _bridges(self, project: str, states: dict[str, LinkState], work: RepairPass) -> None:
        networks = self.store.resources(project, "network")
        for res in networks:
            stored = self.store.subnet(res.name)
            if stored is None:
                continue
            subnet = self.networks.subnet(res.name)
            bridge = self.networks.bridge(res.name)
            found = states.get(bridge)
            localnet = _sysctl(f"net.ipv4.conf.{bridge}.route_localnet") if found is not None else None
            problems = driftrules.bridge_problems(bridge, subnet.interface, found, localnet)
            if not problems:
                continue
            what = (f"recreated bridge {bridge} with {subnet.interface}" if found is None
                    else f"set bridge {bridge} up with {subnet.interface}")
            with work.attempt(f"network:{res.name}", what, "; ".join(problems)):
                links.ensure_bridge(bridge, subnet.interface)

    def _forwarding(self, project: str, work: RepairPass) -> None:
        networks = self.store.resources(project, "network")
        if networks and _sysctl("net.ipv4.ip_forward") == "0":
            with work.attempt(f"network:{networks[0].name}", "turned net.ipv4.ip_forward on",
                              "ip_forward off"):
                self.networks.enable_forwarding()

    def _veths(self, running: list[ContainerInfo], states: dict[str, LinkState], work: RepairPass) -> None:
        naming = self.networks.naming
        for info in running:
            if info.network_mode != "networks" or info.netns is None or not info.attachments:
                continue
            problems = []
            for a in info.attachments:
                veth, bridge = naming.veth(info.name, a.network), self.networks.bridge(a.network)
                problems += driftrules.veth_problems(veth, bridge, states.get(veth))
            if problems:
                self._reattach(info, "; ".join(problems), work)

    def _reattach(self, info: ContainerInfo, why: str, work: RepairPass) -> None:
        resource = f"container:{info.name}"
        if info.netns is None or not links.netns_exists(info.netns):
            work.fail(resource, f"{why}, and its network namespace {info.netns} is gone: restart the "
                      "container")
            return
        absent = [a.network for a in info.attachments
                  if not (SYS_NET / self.networks.bridge(a.network) / "bridge").is_dir()]
        if absent:
            # a network of another stack (external here) lost its bridge: that stack puts it back,
            # and a later pass of this one attaches the container again
            return
        made = ", ".join(f"{self.networks.naming.veth(info.name, a.network)} on "
                         f"{self.networks.bridge(a.network)} with {a.address}" for a in info.attachments)
        with work.attempt(resource, f"reattached {made}", why):
            self.networks.reattach(info)

    def _inside(self, running: list[ContainerInfo], work: RepairPass) -> None:
        """Deep: addresses, state and default route inside each running container's namespace."""
        repaired = {r.resource for r in work.done}
        for info in running:
            if info.network_mode != "networks" or info.netns is None or not info.attachments or \
                    f"container:{info.name}" in repaired or not links.netns_exists(info.netns):
                continue
            try:
                wanted = [(f"eth{i}", self.networks.subnet(a.network).interface_of(a.address))
                          for i, a in enumerate(info.attachments)]
                via = next((a for a in info.attachments if a.key == info.gateway), None)
                gateway = self.networks.subnet(via.network).gateway if via is not None else None
                problems = driftrules.inside_problems(wanted, gateway, links.netns_links(info.netns),
                                                      links.default_gateway(info.netns))
            except DriverError as exc:
                work.fail(f"container:{info.name}", f"cannot look into its network namespace: {exc}")
                continue
            if problems:
                self._reattach(info, "; ".join(problems), work)

    # ------------------------------------------------------------------------------ nft

    def _table(self, project: str, infos: list[ContainerInfo], work: RepairPass) -> None:
        table = self.networks.table(project, infos)
        if not table.bridges and not table.ports:
            return
        resource = f"nft:{project}"
        try:
            status = nftables.status(table)
        except DriverError as exc:
            work.fail(resource, f"cannot read table {table.name}: {exc}")
            return
        if status != "in-sync":
            what = f"applied table {table.name} again"
            with work.attempt(resource, what, f"table {table.name} {status}"):
                self.networks.apply_table(project, infos)

    # ------------------------------------------------------------------------------ containers

    def _runs(self, cg: cgroups.CgroupDriver, name: str) -> bool:
        """Whether a process is in the container's own cgroup (running or paused)."""
        info = self.infos.read(self.layout.container(name).info)
        for controller in ("pids", "memory", "cpu"):
            backing = cg.layout.backing(controller)
            if info is not None and backing is not None:
                try:
                    procs = cgfs.read(_under(backing[1], info.cgroups_path) / "cgroup.procs")
                except DriverError:
                    return False
                return bool(procs and procs.strip())
        return False

    def _resources(self, name: str) -> Mapping[str, Any] | None:
        got = listing.config_of(self.layout, name, self._configs)
        return got[1] if got is not None else None

    def _limits(self, project: list[str], running: list[ContainerInfo], cg: cgroups.CgroupDriver,
                work: RepairPass, *, every: bool) -> None:
        """The limits of the project's running containers (``project``: the names of all its
        containers); only of those whose cgroup directories had a file written since the last
        look (``LimitWatch``) unless ``every``. What is kept of other projects is left alone."""
        known = {i.name for i in running}
        # what no longer runs: of this project's containers, and of those that are gone
        gone = (set(project) - known) | (set(self._configs) - self.infos.names())
        for name in set(self._configs) - self.infos.names():  # (the config of a stopped one stays)
            self._configs.pop(name, None)
        self.limit_watch.forget(gone)
        written = self.limit_watch.written(known)
        for info in running:
            watched = self.limit_watch.watched(info.name)
            if watched and not every and info.name not in written:
                continue
            resources = self._resources(info.name)
            if resources is None:
                continue
            folders = {controller: (backing[0], _under(backing[1], info.cgroups_path))
                       for controller in driftrules.CONTAINER_CONTROLLERS
                       if (backing := cg.layout.backing(controller)) is not None}
            if not watched:  # watched before it is read: a write after the read is seen next time
                self.limit_watch.watch(info.name, [folder for _, folder in folders.values()])
            for controller, (version, folder) in folders.items():
                self._limit_files(info, resources, (controller, version, folder), cg, work)

    def _limit_files(self, info: ContainerInfo, resources: Mapping[str, Any],
                     where: tuple[str, Version, Path], cg: cgroups.CgroupDriver, work: RepairPass) -> None:
        """Write back the limit files of one controller's directory that drifted."""
        controller, version, folder = where
        resource = f"container:{info.name}"
        wanted = driftrules.container_files(resources, version, controller)
        try:
            read = {f.name: cgfs.read(folder / f.name) for f in wanted}
        except DriverError as exc:
            work.fail(resource, f"cannot read its {controller} limits: {exc}")
            return
        current = {name: text for name, text in read.items() if text is not None}
        drifted = [f for f in wanted if driftrules.file_drifted(f, current.get(f.name), cg.page_size)]
        if not drifted:
            return
        why = "; ".join(f"{f.name} is {current[f.name]}, not {f.value}" for f in drifted)
        what = f"wrote back {', '.join(f.name for f in drifted)} of {info.cgroups_path}"
        with work.attempt(resource, what, why):
            for f in driftrules.write_order(drifted, current):
                cgfs.write(folder / f.name, f.value)


class GroupReads:
    """What each group's cgroup holds (``read_group``) and the limits it was made with (its
    saved file), kept while unchanged: the group's directories are watched for written files
    (``LimitWatch``, under ``LimitWatch.group_key``) and looked up (a directory removed or made
    again has another inode, or none), and the saved file is parsed again when its inode, time
    or size changed. A group whose directories are not all there is not watched and is read on
    every call. Drift repair and
    the observation of a pass both ask; the first after a write reads again."""

    def __init__(self, layout: HostLayout, cgroup_driver: Callable[[], cgroups.CgroupDriver],
                 watch: LimitWatch) -> None:
        self.layout, self.cgroups, self.watch = layout, cgroup_driver, watch
        self._found: dict[str, tuple[tuple[int | None, ...], cgroups.GroupLimits]] = {}
        self._saved: dict[str, tuple[tuple[int, int, int], cgroups.GroupLimits]] = {}

    def found(self, project: str, group: str, *, every: bool = False) -> cgroups.GroupLimits | None:
        """``read_group`` of the group (None: it does not exist); ``every``: read in any case."""
        key = LimitWatch.group_key(project, group)
        written = bool(self.watch.written({key}))
        kept = self._found.get(key)
        cg = self.cgroups()
        dirs = cg.group_dirs(project, group)
        # cgroupfs does not tell a watch that its directory went: the inodes say it
        inodes = _inodes(dirs)
        watched = self.watch.watched(key)
        if kept is not None and not written and not every and watched and kept[0] == inodes:
            return kept[1]
        if not watched or kept is None or kept[0] != inodes:  # (again) on the directories there now
            self.watch.forget({key})
            self.watch.watch(key, list(dirs))  # watched before it is read: a write after the read is seen
        found = cg.read_group(project, group)
        if found is None:
            self._found.pop(key, None)
        else:
            self._found[key] = (inodes, found)
        return found

    def saved(self, project: str, group: str) -> cgroups.GroupLimits | None:
        """The limits the group was made with (None: no readable saved file)."""
        key = LimitWatch.group_key(project, group)
        path = self.layout.group_file(project, group)
        try:
            st = os.stat(path)
        except OSError:
            self._saved.pop(key, None)
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        kept = self._saved.get(key)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        try:
            limits = cgroups.GroupLimits(**json.loads(path.read_bytes()))
        except (OSError, ValueError, TypeError):
            return None
        self._saved[key] = (stamp, limits)
        return limits

    def dirs(self, project: str, group: str) -> tuple[int | None, ...]:
        """The inodes of the group's directories (None for one that is not there)."""
        return _inodes(self.cgroups().group_dirs(project, group))

    def forget(self, project: str, group: str) -> None:
        """The group is gone (removed by stackd)."""
        key = LimitWatch.group_key(project, group)
        self.watch.forget({key})
        self._found.pop(key, None)
        self._saved.pop(key, None)


class LimitWatch:
    """Which running containers (and groups, see ``GroupReads``) had a limit file of their
    cgroup directories written since the last look: inotify ``IN_MODIFY`` on each directory (a
    limit written by hand raises it; the kernel's own accounting does not, and writes to
    ``cgroup.procs`` or ``tasks``, as an exec into the container makes, are not limits), so
    that a pass reads again only their limits.
    Without inotify, or after its queue overflowed, every container counts as written.

    The host watch waits on ``fileno()`` and calls ``collect`` to wake the passes of the
    containers written; the drift pass takes what was collected with ``written``. Passes (and
    the resync's stamps) read the inotify queue too, when they ask: what they find that the
    host watch has not been told is announced to it (an eventfd beside the inotify descriptor,
    both behind the epoll descriptor ``fileno`` gives), so that a write is never left for the
    next resync to find. Thread-safe (they run in different threads)."""

    def __init__(self) -> None:
        try:
            self._inotify: Inotify | None = Inotify()
            self._bell = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._poll = select.epoll()
            self._poll.register(self._inotify.fd, select.EPOLLIN)
            self._poll.register(self._bell, select.EPOLLIN)
        except OSError:
            self._inotify = None
        self._lock = threading.Lock()
        self._owner: dict[int, str] = {}  # watch descriptor -> container
        self._watches: dict[str, set[int]] = {}  # container -> its watch descriptors
        self._pending: set[str] = set()
        self._unannounced: set[str] = set()  # read by others, not yet returned by ``collect``
        self._lost = False  # events lost, not yet told by ``collect``

    def fileno(self) -> int | None:
        return self._poll.fileno() if self._inotify is not None else None

    @staticmethod
    def group_key(project: str, group: str) -> str:
        """What a group is watched under (a container's name never has a slash)."""
        return f"{project}/{group}"

    def watched(self, name: str) -> bool:
        return name in self._watches

    def watch(self, name: str, folders: list[Path]) -> None:
        """Watch ``name``'s cgroup directories (a directory that cannot be watched leaves the
        container unwatched: it is read on every pass)."""
        with self._lock:
            if self._inotify is None:
                return
            wds: set[int] = set()
            try:
                for folder in folders:
                    wds.add(self._inotify.add(folder, IN_MODIFY | IN_ONLYDIR))
            except OSError:
                for wd in wds:
                    self._inotify.remove(wd)
                return
            self._watches[name] = wds
            self._owner.update(dict.fromkeys(wds, name))

    def _drop(self, name: str) -> None:
        for wd in self._watches.pop(name, set()):
            self._owner.pop(wd, None)
            if self._inotify is not None:
                self._inotify.remove(wd)

    def forget(self, names: set[str]) -> None:
        """Stop watching ``names`` (no longer running)."""
        with self._lock:
            for name in names & set(self._watches):
                self._drop(name)
            self._pending -= names

    def collect(self) -> set[str] | None:
        """For the host watch: the containers newly written since its last ``collect``, also
        those another caller read meanwhile (None: events were lost, and every watched
        container counts as written). They stay pending for ``written``."""
        with self._lock:
            if self._inotify is None:
                return set()
            found = self._read()
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self._bell)
            found |= self._unannounced
            lost, self._lost = self._lost, False
            self._unannounced.clear()
            return None if lost else found

    def _read(self) -> set[str]:
        """Read the inotify queue (the lock held): the containers written, now pending."""
        assert self._inotify is not None
        found: set[str] = set()
        for event in self._inotify.read():
            name = self._owner.get(event.wd)
            if event.mask & IN_Q_OVERFLOW:
                self._lost = True
                found |= set(self._watches)
            elif name is None:
                continue
            elif event.mask & IN_IGNORED:  # a directory went (the container stopped): watch again
                self._drop(name)
                found.add(name)
            elif event.name not in _NOT_LIMITS and not event.name.startswith("cgroup."):
                found.add(name)
        self._pending |= found
        return found

    def _look(self) -> None:
        """Read the queue for a pass: what it finds is announced to the host watch."""
        with self._lock:
            if self._inotify is None:
                return
            found = self._read()
            if found or self._lost:
                self._unannounced |= found
                os.eventfd_write(self._bell, 1)

    def pending(self, names: set[str]) -> bool:
        """Whether some of ``names`` were written since they were last asked for (``written``),
        without taking them."""
        self._look()
        with self._lock:
            return not self._pending.isdisjoint(names)

    def written(self, names: set[str]) -> set[str]:
        """Which of ``names`` were written since they were last asked for (the others' stay
        pending for their own project's pass)."""
        self._look()
        with self._lock:
            taken = self._pending & names
            self._pending -= taken
            return taken

    def close(self) -> None:
        with self._lock:
            if self._inotify is not None:
                self._inotify.close()
                self._inotify = None
                self._poll.close()
                os.close(self._bell)


_NOT_LIMITS = frozenset({"tasks", "notify_on_release"})


def _inodes(dirs: tuple[Path, ...]) -> tuple[int | None, ...]:
    out: list[int | None] = []
    for d in dirs:
        try:
            out.append(os.stat(d).st_ino)
        except OSError:
            out.append(None)
    return tuple(out)


def _under(mount: Path, rel: str) -> Path:
    return mount / rel.lstrip("/")


def _sysctl(key: str) -> str | None:
    try:
        return links.read_sysctl(key)
    except DriverError:
        return None


def _shown(value: object) -> str:
    return "unset" if value is None else str(value)
