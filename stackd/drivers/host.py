"""The one seam between the executor/observer and the host: ``HostDriver``.

``execute`` carries out plan operations by calling these methods (from worker threads: every
method may block); ``observe`` builds its snapshot from the ``list_*`` methods. The real
implementation composes the narrow drivers (images, runtime + monitor, network, cgroups,
volumes) and the store; ``stackd.drivers.fakehost`` is an in-memory twin for unit tests of the
layers above. Methods are idempotent where the name says ``ensure``; ``remove_*`` of something
absent is not an error. Foreign failures surface as ``stackd.errors.DriverError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from stackd.spec.models import Stack

ContainerState = Literal["created", "running", "paused", "exited", "dead"]
Health = Literal["none", "starting", "healthy", "unhealthy"]


@dataclass(frozen=True)
class ContainerRecord:
    """What the host says about one container stackd made."""

    name: str
    project: str
    service: str
    number: int
    config_hash: str
    config_parts: Mapping[str, str] = field(default_factory=dict)
    state: ContainerState = "created"
    exit_code: int | None = None
    pid: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    image_id: str | None = None
    group: str | None = None
    health: Health = "none"
    restarts: int = 0
    addresses: Mapping[str, str] = field(default_factory=dict)
    """network key → IPv4 address"""
    ports: Sequence[str] = ()
    """published ports as ``host_ip:published->target/proto``"""


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class ResourceRecord:
    """A network, volume or group stackd made: its host name and the config hash it was made with
    (empty when it differs from what was recorded: drift)."""

    key: str
    name: str
    config_hash: str = ""


class HostDriver(Protocol):
    # images ------------------------------------------------------------------------------------
    def image_id(self, ref: str) -> str | None: ...
    def build_image(self, stack: Stack, service: str, ref: str) -> str: ...
    # cgroup groups -----------------------------------------------------------------------------
    def ensure_group(self, stack: Stack, group: str, config_hash: str) -> None: ...
    def remove_group(self, project: str, group: str) -> None: ...
    def list_groups(self, project: str) -> list[ResourceRecord]: ...
    # networks ----------------------------------------------------------------------------------
    def ensure_network(self, stack: Stack, key: str, name: str, config_hash: str) -> None: ...
    def remove_network(self, project: str, name: str) -> None: ...
    def list_networks(self, project: str) -> list[ResourceRecord]: ...
    # volumes -----------------------------------------------------------------------------------
    def ensure_volume(self, stack: Stack, key: str, name: str) -> None: ...
    def remove_volume(self, project: str, name: str) -> None: ...
    def list_volumes(self, project: str) -> list[ResourceRecord]: ...
    # containers --------------------------------------------------------------------------------
    def create_container(self, stack: Stack, service: str, number: int, name: str, *, image: str,
                         config_hash: str, config_parts: Mapping[str, str]) -> None: ...
    def start_container(self, name: str) -> None: ...
    def stop_container(self, name: str, *, timeout: float, signal: str) -> None: ...
    def kill_container(self, name: str, signal: str) -> None: ...
    def remove_container(self, name: str, *, volumes: bool) -> None: ...
    def list_containers(self, project: str | None = None) -> list[ContainerRecord]: ...
    def exec_in(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                user: str | None = None, timeout: float | None = None) -> ExecResult: ...
    def log_path(self, name: str) -> str: ...
