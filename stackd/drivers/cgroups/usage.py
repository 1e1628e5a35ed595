"""Resource usage of one cgroup (for ``stack stats``), computed from the content of its v1 or v2
statistics files.

Pure: the driver reads the files and hands their text to ``usage_from``; nothing here touches the
host. Files understood::

    value         v2                                 v1
    memory        memory.current - inactive_file     memory.usage_in_bytes - total_inactive_file
                  (memory.stat)                      (memory.stat)
    memory limit  memory.max                         memory.limit_in_bytes
    cpu           cpu.stat usage_usec * 1000         cpuacct.usage (already ns)
    pids          pids.current                       pids.current

Memory is the working set, as ``docker stats`` shows it: page cache that the kernel may drop at
once (inactive file pages) is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stackd.drivers.cgroups.limits import UNLIMITED_BYTES

STAT_FILES = (
    "memory.current", "memory.usage_in_bytes", "memory.stat", "memory.max", "memory.limit_in_bytes",
    "cpu.stat", "cpuacct.usage", "pids.current",
)


@dataclass(frozen=True)
class CgroupUsage:
    """What a cgroup uses now; ``None`` where the host does not account it (controller missing)."""

    memory_bytes: int | None = None
    memory_limit: int | None = None
    cpu_ns: int | None = None
    pids: int | None = None


def flat_keyed(text: str) -> dict[str, int]:
    """A "key value" per line file (``memory.stat``, ``cpu.stat``); lines that are not so skipped."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return None
    value = int(text)
    return None if value < 0 or value >= UNLIMITED_BYTES else value


def usage_from(files: Mapping[str, str]) -> CgroupUsage:
    """The usage the given statistics files (name -> content) describe; absent files give ``None``.
    Raises ``ValueError`` on content the kernel would not produce."""
    current = _int(files.get("memory.current", files.get("memory.usage_in_bytes")))
    memory = None
    if current is not None:
        stat = flat_keyed(files.get("memory.stat", ""))
        inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
        memory = max(0, current - inactive)
    cpu = None
    if "cpuacct.usage" in files:
        cpu = int(files["cpuacct.usage"])
    elif "usage_usec" in (cpu_stat := flat_keyed(files.get("cpu.stat", ""))):
        cpu = cpu_stat["usage_usec"] * 1000
    return CgroupUsage(
        memory_bytes=memory,
        memory_limit=_int(files.get("memory.max", files.get("memory.limit_in_bytes"))),
        cpu_ns=cpu,
        pids=_int(files.get("pids.current")),
    )
