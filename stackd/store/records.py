"""The records the store takes in and hands out: one frozen dataclass per table.

Data only: no I/O, no sqlite. Times are timezone-aware ``datetime``s (the store keeps them in
UTC); mappings are read-only by convention (the store builds a fresh one for every record).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

ResourceKind = Literal["group", "network", "volume"]
RESOURCE_KINDS: tuple[ResourceKind, ...] = ("group", "network", "volume")

JsonScalar = str | int | float | bool | None
"""What an event's ``data`` values may be (flat, so that events stay easy to render and filter)."""


@dataclass(frozen=True)
class StackRevision:
    """One applied desired state of a project: the files and overlays it came from, the model
    as JSON (``Stack.model_dump_json()``) and the options of ``up`` that shape it, as a JSON
    object (``options_json``). Revisions of a project only ever increase."""

    project: str
    revision: int
    files: tuple[str, ...]
    envs: tuple[str, ...]
    stack_json: str
    applied_at: datetime
    options_json: str = "{}"


@dataclass(frozen=True)
class StoredContainer:
    """What stackd remembers about a container it made, beyond what its labels say: restart
    bookkeeping (``restarts``, ``last_exit_code``, ``backoff_until``) and whether the user
    stopped it (a restart policy of ``unless-stopped`` must then leave it alone)."""

    name: str
    project: str
    service: str
    number: int
    config_hash: str
    created_at: datetime
    config_parts: Mapping[str, str] = field(default_factory=dict)
    image_id: str | None = None
    group: str | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    stopped_by_user: bool = False
    backoff_until: datetime | None = None


@dataclass(frozen=True)
class StoredResource:
    """A group, network or volume stackd made for a project: its key in the stack, its host
    name and the config hash it was made with."""

    kind: ResourceKind
    project: str
    key: str
    name: str
    config_hash: str = ""


@dataclass(frozen=True)
class StoredSubnet:
    """The subnet a network got from the IPAM. The fields are those of the network driver's
    ``Subnet.to_record()``; ``from_mapping``/``to_mapping`` convert to and from that form."""

    network: str
    subnet: str
    gateway: str
    ip_range: str
    reserved: tuple[str, ...] = ()

    def to_mapping(self) -> dict[str, object]:
        return {"network": self.network, "subnet": self.subnet, "gateway": self.gateway,
                "ip_range": self.ip_range, "reserved": sorted(self.reserved)}

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> StoredSubnet:
        reserved = data.get("reserved") or ()
        if not isinstance(reserved, list | tuple):
            raise ValueError(f"subnet record: reserved must be a list, got {reserved!r}")
        return cls(str(data["network"]), str(data["subnet"]), str(data["gateway"]),
                   str(data["ip_range"]), tuple(sorted(str(a) for a in reserved)))


@dataclass(frozen=True)
class Event:
    """Something that happened to a resource of a project (``service:web:1``, ``network:demo_default``).
    Ids increase and are never reused, also after old events are pruned."""

    id: int
    ts: datetime
    project: str
    resource: str
    kind: str
    message: str
    data: Mapping[str, JsonScalar] = field(default_factory=dict)
