"""How a container meets the network, as data: which network namespace it uses
(``network_mode``), which stack networks it joins and in which order, which one carries its
default route, its published ports and its extra host names.

- no ``network_mode``: its own namespace on every network of the service; the default route
  goes through the non-``internal`` network with the highest ``gw_priority`` (then by name),
  which also becomes ``eth0``; an ``internal`` network never carries a default route;
- ``none``: its own namespace with loopback only; ``host``: the host's namespace;
- ``service:NAME``: the namespace of the first container of service NAME; ``container:NAME``:
  that of container NAME.

Published ports without a host port (Docker would pick a free one) are not published. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackd.drivers.containers.info import NetworkMode, PortInfo
from stackd.drivers.containers.networks import Wanted
from stackd.errors import PermanentDriverError
from stackd.plan import names
from stackd.spec.models import Service, Stack


@dataclass(frozen=True)
class Mode:
    """The network mode of a service: its kind and, for ``join``, the container it joins."""

    kind: NetworkMode
    joins: str | None = None


def network_mode(stack: Stack, svc: Service) -> Mode:
    mode = svc.network_mode
    if not mode:
        return Mode("networks")
    if mode == "none":
        return Mode("none")
    if mode == "host":
        return Mode("host")
    kind, _, target = mode.partition(":")
    if kind == "service" and target:
        other = stack.services.get(target)
        if other is None:
            raise PermanentDriverError(f"service {svc.name}: network_mode {mode}: no service {target}")
        return Mode("join", names.container_name(stack.name, other, 1))
    if kind == "container" and target:
        return Mode("join", target)
    raise PermanentDriverError(f"service {svc.name}: network_mode {mode!r} is not supported (use none, host, "
                               "service:NAME or container:NAME, or leave it out to use the stack's networks)")


def _internal(stack: Stack, key: str) -> bool:
    return bool(names.get(names.stack_networks(stack).get(key), "internal", False))


def _priority(svc: Service, key: str) -> int:
    attachment = svc.networks.get(key)
    if attachment is None:
        return 0
    return attachment.gw_priority or attachment.priority or 0


def gateway_key(stack: Stack, svc: Service) -> str | None:
    """The network the default route goes through (``None``: only internal networks)."""
    candidates = [k for k in names.service_networks(svc) if not _internal(stack, k)]
    if not candidates:
        return None
    return min(candidates, key=lambda k: (-_priority(svc, k), k))


def wanted_networks(stack: Stack, svc: Service) -> list[Wanted]:
    """The networks to join, the gateway network first, then by priority and name."""
    gateway = gateway_key(stack, svc)
    keys = sorted(names.service_networks(svc), key=lambda k: (k != gateway, -_priority(svc, k), k))
    out = []
    for key in keys:
        attachment = svc.networks.get(key)
        out.append(Wanted(key=key, network=names.network_name(stack, key),
                          address=attachment.ipv4_address if attachment else None,
                          aliases=tuple(attachment.aliases) if attachment else ()))
    return out


def port_infos(svc: Service) -> tuple[PortInfo, ...]:
    """The service's published ports (those with a host port)."""
    out = []
    for p in svc.ports:
        if not p.published:
            continue
        low, _, high = p.published.partition("-")
        first, last = int(low), int(high or low)
        if first == 0:
            continue
        out.append(PortInfo(target=p.target, published=first, protocol=p.protocol, host_ip=p.host_ip,
                            published_end=last if last != first else None))
    return tuple(out)


def extra_host_pairs(svc: Service) -> tuple[tuple[str, str], ...]:
    """``extra_hosts`` as (name, address) pairs, in the order written."""
    return tuple((host, address) for host, addresses in svc.extra_hosts.items() for address in addresses)
