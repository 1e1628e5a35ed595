"""Carry plans out: walk a ``Plan`` in a TaskGroup, one ``HostDriver`` call per operation.

``execute`` follows the plan's order and data and decides nothing about desired state; waiting
for ``depends_on`` conditions is the ``HealthWaiter``'s; time comes from an injected ``Clock``.
Imports ``plan`` (data), ``spec`` (the stack's settings) and ``drivers.host`` (the seam); it
must not print, read argv, or reach the host other than through the ``HostDriver`` it is given.
"""

from stackd.execute.clock import Clock, ManualClock, SystemClock
from stackd.execute.dispatch import Target, host_call, stop_settings
from stackd.execute.events import Event, Status, describe
from stackd.execute.executor import Outcome, Result, execute
from stackd.execute.health import HealthSettings, HealthWaiter, WaitFailed

__all__ = [
    "Clock",
    "Event",
    "HealthSettings",
    "HealthWaiter",
    "ManualClock",
    "Outcome",
    "Result",
    "Status",
    "SystemClock",
    "Target",
    "WaitFailed",
    "describe",
    "execute",
    "host_call",
    "stop_settings",
]
