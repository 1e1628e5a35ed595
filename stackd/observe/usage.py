"""What ``stats`` shows: a container's (or a group's) CPU, memory and process use, from two usage
samples.

The samples come from ``HostDriver.container_stats``. The CPU share is the CPU time used between
two samples over the wall time between them. Pure: the caller takes the samples; nothing here
asks the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stackd.drivers.cgroups.usage import CgroupUsage


@dataclass(frozen=True)
class ContainerUsage:
    """One row of ``stack stats``; ``None`` where the host does not account it. ``kind`` is
    ``container``, or ``group`` for a cgroup group (``name``: the group; ``service``: empty)."""

    name: str
    service: str
    cpu_percent: float | None
    memory_bytes: int | None
    memory_limit: int | None
    pids: int | None
    kind: str = "container"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "service": self.service, "kind": self.kind,
                "cpu_percent": self.cpu_percent, "memory_bytes": self.memory_bytes,
                "memory_limit": self.memory_limit, "pids": self.pids}


def usage_row(name: str, service: str, first: CgroupUsage | None, second: CgroupUsage | None,
              seconds: float, *, kind: str = "container") -> ContainerUsage:
    """A row from two samples taken ``seconds`` apart (the second one's memory and pids)."""
    now = second or first or CgroupUsage()
    cpu: float | None = None
    if first is not None and second is not None and first.cpu_ns is not None and second.cpu_ns is not None \
            and seconds > 0:
        cpu = max(second.cpu_ns - first.cpu_ns, 0) / (seconds * 1e9) * 100.0
    return ContainerUsage(name=name, service=service, cpu_percent=cpu, memory_bytes=now.memory_bytes,
                          memory_limit=now.memory_limit, pids=now.pids, kind=kind)
