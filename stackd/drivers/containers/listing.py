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
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from stackd import labels
from stackd.drivers.containers.health import current
from stackd.drivers.containers.info import ContainerInfo, read_info
from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.host import ContainerRecord, ContainerState, HealthRecord
from stackd.drivers.runtime import read_config
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


def infos(layout: HostLayout, project: str | None = None) -> Iterator[ContainerInfo]:
    """The driver's records of every container (of ``project``), by name."""
    try:
        entries = sorted(os.listdir(layout.containers_dir))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            info = read_info(layout.container(entry).info)
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


def annotations_of(layout: HostLayout, name: str,
                   cache: dict[str, tuple[tuple[int, int], dict[str, str]]] | None = None) -> dict[str, str]:
    """The annotations of ``name``'s OCI config. With ``cache`` (name -> (file's mtime and size,
    annotations)), an unchanged config is not read again: it holds the seccomp profile and is
    the costliest file of a container to parse, and the daemon lists containers every pass."""
    bundle = layout.container(name).bundle
    key: tuple[int, int] | None = None
    if cache is not None:
        try:
            st = os.stat(bundle / "config.json")
        except OSError:
            return {}
        key = (st.st_mtime_ns, st.st_size)
        kept = cache.get(name)
        if kept is not None and kept[0] == key:
            return dict(kept[1])
    try:
        raw = read_config(bundle).get("annotations") or {}
    except DriverError:
        return {}
    found = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    if cache is not None and key is not None:
        cache[name] = (key, found)
    return dict(found)
