"""A service's per-container limits with Docker's semantics: memory, swap, CPU, cpuset, pids,
block I/O weight, ulimits and the size of /dev/shm.

The service keys (``mem_limit``, ``cpus``, ``pids_limit``...) and ``deploy.resources`` say the
same things; as in Compose, either may be used, and both only when they agree. Zero means "not
set" where Docker reads it so (``cpus: 0``, ``memswap_limit: 0``, ``pids_limit: 0``).
``deploy.resources.reservations.memory`` is a soft limit (``memory.reservation``);
CPU reservations have no cgroup meaning on one host and are not applied.

Pure: values in, ``Resources``/``Rlimit`` out; a contradiction is a ``PermanentDriverError``
naming the service.
"""

from __future__ import annotations

from typing import Any

from stackd.drivers.runtime.request import DEFAULT_SHM_SIZE, Resources, Rlimit
from stackd.errors import PermanentDriverError
from stackd.spec.models import Service
from stackd.spec.units import parse_bytes


def _bytes(value: int | str | None) -> int | None:
    return None if value is None else parse_bytes(value)


def _pick(svc: Service, what: str, direct: Any, deployed: Any) -> Any:
    if direct is not None and deployed is not None and direct != deployed:
        raise PermanentDriverError(
            f"service {svc.name}: {what} and deploy.resources say different things ({direct} and "
            f"{deployed}); set one of them")
    return direct if direct is not None else deployed


def service_resources(svc: Service) -> Resources:
    """The cgroup limits of one container of ``svc``."""
    limits = svc.deploy.resources.limits if svc.deploy and svc.deploy.resources else None
    reservations = svc.deploy.resources.reservations if svc.deploy and svc.deploy.resources else None
    memory = _pick(svc, "mem_limit", _bytes(svc.mem_limit), _bytes(limits.memory if limits else None))
    reservation = _pick(svc, "mem_reservation", _bytes(svc.mem_reservation),
                        _bytes(reservations.memory if reservations else None))
    cpus = _pick(svc, "cpus", svc.cpus or None, (limits.cpus if limits else None) or None)
    pids = _pick(svc, "pids_limit", svc.pids_limit or None, (limits.pids if limits else None) or None)
    swap: int | None = None
    if svc.memswap_limit is not None and svc.memswap_limit not in (0, "0"):
        swap = -1 if svc.memswap_limit in (-1, "-1") else parse_bytes(svc.memswap_limit)
        if memory is None:
            raise PermanentDriverError(f"service {svc.name}: memswap_limit needs mem_limit (it is memory "
                                       "plus swap)")
        if swap != -1 and swap < memory:
            raise PermanentDriverError(f"service {svc.name}: memswap_limit ({swap}) is below mem_limit "
                                       f"({memory}); it counts memory plus swap")
    if memory is not None and reservation is not None and reservation > memory:
        raise PermanentDriverError(f"service {svc.name}: the memory reservation ({reservation}) is above the "
                                   f"memory limit ({memory})")
    weight = svc.blkio_config.weight if svc.blkio_config else None
    try:
        return Resources(memory=memory, memory_swap=swap, memory_reservation=reservation,
                         memory_swappiness=svc.mem_swappiness, cpus=cpus, cpu_shares=svc.cpu_shares or None,
                         cpu_quota=svc.cpu_quota or None, cpu_period=svc.cpu_period or None,
                         cpuset_cpus=svc.cpuset or None, pids_limit=pids, blkio_weight=weight)
    except ValueError as exc:
        raise PermanentDriverError(f"service {svc.name}: {exc}") from exc


def service_rlimits(svc: Service) -> tuple[Rlimit, ...]:
    """``ulimits`` as OCI rlimits, sorted by name (the host driver clamps them to the host's)."""
    return tuple(Rlimit(name, u.soft, u.hard) for name, u in sorted(svc.ulimits.items()))


def shm_size(svc: Service) -> int:
    """The size of /dev/shm: ``shm_size``, else Docker's 64 MiB."""
    size = _bytes(svc.shm_size)
    if size is None or size == 0:
        return DEFAULT_SHM_SIZE
    return size
