"""The one seam between the executor/observer and the host: ``HostDriver``.

``execute`` carries out plan operations by calling these methods (from worker threads: every
method may block); ``observe`` builds its snapshot from the ``list_*`` methods. The real
implementation composes the narrow drivers (images, runtime + monitor, network, cgroups,
volumes) and the store; ``stackd.drivers.fakehost`` is an in-memory twin for unit tests of the
layers above. Methods are idempotent where the name says ``ensure``; ``remove_*`` of something
absent is not an error. Foreign failures surface as ``stackd.errors.DriverError`` subclasses.

Besides carrying out operations, a host answers the questions asked before anything is changed
(``host_problems``: what it lacks to run containers at all; ``port_conflicts``: which host
ports that new containers would publish are taken), keeps the last healthcheck result of each
container (``record_health``; reported back on its ``ContainerRecord``) and reports resource use
(``container_stats``, ``group_stats``). ``repair_drift`` puts back the host objects of a running stack that
were changed behind stackd's back (veths, bridges, the nft table, cgroup limits) and says what
it did, one ``Repair`` each.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from stackd.drivers.cgroups.usage import CgroupUsage
from stackd.drivers.images.config import Healthcheck as ImageHealthcheck
from stackd.errors import DriverError, PermanentDriverError, TransientDriverError
from stackd.spec.models import Stack

ContainerState = Literal["created", "running", "paused", "exited", "dead"]
Health = Literal["none", "starting", "healthy", "unhealthy"]


@dataclass(frozen=True)
class HealthRecord:
    """The last healthcheck result of a container: its health after that probe (Docker's rules:
    ``starting`` until the first pass, ``unhealthy`` after ``retries`` failures in a row), how
    many probes failed in a row, the probe's output (shortened), when it ran (ISO 8601, UTC), and
    the ``started_at`` of the run it belongs to (a result of an earlier run does not count)."""

    status: Health
    failing_streak: int
    output: str
    checked_at: str
    started_at: str | None = None


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
    last_health: HealthRecord | None = None
    """the last healthcheck result recorded for this run of the container (``health`` follows it)"""
    restarting: bool = False
    """exited, and a restart is scheduled (its restart policy's backoff has not run out)"""
    image_healthcheck: ImageHealthcheck | None = None
    """the healthcheck of the container's image (a service's own settings go over it)"""


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


@dataclass(frozen=True)
class Repair:
    """One piece of drift put right by ``repair_drift``: the resource (``network:demo_default``,
    ``container:demo-web-1``, ``group:background``, ``nft:demo``), what was done (``recreated
    bridge stk-ab12cd``) and what was found (``bridge missing``)."""

    resource: str
    what: str
    why: str

    def render(self) -> str:
        return f"{self.resource}: {self.what} ({self.why})"


class RepairError(DriverError):
    """``repair_drift`` failed on some resources; ``repairs`` are those it made before and
    besides (they are done and stay done). Raised as ``TransientRepairError`` or
    ``PermanentRepairError``, so that it is classified like any driver error."""

    def __init__(self, message: str, repairs: Sequence[Repair] = ()) -> None:
        super().__init__(message)
        self.repairs: tuple[Repair, ...] = tuple(repairs)


class TransientRepairError(RepairError, TransientDriverError):
    pass


class PermanentRepairError(RepairError, PermanentDriverError):
    pass


class HostDriver(Protocol):
    # the host itself ---------------------------------------------------------------------------
    def host_problems(self) -> list[str]:
        """What this host lacks to run containers (root, kernel features, tools), one line
        each naming the feature and what to do; empty when nothing is missing."""
        ...

    def port_conflicts(self, stack: Stack, containers: Sequence[tuple[str, str]], *,
                       replacing: Collection[str] = ()) -> list[str]:
        """Why the host ports that the new ``containers`` (``(service, container name)`` pairs)
        would publish cannot be published: each a line naming the service, the port and what
        holds it (a process listening on it, another container publishing it, or another of the
        new containers); containers named in ``replacing`` are about to go and hold nothing."""
        ...

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
    def start_container(self, name: str, *, watch_exit: bool = True) -> None:
        """Start the container; with ``watch_exit``, fail when it exits at once (with its status
        and last output)."""
        ...
    def stop_container(self, name: str, *, timeout: float, signal: str | None = None) -> None:
        """Send ``signal`` (``None``: the container's own stop signal, from its service or else
        its image's ``StopSignal``), wait up to ``timeout`` seconds, then SIGKILL."""
        ...

    def kill_container(self, name: str, signal: str) -> None: ...
    def remove_container(self, name: str, *, volumes: bool) -> None: ...
    def list_containers(self, project: str | None = None) -> list[ContainerRecord]: ...
    def exec_in(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                user: str | None = None, timeout: float | None = None) -> ExecResult: ...
    def log_path(self, name: str) -> str: ...
    def record_health(self, name: str, record: HealthRecord) -> None:
        """Keep ``record`` as the container's last healthcheck result (until its next run)."""
        ...

    def container_stats(self, name: str) -> CgroupUsage | None:
        """The container's resource use now; ``None`` when it has no cgroup (not running)."""
        ...

    def group_stats(self, project: str, group: str) -> CgroupUsage | None:
        """The resource use of a group of ``project`` now (all its containers); ``None`` when the
        group has no cgroup."""
        ...

    # drift -------------------------------------------------------------------------------------
    def stamp(self, project: str) -> Hashable | None:
        """A cheap value that changes whenever what a pass of ``project`` would observe or repair
        may have changed, except its links and nft table (whose changes the host reports as
        events); None when it cannot tell. The reconciler's periodic look compares it with that
        of its last quiet pass, and does the whole pass only when it differs."""
        ...

    def repair_drift(self, stack: Stack, *, deep: bool = False, table: bool = False,
                     links: bool = True) -> list[Repair]:
        """Put back what was changed behind stackd's back on the host objects of the applied
        ``stack``: the bridges of its networks and the veths of its running (or paused)
        containers (with ``links``, ``table`` or ``deep``: the reconciler leaves them to the
        host's link events between its table checks), cgroup limits of its groups and containers
        (a container's only when something wrote to its cgroup since the last look, unless
        ``table`` or ``deep``), missing group cgroups; with ``table`` (or
        ``deep``) also the project's nft table (it runs ``nft``); with ``deep`` also the
        addresses and routes inside containers' namespaces (a namespace switch per container).
        Containers that do not run are left alone (their endpoints are rebuilt when they start),
        and so is a container's process lifecycle.
        Returns what was repaired, empty when nothing had drifted. Raises a ``RepairError``
        naming every resource that could not be repaired, carrying the repairs made."""
        ...
