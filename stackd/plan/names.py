"""Names and facts the planner derives from the model: host names, replicas, attachments.

- container: ``<project>-<service>-<n>``, or the service's ``container_name``;
- network: ``<project>_<key>``, or its ``name:``; an external network without ``name:`` is ``<key>``;
- volume: the same rules as networks;
- image of a service: its ``image:``, else ``<project>-<service>`` (the name a build gets).

A service that sets no ``network_mode`` and no ``networks`` joins the ``default`` network, which
exists even when the file does not declare it (Compose adds it the same way). Definitions may
be plain mappings or models, so fields are read through ``get``. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackd.spec.models import Service, Stack

DEFAULT_NETWORK = "default"


def get(obj: Any, key: str, default: Any = None) -> Any:
    """``obj[key]`` for a mapping, ``obj.key`` for a model, ``default`` when absent or None."""
    if obj is None:
        return default
    value = obj.get(key, default) if isinstance(obj, Mapping) else getattr(obj, key, default)
    return default if value is None else value


def container_name(project: str, svc: Service, number: int) -> str:
    custom = get(svc, "container_name")
    return str(custom) if custom else f"{project}-{svc.name}-{number}"


def is_external(defn: Any) -> bool:
    return bool(get(defn, "external", False))


def network_name(stack: Stack, key: str) -> str:
    return _resource_name(stack.name, key, stack.networks.get(key))


def volume_name(stack: Stack, key: str) -> str:
    return _resource_name(stack.name, key, stack.volumes.get(key))


def _resource_name(project: str, key: str, defn: Any) -> str:
    name = get(defn, "name")
    if name:
        return str(name)
    return key if is_external(defn) else f"{project}_{key}"


def service_networks(svc: Service) -> list[str]:
    """The keys of the networks a service's containers join, sorted (none with ``network_mode``)."""
    if svc.network_mode:
        return []
    return sorted(svc.networks) or [DEFAULT_NETWORK]


def stack_networks(stack: Stack) -> dict[str, Any]:
    """Declared networks plus the implicit ``default`` one when a service joins it."""
    out: dict[str, Any] = dict(stack.networks)
    if DEFAULT_NETWORK not in out and any(
            DEFAULT_NETWORK in service_networks(s) for s in stack.services.values()):
        out[DEFAULT_NETWORK] = None
    return out


def service_volumes(svc: Service) -> list[str]:
    """Keys of the named (top-level) volumes a service mounts, sorted and unique."""
    keys = {str(get(v, "source")) for v in svc.volumes
            if get(v, "type") == "volume" and get(v, "source")}
    return sorted(keys)


def service_group(svc: Service) -> str | None:
    """The stack group (``x-stackd.groups``) a service's containers run in, if any."""
    group = get(svc, "group")
    return str(group) if group else None


def image_ref(project: str, svc: Service) -> str:
    return svc.image or f"{project}-{svc.name}"


def replicas(svc: Service, scale: Mapping[str, int]) -> int:
    """How many containers the service wants: ``--scale``, else ``scale:``, else ``deploy.replicas``."""
    if svc.name in scale:
        return scale[svc.name]
    if svc.scale is not None:
        return svc.scale
    if get(svc.deploy, "mode") == "global":
        return 1
    value = get(svc.deploy, "replicas")
    return int(value) if value is not None else 1
