"""An in-memory cgroups driver for unit tests of the layers above (execute, observe, reconcile).

It follows the same rules as ``CgroupDriver`` where callers can tell: names are checked the same
way, a limit needing a controller the host lacks is a ``PermanentDriverError``, a group holding
processes cannot be removed (``TransientDriverError``), and ``read_group`` returns what the kernel
would report (limits rendered to v2 files and parsed back). Tests steer it with ``add_process``,
``set_usage``, ``set_limits`` (drift made outside stackd) and ``fail_next``, and read ``calls``.
It never touches the host.
"""

from __future__ import annotations

from collections.abc import Iterable

from stackd.drivers.cgroups.limits import GroupLimits, parse, render
from stackd.drivers.cgroups.paths import DEFAULT_ROOT, check_cgroup_path, check_root, group_path, project_path
from stackd.drivers.cgroups.usage import CgroupUsage
from stackd.errors import DriverError, PermanentDriverError, TransientDriverError


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent + "/")


class FakeCgroups:
    """Groups in a dict (implements ``protocol.Cgroups``)."""

    def __init__(self, root: str = DEFAULT_ROOT,
                 controllers: Iterable[str] = ("cpu", "memory", "pids"), page_size: int = 4096) -> None:
        self._root = check_root(root)
        self.controllers = frozenset(controllers)
        self.page_size = page_size
        self.groups: dict[tuple[str, str], GroupLimits] = {}  # as the kernel would report them
        self.processes: dict[str, set[int]] = {}  # cgroup path -> pids (groups or leaves below them)
        self.usage: dict[str, CgroupUsage] = {}
        self.calls: list[tuple[str, ...]] = []
        self._failures: dict[str, list[DriverError]] = {}

    # ------------------------------------------------------------------------------ steering

    def fail_next(self, method: str, error: DriverError) -> None:
        """Make the next call of ``method`` raise ``error`` (queued; one error per call)."""
        self._failures.setdefault(method, []).append(error)

    def add_process(self, path: str, pid: int) -> None:
        """Put a process in the cgroup at ``path`` (a group or a container leaf below one)."""
        self.processes.setdefault(check_cgroup_path(path), set()).add(pid)

    def remove_process(self, pid: int) -> None:
        for pids in self.processes.values():
            pids.discard(pid)
        self.processes = {p: s for p, s in self.processes.items() if s}

    def set_usage(self, path: str, usage: CgroupUsage) -> None:
        self.usage[check_cgroup_path(path)] = usage

    def set_limits(self, project: str, group: str, limits: GroupLimits) -> None:
        """Change a group's limits behind stackd's back (drift)."""
        self.groups[(project, group)] = self._as_kernel_keeps(limits)

    # ------------------------------------------------------------------------------ protocol

    @property
    def root(self) -> str:
        return self._root

    def group_path(self, project: str, group: str) -> str:
        return group_path(self._root, project, group)

    def _call(self, method: str, *args: str) -> None:
        self.calls.append((method, *args))
        queued = self._failures.get(method)
        if queued:
            raise queued.pop(0)

    def _as_kernel_keeps(self, limits: GroupLimits) -> GroupLimits:
        return parse({f.name: f.value for f in render(limits, "v2", self.page_size)})

    def ensure_group(self, project: str, group: str, limits: GroupLimits) -> None:
        self._call("ensure_group", project, group)
        self.group_path(project, group)
        missing = sorted(limits.controllers() - self.controllers)
        if missing:
            raise PermanentDriverError(
                f"group {group!r} of project {project!r} sets limits that need the "
                f"{', '.join(missing)} controller(s), which this host does not offer to stackd")
        self.groups[(project, group)] = self._as_kernel_keeps(limits)

    def read_group(self, project: str, group: str) -> GroupLimits | None:
        self._call("read_group", project, group)
        self.group_path(project, group)
        return self.groups.get((project, group))

    def list_projects(self) -> tuple[str, ...]:
        self._call("list_projects")
        return tuple(sorted({p for p, _ in self.groups}))

    def list_groups(self, project: str) -> tuple[str, ...]:
        self._call("list_groups", project)
        project_path(self._root, project)
        return tuple(sorted(g for p, g in self.groups if p == project))

    def stats(self, path: str) -> CgroupUsage | None:
        self._call("stats", path)
        rel = check_cgroup_path(path)
        if rel in self.usage:
            return self.usage[rel]
        if rel not in self.processes and rel not in {self.group_path(p, g) for p, g in self.groups}:
            return None
        pids = sum(len(s) for p, s in self.processes.items() if _inside(p, rel))
        return CgroupUsage(memory_bytes=0, cpu_ns=0, pids=pids)

    def _busy(self, rel: str) -> list[str]:
        return [f"cgroup {p} still holds {len(s)} process(es) ({' '.join(map(str, sorted(s)))}); "
                "stop its containers first"
                for p, s in sorted(self.processes.items()) if s and _inside(p, rel)]

    def remove_group(self, project: str, group: str) -> None:
        self._call("remove_group", project, group)
        busy = self._busy(self.group_path(project, group))
        if busy:
            raise TransientDriverError("\n".join(busy))
        self.groups.pop((project, group), None)

    def remove_project(self, project: str) -> None:
        self._call("remove_project", project)
        busy: list[str] = []
        for p, g in sorted(self.groups):
            if p != project:
                continue
            held = self._busy(self.group_path(p, g))
            if held:
                busy += held
            else:
                del self.groups[(p, g)]
        if busy:
            raise TransientDriverError("\n".join(busy))
