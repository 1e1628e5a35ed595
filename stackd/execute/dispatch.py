"""Each plan operation as exactly one ``HostDriver`` call: a table from operation type to call.

The calls block (they run in worker threads, see ``executor``). Nothing here decides anything
about desired state: the arguments come from the operation, and from the service's own settings
in the ``Stack`` where the operation leaves them to it (a stop's grace period and signal; with
no ``stop_signal`` the signal is left to the driver, which knows the image's ``StopSignal``). A
call's result is only interpreted where the driver answers a question (``image_id`` of a
``check``: no image is an error). This module never waits, sleeps or reads the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stackd.drivers.host import HostDriver
from stackd.errors import PermanentDriverError, PlanError
from stackd.plan.model import (
    CreateContainer,
    CreateGroup,
    CreateNetwork,
    CreateVolume,
    EnsureImage,
    Op,
    RemoveContainer,
    RemoveGroup,
    RemoveNetwork,
    RemoveVolume,
    StartContainer,
    StopContainer,
    UpdateGroup,
)
from stackd.spec.models import Stack
from stackd.spec.units import parse_duration

DEFAULT_STOP_TIMEOUT = 10.0

Call = Callable[[], object]


def stop_settings(stack: Stack | None, service: str, timeout: float | None) -> tuple[float, str | None]:
    """(grace period in seconds, signal) for stopping a container of ``service``: ``timeout`` when
    given, else the service's ``stop_grace_period``, else Docker's 10 s; the service's
    ``stop_signal``, else ``None`` (the container's own: its image's ``StopSignal`` or SIGTERM)."""
    svc = stack.services.get(service) if stack is not None else None
    signal = (svc.stop_signal if svc is not None else None) or None
    if timeout is not None:
        return timeout, signal
    grace = svc.stop_grace_period if svc is not None else None
    return (parse_duration(grace) if grace else DEFAULT_STOP_TIMEOUT), signal


@dataclass(frozen=True)
class Target:
    """Where operations are carried out: the host, the project, and the stack the plan was made
    from (``None`` for a ``down`` planned without the stack file: removals only)."""

    host: HostDriver
    project: str
    stack: Stack | None = None

    def need_stack(self, op: Op) -> Stack:
        if self.stack is None:
            raise PlanError(f"internal error: {op.id} needs the stack it was planned from")
        return self.stack


def missing_image(service: str, image: str, *, has_build: bool) -> str:
    """What to say about a service whose image is not in the store."""
    if has_build:
        return (f"service {service}: image {image} is not in stackd's store and --no-build forbids "
                "building it; run without --no-build, or import it with `stack image import`")
    return (f"service {service}: image {image} is not in stackd's store and the service has no build "
            "section; import it with `stack image import` or add `build:`")


def _image(op: EnsureImage, t: Target) -> None:
    if op.action == "build":
        t.host.build_image(t.need_stack(op), op.service, op.image)
        return
    if t.host.image_id(op.image) is None:
        svc = t.stack.services.get(op.service) if t.stack is not None else None
        raise PermanentDriverError(missing_image(op.service, op.image,
                                                 has_build=svc is not None and svc.build is not None))


def _create(op: CreateContainer, t: Target) -> None:
    t.host.create_container(t.need_stack(op), op.service, op.number, op.name, image=op.image,
                            config_hash=op.config_hash, config_parts=op.config_parts)


def _stop(op: StopContainer, t: Target) -> None:
    timeout, signal = stop_settings(t.stack, op.service, op.timeout)
    t.host.stop_container(op.name, timeout=timeout, signal=signal)


_TABLE: Mapping[type[Op], Callable[[Any, Target], None]] = {
    CreateNetwork: lambda op, t: t.host.ensure_network(t.need_stack(op), op.network, op.name, op.config_hash),
    RemoveNetwork: lambda op, t: t.host.remove_network(t.project, op.name),
    CreateVolume: lambda op, t: t.host.ensure_volume(t.need_stack(op), op.volume, op.name),
    RemoveVolume: lambda op, t: t.host.remove_volume(t.project, op.name),
    CreateGroup: lambda op, t: t.host.ensure_group(t.need_stack(op), op.group, op.config_hash),
    UpdateGroup: lambda op, t: t.host.ensure_group(t.need_stack(op), op.group, op.config_hash),
    RemoveGroup: lambda op, t: t.host.remove_group(t.project, op.group),
    EnsureImage: _image,
    CreateContainer: _create,
    StartContainer: lambda op, t: t.host.start_container(op.name, watch_exit=op.watch_exit),
    StopContainer: _stop,
    RemoveContainer: lambda op, t: t.host.remove_container(op.name, volumes=op.volumes),
}


def host_call(op: Op, target: Target) -> Call:
    """The blocking call that carries ``op`` out on ``target``."""
    try:
        handler = _TABLE[type(op)]
    except KeyError:
        raise PlanError(f"internal error: the executor does not know {type(op).__name__}") from None
    return lambda: handler(op, target)
