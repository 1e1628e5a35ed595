"""The container monitor driver: containers run under conmon, so that they keep running, and
their logs and exit statuses are kept, while no stackd process runs.

- ``conmon``: conmon's command line, its sync-pipe message and the runtime wrapper's text (pure).
- ``monitor``: ``start_container`` (conmon creates, stackd starts) and ``MonitoredContainer``,
  which reads what conmon left: exit status, pids, whether conmon still watches.
- ``logformat`` (pure) and ``logs``: the k8s-file log conmon writes, read and followed.
- ``execspec`` (pure) and ``exec``: a command run in a running container through the
  runtime's ``exec``.

Used only by execute, observe, reconcile and the daemon; it must not import those layers, and
it makes no decisions about desired state.
"""

from stackd.drivers.monitor.exec import ExecResult, ExecTimeout, exec_in
from stackd.drivers.monitor.execspec import exec_process, resolve_user
from stackd.drivers.monitor.logformat import LogLine, Stream, format_time, parse_record
from stackd.drivers.monitor.logs import LogCursor, follow_logs, read_logs
from stackd.drivers.monitor.monitor import (
    DEFAULT_STATE_DIR,
    MonitoredContainer,
    ensure_wrapper,
    find_conmon,
    read_exit_code,
    remove_files,
    start_container,
)

__all__ = [
    "DEFAULT_STATE_DIR",
    "ExecResult",
    "ExecTimeout",
    "LogCursor",
    "LogLine",
    "MonitoredContainer",
    "Stream",
    "ensure_wrapper",
    "exec_in",
    "exec_process",
    "find_conmon",
    "follow_logs",
    "format_time",
    "parse_record",
    "read_exit_code",
    "read_logs",
    "remove_files",
    "resolve_user",
    "start_container",
]
