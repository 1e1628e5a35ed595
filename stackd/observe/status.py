"""What ``ps`` and ``port`` show: container records turned into status rows and published ports.

Pure functions over ``ContainerRecord``s the caller got from ``HostDriver.list_containers``;
nothing here asks the host or changes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stackd.drivers.host import ContainerRecord

LIVE_STATES = frozenset({"running", "paused"})
LISTED_STATES = LIVE_STATES | {"restarting"}
CRASH_LOOP_RESTARTS = 3
"""restarts in a row after which a container waiting for its next one shows as a crash loop
(``stackd.plan.restart.Backoff.crash_loop_after``)"""
"""what ``ps`` lists without ``--all`` (as ``docker ps`` does)"""


@dataclass(frozen=True)
class ContainerStatus:
    """One row of ``stack ps``. ``state`` is the host's, except ``restarting`` for an exited
    container whose restart is scheduled; ``health`` is ``none`` without a healthcheck."""

    name: str
    service: str
    number: int
    state: str
    health: str
    pid: int | None
    exit_code: int | None
    restarts: int
    started_at: str | None
    ports: tuple[str, ...]

    @classmethod
    def of(cls, record: ContainerRecord) -> ContainerStatus:
        state = "restarting" if record.restarting and record.state == "exited" else record.state
        return cls(name=record.name, service=record.service, number=record.number, state=state,
                   health=record.health, pid=record.pid, exit_code=record.exit_code,
                   restarts=record.restarts, started_at=record.started_at, ports=tuple(record.ports))

    @property
    def status(self) -> str:
        """``running``, ``running (healthy)``, ``exited (1)``, ``restarting``, ``restarting (crash
        loop, 5 restarts)``, ``created``..."""
        if self.state == "restarting" and self.restarts >= CRASH_LOOP_RESTARTS:
            return f"restarting (crash loop, {self.restarts} restarts, exit code {self.exit_code})"
        if self.state in LIVE_STATES and self.health != "none":
            return f"{self.state} ({self.health})"
        if self.state in {"exited", "dead"} and self.exit_code is not None:
            return f"{self.state} ({self.exit_code})"
        return self.state

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "service": self.service, "number": self.number, "state": self.state,
                "health": self.health, "pid": self.pid, "exit_code": self.exit_code,
                "restarts": self.restarts, "started_at": self.started_at, "ports": list(self.ports)}


def statuses(records: Iterable[ContainerRecord], services: Sequence[str] = (), *,
             everything: bool = False) -> list[ContainerStatus]:
    """Rows for the containers of ``services`` (all when empty), sorted by service and number;
    only running, paused and restarting ones unless ``everything``."""
    rows = [row for row in (ContainerStatus.of(r) for r in records if not services or r.service in services)
            if everything or row.state in LISTED_STATES]
    return sorted(rows, key=lambda r: (r.service, r.number, r.name))


@dataclass(frozen=True)
class PublishedPort:
    host_ip: str
    published: str
    target: int
    protocol: str

    @property
    def address(self) -> str:
        """``0.0.0.0:8080`` (``[::]:8080`` for an IPv6 address), as ``docker port`` prints it."""
        ip = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{ip}:{self.published}"


def parse_port(text: str) -> PublishedPort | None:
    """``host_ip:published->target/proto`` (the form of ``ContainerRecord.ports``), or ``None``."""
    left, sep, right = text.partition("->")
    host, colon, published = left.rpartition(":")
    target, _, protocol = right.partition("/")
    if not sep or not colon or not target.isdigit():
        return None
    return PublishedPort(host.strip("[]"), published, int(target), protocol or "tcp")


def published(record: ContainerRecord, target: int, protocol: str = "tcp") -> list[PublishedPort]:
    """Where ``target/protocol`` of the container is published on the host."""
    found = (parse_port(p) for p in record.ports)
    return [p for p in found if p is not None and p.target == target and p.protocol == protocol]
