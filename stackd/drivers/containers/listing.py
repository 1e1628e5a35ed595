"""What the host holds for stackd's containers, as ``ContainerRecord``s: each container's bundle
(its annotations say project, service, number, config hash and parts, group, image), the OCI
runtime's state (running, paused, stopped, and the pid), conmon's exit status, the driver's own
record (addresses, published ports), the store's (restart count, a restart scheduled) and the
last healthcheck result recorded for the current run.

A container that was created but never started has no runtime container yet: it is
``created``; one whose runtime container has ended is ``exited`` with conmon's exit status. Only
reads; ``state_of`` is pure.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackd import labels
from stackd.drivers.containers.health import current
from stackd.drivers.containers.info import ContainerInfo, read_info
from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.host import ContainerRecord, ContainerState, HealthRecord
from stackd.drivers.runtime import read_config
from stackd.drivers.runtime.base import ContainerRuntime
from stackd.errors import DriverError
from stackd.store import StoredContainer

_STATES: Mapping[str, ContainerState] = {"running": "running", "paused": "paused", "stopped": "exited",
                                         "created": "created"}


def state_of(runtime_status: str | None, exit_code: int | None) -> ContainerState:
    """The record's state from the runtime's status (``None``: no runtime container) and
    conmon's exit status."""
    if runtime_status is None:
        return "exited" if exit_code is not None else "created"
    state = _STATES.get(runtime_status, "dead")
    if state == "created" and exit_code is not None:
        return "exited"
    return state


class InfoCache:
    """``read_info`` of each path, kept while the file is the same (inode, mtime, size:
    ``write_info`` replaces the file, so a new record is a new inode). Records are frozen; the
    daemon lists every container on every pass, and most of them never change."""

    def __init__(self) -> None:
        self._kept: dict[Path, tuple[tuple[int, int, int], ContainerInfo]] = {}
        self._listed: tuple[int, list[str]] | None = None  # the containers directory's time, entries
        # entries by kept project (None: not kept), and the listing it was made from
        self._index: tuple[list[str], dict[str | None, list[str]]] | None = None
        self._lock = threading.Lock()  # passes of several projects use one cache at once

    def read(self, path: Path) -> ContainerInfo | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self._drop(path)
            return None
        except OSError:
            return read_info(path)  # says why
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        kept = self._kept.get(path)
        if kept is not None and kept[0] == key:
            return kept[1]
        info = read_info(path)
        if info is not None:
            with self._lock:
                if kept is None or kept[1].project != info.project:
                    self._index = None
                self._kept[path] = (key, info)
        return info

    def _drop(self, path: Path) -> None:
        with self._lock:
            if self._kept.pop(path, None) is not None:
                self._index = None

    def names(self) -> set[str]:
        """The containers whose record is kept (those that existed at the last ``infos``)."""
        return {path.parent.name for path in self._kept}

    def candidates(self, entries: list[str], project: str) -> list[str]:
        """Of ``entries`` (the last ``entries``), those that may be ``project``'s: kept as its,
        or not kept at all (a record never changes project), in order."""
        with self._lock:
            if self._index is None or self._index[0] is not entries:
                index: dict[str | None, list[str]] = {}
                projects = {path.parent.name: kept[1].project for path, kept in self._kept.items()}
                for entry in entries:
                    index.setdefault(projects.get(entry), []).append(entry)
                self._index = (entries, index)
            found = self._index[1]
            return sorted(found.get(project, []) + found.get(None, []))

    def entries(self, folder: Path) -> list[str] | None:
        """The sorted entries of ``folder`` (the containers directory), listed again only when
        it changed; None when there is no such folder."""
        stamp = dir_stamp(folder)
        if stamp is None:
            return None
        if stamp[1] or self._listed is None or self._listed[0] != stamp[0]:
            entries = sorted(os.listdir(folder))
            if self._listed is not None and self._listed[1] == entries:
                entries = self._listed[1]  # the same listing: its index stands
            self._listed = (stamp[0], entries)
            present = set(entries)
            for path in [p for p in self._kept if p.parent.name not in present]:
                self._drop(path)
        return self._listed[1]


RECENT = 1.0
"""A directory changed less than this many seconds ago is listed again: file times are as
coarse as the kernel's clock tick, so a second change in the same tick would not show."""


def dir_stamp(path: Path) -> tuple[int, bool] | None:
    """``path``'s modification time, and whether it is too recent to rely on; None: no such
    directory."""
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return None
    return mtime, time.time_ns() - mtime < RECENT * 1e9


RELIST_EVERY = 30.0
"""Seconds after which ``RuntimeStates`` asks the runtime again even when nothing says it must."""


class RuntimeStates:
    """The OCI runtime's ``list`` (a process run per call), asked again only when something may
    have changed what it says: this host driver changed a container (``forget``), a container
    ended (conmon's exit directory changed), a runtime container was made or deleted (the
    runtime's state directory changed), a container was made or removed (the containers
    directory changed), a running container's process is gone, or ``RELIST_EVERY`` seconds
    passed (what no event tells, such as a pause by hand). Thread-safe: a ``list`` that raced
    with a change is not kept."""

    def __init__(self, runtime: Callable[[], ContainerRuntime], dirs: Callable[[], Iterable[Path]],
                 every: float = RELIST_EVERY) -> None:
        self._runtime, self._dirs, self._every = runtime, dirs, every
        self._generation = 0
        self.version = 0  # how many times the runtime's list was found changed
        self._last: dict[str, dict[str, Any]] = {}
        self._kept: tuple[tuple[object, ...], float, dict[str, dict[str, Any]]] | None = None

    def forget(self) -> None:
        self._generation += 1
        self._kept = None

    def stamp(self) -> tuple[object, ...] | None:
        """The directories' times and this host's changes; None while a directory changed too
        recently to trust its time (file times are as coarse as the kernel's clock tick)."""
        stamps = [dir_stamp(d) for d in self._dirs()]
        if any(s is not None and s[1] for s in stamps):
            return None
        return (*stamps, self._generation)

    def get(self, names: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
        """The runtime's state of each container, by id; ``names``: only those are asked about
        (the processes of the others are not looked for)."""
        generation = self._generation
        stamp = self.stamp()
        kept = self._kept
        if stamp is not None and kept is not None and kept[0] == stamp and \
                time.monotonic() - kept[1] < self._every and all(
                    _alive(d.get("pid")) for name, d in kept[2].items()
                    if d.get("status") in _RUNS and (names is None or name in names)):
            return kept[2]
        at = time.monotonic()
        states = {str(d.get("id")): d for d in self._runtime().list()}
        if states != self._last:
            self.version += 1
            self._last = states
        if stamp is not None and self._generation == generation:
            self._kept = (stamp, at, states)
        return states

    def running(self, names: Collection[str] | None = None) -> set[str]:
        """The containers (of ``names``) the runtime has running or paused, their process alive."""
        return {name for name, d in self.get(names).items() if d.get("status") in _RUNS and
                (names is None or name in names) and _alive(d.get("pid"))}


_RUNS = ("running", "paused")


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def infos(layout: HostLayout, project: str | None = None,
          cache: InfoCache | None = None) -> Iterator[ContainerInfo]:
    """The driver's records of every container (of ``project``), by name. With ``cache``, the
    directory is listed again only when it changed, and a file whose kept record belongs to
    another project is not looked at (a record never changes project)."""
    if cache is None:
        try:
            entries = sorted(os.listdir(layout.containers_dir))
        except FileNotFoundError:
            return
    else:
        found = cache.entries(layout.containers_dir)
        if found is None:
            return
        entries = found
        if project is not None:
            entries = cache.candidates(entries, project)
    read = cache.read if cache is not None else read_info
    for entry in entries:
        path = layout.container(entry).info
        try:
            info = read(path)
        except DriverError:
            continue
        if info is not None and (project is None or info.project == project):
            yield info


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat()


def record(info: ContainerInfo, annotations: Mapping[str, str], *, runtime: Mapping[str, Any] | None,
           exit_code: int | None, finished: float | None, stored: StoredContainer | None,
           health: HealthRecord | None = None, now: datetime | None = None) -> ContainerRecord:
    """One container's record from what each source says (pure; ``now`` decides whether a
    scheduled restart is still ahead)."""
    status = str(runtime.get("status")) if runtime else None
    state = state_of(status, exit_code)
    pid = runtime.get("pid") if runtime and state in ("running", "paused") else None
    started_at = str(runtime.get("created")) if runtime and runtime.get("created") else None
    last = current(health, started_at, state in ("running", "paused"))
    backoff = stored.backoff_until if stored else None
    try:
        parts = json.loads(annotations.get(labels.CONFIG_PARTS, "{}"))
    except ValueError:
        parts = {}
    return ContainerRecord(
        name=info.name, project=annotations.get(labels.PROJECT, info.project),
        service=annotations.get(labels.SERVICE, info.service),
        number=int(annotations.get(labels.NUMBER, info.number)),
        config_hash=annotations.get(labels.CONFIG_HASH, ""),
        config_parts={str(k): str(v) for k, v in parts.items()} if isinstance(parts, dict) else {},
        state=state, exit_code=exit_code if state in ("exited", "dead") else None,
        pid=int(pid) if isinstance(pid, int) and pid > 0 else None,
        started_at=started_at,
        finished_at=_iso(finished) if finished is not None and state == "exited" else None,
        image_id=annotations.get(labels.IMAGE_ID, info.image_id), group=info.group,
        health=last.status if last else "none", last_health=last,
        restarts=stored.restarts if stored else 0,
        restarting=state == "exited" and backoff is not None and (now is None or backoff > now),
        image_healthcheck=info.healthcheck,
        addresses={a.key: a.address for a in info.attachments},
        ports=tuple(p.render() for p in info.ports))


ConfigCache = dict[str, tuple[tuple[int, int], dict[str, str], Mapping[str, Any]]]
"""Per container: its OCI config's mtime and size, annotations and ``linux.resources``."""


def config_of(layout: HostLayout, name: str,
              cache: ConfigCache | None = None) -> tuple[dict[str, str], Mapping[str, Any]] | None:
    """The annotations and the ``linux.resources`` of ``name``'s OCI config (None: no readable
    config). With ``cache``, an unchanged config is not read again: it holds the seccomp
    profile and is the costliest file of a container to parse, and the daemon lists the
    containers (annotations) and checks their limits (resources) on every pass. The results
    are shared: keep them unchanged."""
    bundle = layout.container(name).bundle
    key: tuple[int, int] | None = None
    if cache is not None:
        try:
            st = os.stat(bundle / "config.json")
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        kept = cache.get(name)
        if kept is not None and kept[0] == key:
            return kept[1], kept[2]
    try:
        config = read_config(bundle)
    except DriverError:
        return None
    raw = config.get("annotations") or {}
    found = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    linux = config.get("linux")
    resources = linux.get("resources") if isinstance(linux, dict) else None
    limits: Mapping[str, Any] = resources if isinstance(resources, dict) else {}
    del config  # (the seccomp profile goes before anything else is kept)
    if cache is not None and key is not None:
        cache[name] = (key, found, limits)
    return found, limits


def annotations_of(layout: HostLayout, name: str, cache: ConfigCache | None = None) -> dict[str, str]:
    """The annotations of ``name``'s OCI config (a copy; see ``config_of``)."""
    got = config_of(layout, name, cache)
    return dict(got[0]) if got is not None else {}
