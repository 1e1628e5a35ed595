"""The real cgroups driver: stack groups as cgroups at ``<root>/<project>/<group>`` on cgroup v1,
v2 or a hybrid of both, with their limits, removal and usage statistics.

Side effects live here (through ``cgfs``): creating and removing cgroup directories, writing limits
and delegating controllers through ``cgroup.subtree_control``. It only ever touches paths below its
root, in the hierarchies the ``CgroupLayout`` names. Decisions about *whether* a group should exist
belong to the planner; this module carries them out and reports what it finds.

Where things go:

- v1: a group is created in the hierarchies of the controllers it manages (``cpu``, ``memory``,
  ``pids``) and of ``cpuacct`` (for statistics). OCI runtimes create container leaves in every
  hierarchy they join (also ``devices``, ``freezer``, ``name=systemd``...), so removal looks in all.
- v2: every level from the mount root down to the group gets the managed controllers it is offered
  enabled in ``cgroup.subtree_control``, so that the group and its containers get the limit files.
  The group itself holds no process (containers are its leaves), as v2 requires.
- hybrid: each controller is handled in the hierarchy that carries it (``CgroupLayout.backing``):
  on a v1-plus-unified host that is v1 for all of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from stackd.drivers.cgroups import cgfs
from stackd.drivers.cgroups.detect import CgroupLayout, Version
from stackd.drivers.cgroups.limits import GroupLimits, file_value, parse, render
from stackd.drivers.cgroups.paths import (
    DEFAULT_ROOT,
    check_cgroup_path,
    check_root,
    group_path,
    project_path,
)
from stackd.drivers.cgroups.usage import CgroupUsage, usage_from
from stackd.errors import DriverError, PermanentDriverError, TransientDriverError

DEFAULT_CONTROLLERS = ("cpu", "memory", "pids")
_VERSIONS: tuple[Version, ...] = ("v1", "v2")
_LIMIT_FILES = {  # controller -> version -> files read back by read_group
    c: {v: tuple(f.name for f in render(GroupLimits(), v) if f.controller == c) for v in _VERSIONS}
    for c in DEFAULT_CONTROLLERS
}


def _under(mount: Path, rel: str) -> Path:
    return mount / rel.lstrip("/")


class CgroupDriver:
    """Groups of stacks on this host's cgroups (implements ``protocol.Cgroups``)."""

    def __init__(self, layout: CgroupLayout, root: str = DEFAULT_ROOT,
                 controllers: Iterable[str] = DEFAULT_CONTROLLERS, page_size: int | None = None) -> None:
        self.layout = layout
        self._root = check_root(root)
        # the controllers delegated to groups (v2 subtree_control) and managed in them
        self.controllers = tuple(controllers)
        self.page_size = page_size or os.sysconf("SC_PAGE_SIZE")
        self._dirs: dict[tuple[str, str], tuple[Path, ...]] = {}  # see group_dirs

    @property
    def root(self) -> str:
        return self._root

    def group_path(self, project: str, group: str) -> str:
        return group_path(self._root, project, group)

    # ------------------------------------------------------------------------------ where

    def _v1_mounts(self) -> tuple[Path, ...]:
        """The v1 hierarchies a group is created in: its managed controllers' and cpuacct's."""
        found = {b[1] for c in (*self.controllers, "cpuacct")
                 if (b := self.layout.backing(c)) is not None and b[0] == "v1"}
        return tuple(sorted(found))

    def _uses_v2(self) -> bool:
        if self.layout.v2 is None:
            return False
        return self.layout.mode == "v2" or any(
            (b := self.layout.backing(c)) is not None and b[0] == "v2" for c in self.controllers)

    def _group_mounts(self) -> tuple[Path, ...]:
        v2 = (self.layout.v2,) if self._uses_v2() and self.layout.v2 is not None else ()
        return self._v1_mounts() + v2

    # ------------------------------------------------------------------------------ create / update

    def ensure_group(self, project: str, group: str, limits: GroupLimits) -> None:
        rel = self.group_path(project, group)
        missing = sorted(c for c in limits.controllers()
                         if self.layout.backing(c) is None or c not in self.controllers)
        if missing:
            offered = ", ".join(sorted(self.layout.v2_controllers)) or "none"
            raise PermanentDriverError(
                f"group {group!r} of project {project!r} sets limits that need the "
                f"{', '.join(missing)} controller(s), which this host does not offer to stackd "
                f"(cgroup layout {self.layout.mode}; v1 hierarchies: "
                f"{', '.join(sorted(self.layout.v1)) or 'none'}; v2 controllers: {offered})")
        levels = rel.strip("/").split("/")
        for mount in self._v1_mounts():
            for depth in range(1, len(levels) + 1):
                cgfs.mkdir(mount.joinpath(*levels[:depth]))
        if self._uses_v2() and self.layout.v2 is not None:
            mount = self.layout.v2
            self._delegate(mount)
            for depth in range(1, len(levels) + 1):
                cgroup = mount.joinpath(*levels[:depth])
                cgfs.mkdir(cgroup)
                self._delegate(cgroup)
        self._write_limits(rel, limits)

    def _delegate(self, cgroup: Path) -> None:
        """Enable the managed controllers this v2 cgroup is offered for its children."""
        offered = set((cgfs.read(cgroup / "cgroup.controllers") or "").split())
        enabled = set((cgfs.read(cgroup / "cgroup.subtree_control") or "").split())
        for controller in self.controllers:
            if controller in offered and controller not in enabled:
                cgfs.write(cgroup / "cgroup.subtree_control", f"+{controller}")

    def _write_limits(self, rel: str, limits: GroupLimits) -> None:
        for version in _VERSIONS:
            for f in render(limits, version, self.page_size):
                backing = self.layout.backing(f.controller)
                if backing is None or backing[0] != version or f.controller not in self.controllers:
                    continue
                path = _under(backing[1], rel) / f.name
                current = cgfs.read(path)
                if current is None:
                    if f.required:
                        raise PermanentDriverError(
                            f"cannot set {f.name} in {path.parent}: the file does not exist (the "
                            f"{f.controller} controller is not enabled for this cgroup)")
                    continue
                try:
                    same = file_value(f.name, current) == file_value(f.name, f.value)
                except ValueError:
                    same = False
                if not same:
                    cgfs.write(path, f.value)

    # ------------------------------------------------------------------------------ observe

    def group_dirs(self, project: str, group: str) -> tuple[Path, ...]:
        """The directories of a group, one per hierarchy it is made in (whether or not they exist)."""
        key = (project, group)
        dirs = self._dirs.get(key)
        if dirs is None:
            rel = self.group_path(project, group)
            dirs = self._dirs[key] = tuple(_under(m, rel) for m in self._group_mounts())
        return dirs

    def read_group(self, project: str, group: str) -> GroupLimits | None:
        rel = self.group_path(project, group)
        if not any(d.is_dir() for d in self.group_dirs(project, group)):
            return None
        files: dict[str, str] = {}
        for controller in self.controllers:
            backing = self.layout.backing(controller)
            if backing is None or controller not in _LIMIT_FILES:
                continue
            version, mount = backing
            for name in _LIMIT_FILES[controller][version]:
                text = cgfs.read(_under(mount, rel) / name)
                if text is not None:
                    files[name] = text
        try:
            return parse(files)
        except ValueError as exc:
            raise PermanentDriverError(f"unexpected content in the limit files of {rel}: {exc}") from exc

    def list_projects(self) -> tuple[str, ...]:
        names: set[str] = set()
        for mount in self.layout.mounts():
            names.update(cgfs.subdirs(_under(mount, self._root)))
        return tuple(sorted(names))

    def list_groups(self, project: str) -> tuple[str, ...]:
        rel = project_path(self._root, project)
        names: set[str] = set()
        for mount in self.layout.mounts():
            names.update(cgfs.subdirs(_under(mount, rel)))
        return tuple(sorted(names))

    def stats(self, path: str) -> CgroupUsage | None:
        rel = check_cgroup_path(path)
        if not any(_under(m, rel).is_dir() for m in self.layout.mounts()):
            return None
        wanted: list[tuple[Path, str]] = []
        memory = self.layout.backing("memory")
        if memory is not None:
            names = (("memory.usage_in_bytes", "memory.limit_in_bytes") if memory[0] == "v1"
                     else ("memory.current", "memory.max"))
            wanted += [(memory[1], n) for n in (*names, "memory.stat")]
        cpuacct = self.layout.backing("cpuacct")
        if cpuacct is not None and cpuacct[0] == "v1":
            wanted.append((cpuacct[1], "cpuacct.usage"))
        elif self.layout.v2 is not None:
            wanted.append((self.layout.v2, "cpu.stat"))  # usage_usec is there without the controller
        pids = self.layout.backing("pids")
        if pids is not None:
            wanted.append((pids[1], "pids.current"))
        files = {name: text for mount, name in wanted
                 if (text := cgfs.read(_under(mount, rel) / name)) is not None}
        try:
            return usage_from(files)
        except ValueError as exc:
            raise PermanentDriverError(f"unexpected content in the statistics of {rel}: {exc}") from exc

    # ------------------------------------------------------------------------------ remove

    def remove_group(self, project: str, group: str) -> None:
        self._dirs.pop((project, group), None)
        _raise_all(self._remove_tree(self.group_path(project, group)))

    def remove_project(self, project: str) -> None:
        failures = self._remove_tree(project_path(self._root, project))
        _raise_all(failures + self._remove_empty_root())

    def _remove_tree(self, rel: str) -> list[DriverError]:
        """rmdir ``rel`` and everything below it in every hierarchy, bottom-up, past failures."""
        failures: list[DriverError] = []
        for mount in self.layout.mounts():
            kept: list[Path] = []  # cgroups that stay, so their parents stay too (not a new failure)
            for cgroup in cgfs.tree_bottom_up(_under(mount, rel)):
                if any(k.is_relative_to(cgroup) for k in kept):
                    continue
                try:
                    cgfs.rmdir(cgroup)
                except TransientDriverError as exc:
                    failures.append(_busy(cgroup, exc))
                    kept.append(cgroup)
                except DriverError as exc:
                    failures.append(exc)
                    kept.append(cgroup)
        return failures

    def _remove_empty_root(self) -> list[DriverError]:
        """Remove the root's own directories where nothing is left below them (another project
        created meanwhile keeps them: that is not a failure)."""
        failures: list[DriverError] = []
        levels = self._root.strip("/").split("/")
        for mount in self.layout.mounts():
            for depth in range(len(levels), 0, -1):
                cgroup = mount.joinpath(*levels[:depth])
                if not cgroup.is_dir() or cgfs.subdirs(cgroup):
                    break
                try:
                    cgfs.rmdir(cgroup)
                except TransientDriverError:
                    break
                except DriverError as exc:
                    failures.append(exc)
                    break
        return failures


def _busy(cgroup: Path, exc: TransientDriverError) -> TransientDriverError:
    """A clearer error for a cgroup that could not be removed because something is still inside."""
    try:
        pids = cgfs.procs(cgroup)
    except DriverError:
        pids = ()
    if pids:
        shown = " ".join(str(p) for p in pids[:10]) + (" ..." if len(pids) > 10 else "")
        err = TransientDriverError(
            f"cgroup {cgroup} still holds {len(pids)} process(es) ({shown}); stop its containers "
            "first")
    elif cgfs.subdirs(cgroup):
        err = TransientDriverError(f"cgroup {cgroup} gained a child cgroup while being removed")
    else:
        return exc
    err.__cause__ = exc
    return err


def _raise_all(failures: list[DriverError]) -> None:
    """Raise one error listing every failure: transient if every one of them is, else permanent."""
    if not failures:
        return
    if len(failures) == 1:
        raise failures[0]
    message = f"{len(failures)} cgroups could not be removed:\n" + "\n".join(f"  {f}" for f in failures)
    kind = TransientDriverError if all(isinstance(f, TransientDriverError) for f in failures) \
        else PermanentDriverError
    raise kind(message) from failures[0]
