"""Where stackd's cgroups live: ``<root>/<project>/<group>[/<container>]``, and which names are safe.

Pure: it builds and checks path strings only; it never looks at the host. Every name that becomes a
path component goes through ``check_name`` first, so nothing stackd writes can escape its root or
collide with a kernel control file (``cgroup.procs``, ``memory.max``, ``tasks``...). The real driver
and the fake share these rules.
"""

from __future__ import annotations

import re

from stackd.errors import PermanentDriverError

DEFAULT_ROOT = "/stackd"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# prefixes of control files (v1 and v2): a directory with such a name would shadow or clash with one
_FILE_PREFIXES = (
    "cgroup", "cpu", "cpuacct", "cpuset", "memory", "pids", "io", "blkio", "hugetlb", "rdma", "misc",
    "devices", "freezer", "net_cls", "net_prio", "perf_event", "irq",
)
_FILE_NAMES = frozenset({"tasks", "notify_on_release", "release_agent"})


def check_name(name: str, what: str) -> str:
    """``name`` when it is a safe single path component for a cgroup, else a ``PermanentDriverError``."""
    if not _NAME.fullmatch(name) or len(name) > 255:
        raise PermanentDriverError(
            f"invalid {what} name {name!r} for a cgroup: use letters, digits, '_', '.', '-' "
            "and start with a letter or digit")
    head = name.split(".", 1)[0]
    if name in _FILE_NAMES or ("." in name and head in _FILE_PREFIXES):
        raise PermanentDriverError(
            f"the {what} name {name!r} clashes with a cgroup control file; rename the {what}")
    return name


def check_root(root: str) -> str:
    """A normalised root (``/a/b``) after checking each component; never the hierarchy root itself."""
    parts = [p for p in root.split("/") if p]
    if not root.startswith("/") or not parts:
        raise PermanentDriverError(f"the cgroup root must be an absolute path below '/', got {root!r}")
    for part in parts:
        check_name(part, "cgroup root component")
    return "/" + "/".join(parts)


def project_path(root: str, project: str) -> str:
    """The cgroup path of a project, relative to each hierarchy's mount point."""
    return f"{check_root(root)}/{check_name(project, 'project')}"


def group_path(root: str, project: str, group: str) -> str:
    """The cgroup path of a group (the parent of its containers' cgroups)."""
    return f"{project_path(root, project)}/{check_name(group, 'group')}"


def container_path(root: str, project: str, group: str, container: str) -> str:
    """The ``cgroupsPath`` to give the OCI runtime for one container of a group."""
    return f"{group_path(root, project, group)}/{check_name(container, 'container')}"


def check_cgroup_path(path: str) -> str:
    """An absolute cgroup path made of safe components (for ``stats``), normalised."""
    parts = [p for p in path.split("/") if p]
    if not path.startswith("/") or any(p in (".", "..") for p in parts):
        raise PermanentDriverError(f"a cgroup path must be absolute and without '..', got {path!r}")
    for part in parts:
        if not _NAME.fullmatch(part):
            raise PermanentDriverError(f"invalid component {part!r} in cgroup path {path!r}")
    return "/" + "/".join(parts)
