"""``ContainerInfo``: what the host driver records about a container it made, beside its bundle
(``container.json``), so that every later step works from the container's name alone.

The stack is only known while a container is created; stopping, removing, listing and the
rewrites of the project's hosts files and nft table later need its networks, addresses,
aliases, published ports, anonymous volumes, stop signal, and the mounts it lends to
``volumes_from``. They are written here once, at
create time, atomically, and read back as frozen data. Reading and writing this one file is the
only I/O of this module; it decides nothing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from stackd.drivers.containers.mounts import SharedMount
from stackd.drivers.fsutil import write_atomic
from stackd.drivers.images.config import Healthcheck
from stackd.errors import PermanentDriverError

NetworkMode = Literal["networks", "none", "host", "join"]
"""``networks``: the container's own network namespace joined to its stack networks; ``none``:
its own namespace with loopback only; ``host``: the host's; ``join``: another container's."""


@dataclass(frozen=True)
class Attachment:
    """The container on one stack network: its key in the stack, the host network name, the
    address leased to it and its aliases there."""

    key: str
    network: str
    address: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortInfo:
    """One published port (or range) of the container."""

    target: int
    published: int
    protocol: str = "tcp"
    host_ip: str | None = None
    published_end: int | None = None

    def render(self) -> str:
        """``host_ip:published->target/proto`` (the form of ``ContainerRecord.ports``)."""
        host = self.host_ip or "0.0.0.0"
        span = f"{self.published}" if not self.published_end else f"{self.published}-{self.published_end}"
        return f"{host}:{span}->{self.target}/{self.protocol}"


@dataclass(frozen=True)
class ContainerInfo:
    """Everything about one container that later steps need (see the module docstring)."""

    name: str
    project: str
    service: str
    number: int
    image: str
    image_id: str
    cgroups_path: str
    hostname: str
    group: str | None = None
    network_mode: NetworkMode = "networks"
    netns: str | None = None
    """the named network namespace this container owns (``networks`` and ``none``)"""
    joins: str | None = None
    """the name of the container whose network namespace it joins (``join``)"""
    attachments: tuple[Attachment, ...] = ()
    gateway: str | None = None
    """the key of the network the default route goes through"""
    ports: tuple[PortInfo, ...] = ()
    extra_hosts: tuple[tuple[str, str], ...] = ()
    anonymous_volumes: tuple[str, ...] = ()
    stop_signal: str = "SIGTERM"
    stop_signal_from_service: bool = False
    tty: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    """the image's healthcheck (``HEALTHCHECK``), for the health of the container"""
    shared_mounts: tuple[SharedMount, ...] | None = None
    """the volumes and binds ``volumes_from`` takes from it (``None``: not recorded)"""

    def address_on(self, key: str) -> str | None:
        return next((a.address for a in self.attachments if a.key == key), None)

    def publish_address(self) -> str | None:
        """The address published ports are forwarded to: on the gateway network, else the first."""
        if self.gateway is not None:
            found = self.address_on(self.gateway)
            if found is not None:
                return found
        return self.attachments[0].address if self.attachments else None

    # ------------------------------------------------------------------------------ JSON

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, what: str = "container.json") -> ContainerInfo:
        try:
            raw: dict[str, Any] = json.loads(data)
            raw["attachments"] = tuple(Attachment(**{**a, "aliases": tuple(a.get("aliases", ()))})
                                       for a in raw.get("attachments", ()))
            raw["ports"] = tuple(PortInfo(**p) for p in raw.get("ports", ()))
            raw["extra_hosts"] = tuple((str(h), str(a)) for h, a in raw.get("extra_hosts", ()))
            raw["anonymous_volumes"] = tuple(raw.get("anonymous_volumes", ()))
            check = raw.get("healthcheck")
            raw["healthcheck"] = Healthcheck(**{**check, "test": tuple(check["test"])}) if check else None
            shared = raw.get("shared_mounts")
            raw["shared_mounts"] = None if shared is None else tuple(
                SharedMount(**{**m, "options": tuple(m["options"])}) for m in shared)
            return cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise PermanentDriverError(f"{what} is damaged: {exc}") from exc


def write_info(path: Path, info: ContainerInfo) -> None:
    try:
        write_atomic(path, info.to_json())
    except OSError as exc:
        raise PermanentDriverError(f"cannot write {path}: {exc.strerror or exc}") from exc


def read_info(path: Path) -> ContainerInfo | None:
    """The record at ``path``, or ``None`` when there is none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PermanentDriverError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return ContainerInfo.from_json(data, str(path))
