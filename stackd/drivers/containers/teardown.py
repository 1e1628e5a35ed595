"""Removing one container from the host: the runtime's container and conmon's files, the overlay
mount, the network namespace (and so its veth pairs), its address leases, its directory, its
anonymous volumes when asked, and its record in the store. Named volumes stay.

Every step runs even when an earlier one failed; the failures are collected and raised together
at the end (``TransientDriverError`` when all of them may pass, else ``PermanentDriverError``).
The directory is only deleted once nothing is mounted on its root file system any more. A
running container is refused: it must be stopped first; so is one whose network namespace
another running container shares (deleting it would leave that one's veths behind). Blocking.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from stackd.drivers.containers.create import Parts
from stackd.drivers.containers.info import ContainerInfo, read_info
from stackd.drivers.containers.listing import infos
from stackd.drivers.containers.process import Processes
from stackd.drivers.containers.rootfs import is_mounted, unmount
from stackd.drivers.fsutil import remove_tree
from stackd.errors import DriverError, PermanentDriverError, TransientDriverError


def raise_all(what: str, failures: list[Exception]) -> None:
    """Raise one error for every failure of ``what`` (nothing when there is none)."""
    if not failures:
        return
    if len(failures) == 1 and isinstance(failures[0], DriverError):
        raise failures[0]
    transient = all(isinstance(f, TransientDriverError) for f in failures)
    kind = TransientDriverError if transient else PermanentDriverError
    text = "\n".join(f"  {f}" for f in failures)
    raise kind(f"{what}: {len(failures)} step(s) failed:\n{text}") from failures[0]


def remove(parts: Parts, processes: Processes, name: str, *, volumes: bool) -> ContainerInfo | None:
    """Remove container ``name`` (see the module docstring); the record it had, or ``None`` when
    there was no such container."""
    paths = parts.layout.container(name)
    info = read_info(paths.info)
    if info is None and not paths.dir.exists() and parts.store.container(name) is None:
        return None
    if processes.status(name) in ("running", "paused"):
        who = f"service {info.service}: " if info else ""
        raise PermanentDriverError(f"{who}container {name} is running: stop it before removing it")
    if info is not None and info.netns is not None:
        sharing = [i.name for i in infos(parts.layout, info.project)
                   if i.joins == name and processes.status(i.name) in ("running", "paused")]
        if sharing:
            raise TransientDriverError(f"service {info.service}: container {name} cannot go while "
                                       f"{', '.join(sharing)} run(s) in its network namespace; stop "
                                       "them first")
    failures: list[Exception] = []

    def step(action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:
            failures.append(exc)

    step(lambda: processes.delete(name))
    step(lambda: unmount(paths.rootfs))
    step(lambda: parts.networks.detach(name, info.netns if info else parts.naming.netns(name)))
    if paths.dir.exists():
        if is_mounted(paths.rootfs):
            failures.append(PermanentDriverError(f"container {name}: {paths.rootfs} is still mounted; its "
                                                 "directory was kept"))
        else:
            step(lambda: remove_tree(paths.dir))
    if volumes and info is not None:
        for volume in info.anonymous_volumes:
            step(functools.partial(parts.volumes.remove, volume))
    step(lambda: parts.store.remove_container(name))
    raise_all(f"removing container {name}", failures)
    return info
