"""Read-only views of the host: the planner's ``Observed`` snapshot (``observe``), and what
``ps``, ``port``, ``logs`` and ``stats`` show. Asks the host driver and reads log files; never
changes anything and decides nothing about what should be done.
"""

from stackd.observe.logs import LogEntry, follow_entries, read_entries
from stackd.observe.snapshot import observe
from stackd.observe.status import ContainerStatus, PublishedPort, parse_port, published, statuses
from stackd.observe.usage import ContainerUsage, usage_row

__all__ = [
    "ContainerStatus",
    "ContainerUsage",
    "LogEntry",
    "PublishedPort",
    "follow_entries",
    "observe",
    "parse_port",
    "published",
    "read_entries",
    "statuses",
    "usage_row",
]
