"""``volumes_from``, as data: which containers a service takes volumes from, and the mounts it
gets from them, with Docker's semantics:

- ``service[:ro|:rw]`` names the first container of that service, ``container:NAME[:ro|:rw]``
  a container by name (it must be one stackd made: only those have a record of their mounts);
- every volume (named or anonymous, under the same volume name: the source container owns its
  anonymous volumes, the one that borrows them never creates, fills or removes them) and every
  bind of the source container is mounted at the same target; tmpfs mounts, secrets and
  configs are not passed on;
- ``:ro`` makes each of them read-only; otherwise (``:rw`` or nothing) each keeps its own mode;
- a later ``volumes_from`` entry wins over an earlier one at the same target, and the
  service's own mounts win over all of them;
- what a container passes on (``shared_mounts``) includes what it got this way, so
  ``volumes_from`` chains as in Docker.

Pure: the caller reads the source containers' records and passes their mounts in; a reference
that cannot be served is a ``PermanentDriverError`` naming the service.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stackd.drivers.containers.mounts import SharedMount, VolumeUse, bind_mount, volume_source
from stackd.drivers.containers.paths import ContainerPaths
from stackd.errors import PermanentDriverError
from stackd.plan import names
from stackd.spec.models import Service, Stack

_MODES = ("ro", "rw")


@dataclass(frozen=True)
class Source:
    """One ``volumes_from`` entry: the container to take volumes from and whether read-only."""

    entry: str
    container: str
    read_only: bool = False


def sources(stack: Stack, svc: Service) -> list[Source]:
    """The ``volumes_from`` entries of ``svc``, in order."""
    out = []
    for entry in svc.volumes_from:
        kind, _, rest = entry.partition(":")
        if kind == "container":
            name, _, mode = rest.partition(":")
            if not name:
                raise PermanentDriverError(f"service {svc.name}: volumes_from {entry!r}: no container name")
            container = name
        else:
            mode = rest
            other = stack.services.get(kind)
            if other is None:
                raise PermanentDriverError(f"service {svc.name}: volumes_from {entry!r}: no service {kind} "
                                           "in the stack")
            container = names.container_name(stack.name, other, 1)
        if mode and mode not in _MODES:
            raise PermanentDriverError(f"service {svc.name}: volumes_from {entry!r}: mode {mode!r} must be "
                                       "ro or rw")
        out.append(Source(entry, container, mode == "ro"))
    return out


def _read_only(mount: SharedMount) -> SharedMount:
    if mount.read_only:
        return mount
    options = tuple(o for o in mount.options if o != "rw")
    return SharedMount(mount.target, mount.source, (*options, "ro"), mount.volume)


def inherited_mounts(stack: Stack, svc: Service,
                     shared_from: Mapping[str, Sequence[SharedMount] | None]) -> tuple[SharedMount, ...]:
    """The mounts ``svc`` takes from the containers of its ``volumes_from``; ``shared_from`` maps
    each container name to what it passes on (``None``: it exists but its record predates
    ``volumes_from``; missing: no such stackd container)."""
    chosen: dict[str, SharedMount] = {}
    for src in sources(stack, svc):
        if src.container not in shared_from:
            raise PermanentDriverError(
                f"service {svc.name}: volumes_from {src.entry}: container {src.container} does not exist "
                "on this host as a stackd container (create it first; containers stackd did not make "
                "cannot lend their volumes)")
        mounts = shared_from[src.container]
        if mounts is None:
            raise PermanentDriverError(
                f"service {svc.name}: volumes_from {src.entry}: container {src.container} was made by an "
                "older stackd that did not record its mounts; recreate it (stack up --force-recreate)")
        for mount in mounts:
            target = posixpath.normpath(mount.target)
            chosen.pop(target, None)
            chosen[target] = _read_only(mount) if src.read_only else mount
    return tuple(chosen.values())


def shared_mounts(svc: Service, uses: Sequence[VolumeUse], paths: ContainerPaths,
                  inherited: Sequence[SharedMount] = ()) -> tuple[SharedMount, ...]:
    """What a container of ``svc`` passes on to ``volumes_from``: its volumes (``uses``), its binds
    and the ``inherited`` mounts none of its own covers."""
    own: list[SharedMount] = []
    for use in uses:
        own.append(SharedMount(posixpath.normpath(use.target), volume_source(svc, use, paths),
                               ("rbind", "ro") if use.read_only else ("rbind",), use.volume))
    for v in svc.volumes:
        if v.type == "bind":
            m = bind_mount(v, svc)
            own.append(SharedMount(m.destination, m.source, m.options))
    taken = {m.target for m in own} | {posixpath.normpath(v.target) for v in svc.volumes}
    return (*(m for m in inherited if posixpath.normpath(m.target) not in taken), *own)
