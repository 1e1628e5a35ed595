"""What ``logs`` shows: the lines of several containers' logs, read now or followed as they come.

The log of a container is the file at ``HostDriver.log_path`` (k8s-file format, read by
``stackd.drivers.monitor.logs``). ``read_entries`` merges the containers' lines by time;
``follow_entries`` hands every line to ``emit`` as it is written, until each container has
stopped and its log is drained (or the caller cancels). Reads files and asks the host whether
containers still run; never changes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio

from stackd.drivers.host import ContainerRecord, HostDriver
from stackd.drivers.monitor.logformat import LogLine
from stackd.drivers.monitor.logs import follow_logs, read_logs

RUNNING = frozenset({"running", "paused"})


@dataclass(frozen=True)
class LogEntry:
    container: str
    service: str
    line: LogLine


def read_entries(host: HostDriver, containers: Sequence[ContainerRecord], *, tail: int | None = None,
                 since: datetime | None = None, timestamps: bool = False) -> list[LogEntry]:
    """Every container's lines (those since ``since``, then its last ``tail`` ones), merged by
    time. Blocking."""
    entries = [LogEntry(c.name, c.service, line)
               for c in containers
               for line in read_logs(Path(host.log_path(c.name)), tail=tail, since=since,
                                     timestamps=timestamps)]
    return sorted(entries, key=lambda e: e.line.time)


async def follow_entries(host: HostDriver, containers: Sequence[ContainerRecord],
                         emit: Callable[[LogEntry], None], *, tail: int | None = None,
                         since: datetime | None = None, timestamps: bool = False,
                         poll_interval: float = 0.1) -> None:
    """Hand each container's lines to ``emit`` as they are written, until every container has
    stopped and its log is drained."""

    def stopped(name: str, project: str) -> Callable[[], bool]:
        def check() -> bool:
            found = {r.name: r for r in host.list_containers(project)}
            return name not in found or found[name].state not in RUNNING
        return check

    async def one(c: ContainerRecord) -> None:
        async for line in follow_logs(Path(host.log_path(c.name)), tail=tail, since=since,
                                      timestamps=timestamps, done=stopped(c.name, c.project),
                                      poll_interval=poll_interval):
            emit(LogEntry(c.name, c.service, line))

    async with anyio.create_task_group() as tg:
        for c in containers:
            tg.start_soon(one, c)
