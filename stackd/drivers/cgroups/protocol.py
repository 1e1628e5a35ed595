"""The seam between stackd and the host's cgroups: what execute, observe and the daemon may ask.

``CgroupDriver`` (driver.py) implements it on the real cgroup file systems; ``FakeCgroups`` (fake.py)
in memory for unit tests of the layers above. This module only declares the Protocol; it has no
behaviour and must not import either implementation.

Every method is synchronous and quick (a few small file operations); callers in async code wrap
them in ``anyio.to_thread.run_sync``. Failures are ``stackd.errors`` driver errors:
``TransientDriverError`` for what may pass (a group still holding processes, a racing removal),
``PermanentDriverError`` for what will not (a missing controller, a refused value, a bad name).
"""

from __future__ import annotations

from typing import Protocol

from stackd.drivers.cgroups.limits import GroupLimits
from stackd.drivers.cgroups.usage import CgroupUsage


class Cgroups(Protocol):
    """The named groups of each project, as cgroups at ``<root>/<project>/<group>``."""

    @property
    def root(self) -> str:
        """The cgroup below which every project lives (``/stackd`` unless configured)."""
        ...

    def group_path(self, project: str, group: str) -> str:
        """The cgroup path of a group; containers get ``<group_path>/<container>`` as cgroupsPath."""
        ...

    def ensure_group(self, project: str, group: str, limits: GroupLimits) -> None:
        """Create the group (and its parents) where needed and make its limits exactly ``limits``
        (unset ones back to no limit). Idempotent."""
        ...

    def read_group(self, project: str, group: str) -> GroupLimits | None:
        """The limits the host holds for the group, or ``None`` when it does not exist. Compare with
        ``limits.drift``."""
        ...

    def list_projects(self) -> tuple[str, ...]:
        """Projects with a cgroup below the root, sorted."""
        ...

    def list_groups(self, project: str) -> tuple[str, ...]:
        """Groups of a project that exist, sorted."""
        ...

    def remove_group(self, project: str, group: str) -> None:
        """Remove the group and any empty cgroups below it, bottom-up. Processes still inside leave
        them in place and raise ``TransientDriverError`` naming them, after removing what could be."""
        ...

    def remove_project(self, project: str) -> None:
        """Remove every group of the project, the project, and the root when it is left empty; same
        error rules as ``remove_group``."""
        ...

    def stats(self, path: str) -> CgroupUsage | None:
        """Usage of the cgroup at ``path`` (a group or a container), ``None`` when it does not exist."""
        ...
