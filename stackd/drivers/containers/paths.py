"""Where one container's files live, and where the host-wide state of ``RealHost`` lives.

Layout under the data root (``/var/lib/stackd`` unless ``STACKD_DATA_ROOT`` says otherwise)::

    containers/<name>/upper, work     the overlay's writable layer and its work directory
    containers/<name>/rootfs          the overlay mount point (the container's root file system)
    containers/<name>/bundle          the OCI bundle (config.json)
    containers/<name>/hosts, hostname, resolv.conf
                                      bind-mounted files; hosts is rewritten in place
    containers/<name>/ctr.log         the container's log (conmon, k8s-file format)
    containers/<name>/secrets, configs
                                      copies of the service's secrets and configs (mounted read-only)
    containers/<name>/container.json  what the host driver recorded about the container
    containers/<name>/health.json     the last healthcheck result (``HostDriver.record_health``)
    volumes/<name>/_data              named and anonymous volumes (the volumes driver)
    projects/<project>/networks/<network>.json, groups/<group>.json
                                      what each network and group was made with

and under the run directory (``/run/stackd``, ``STACKD_RUN_DIR``): the OCI runtime's state
(``runtime/<runtime>``), conmon's exit files (``exits``), pid files (``pids``), conmon's sockets
and runtime wrappers (``monitor``) and per-project lock files (``locks``).

Pure: paths only, nothing is read or made here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from stackd.drivers.cgroups.paths import DEFAULT_ROOT as DEFAULT_CGROUP_ROOT
from stackd.drivers.cgroups.paths import container_path

DEFAULT_DATA_ROOT = Path("/var/lib/stackd")
DEFAULT_RUN_DIR = Path("/run/stackd")
DATA_ENV = "STACKD_DATA_ROOT"
RUN_ENV = "STACKD_RUN_DIR"


@dataclass(frozen=True)
class ContainerPaths:
    """The files of container ``name`` under ``data_root``; ``cgroup_root`` is the cgroup below
    which every project's groups live (``/stackd``)."""

    data_root: Path
    name: str
    cgroup_root: str = DEFAULT_CGROUP_ROOT

    @cached_property
    def dir(self) -> Path:
        return self.data_root / "containers" / self.name

    @cached_property
    def upper(self) -> Path:
        return self.dir / "upper"

    @cached_property
    def work(self) -> Path:
        return self.dir / "work"

    @cached_property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    @cached_property
    def empty_lower(self) -> Path:
        """A lower directory for images without layers (overlayfs needs at least one)."""
        return self.dir / "empty"

    @cached_property
    def bundle(self) -> Path:
        return self.dir / "bundle"

    @cached_property
    def hosts(self) -> Path:
        return self.dir / "hosts"

    @cached_property
    def hostname(self) -> Path:
        return self.dir / "hostname"

    @cached_property
    def resolv_conf(self) -> Path:
        return self.dir / "resolv.conf"

    @cached_property
    def log(self) -> Path:
        return self.dir / "ctr.log"

    @cached_property
    def secrets(self) -> Path:
        return self.dir / "secrets"

    @cached_property
    def configs(self) -> Path:
        return self.dir / "configs"

    @cached_property
    def info(self) -> Path:
        return self.dir / "container.json"

    @cached_property
    def health(self) -> Path:
        return self.dir / "health.json"

    def volume_dir(self, volume: str) -> Path:
        """What a container mounts for volume ``volume`` (the volumes driver's ``_data``)."""
        return self.data_root / "volumes" / volume / "_data"

    def cgroups_path(self, project: str, group: str) -> str:
        """``<cgroup root>/<project>/<group>/<name>``: the container's cgroup."""
        return container_path(self.cgroup_root, project, group, self.name)


@lru_cache(maxsize=4096)
def _container_paths(data_root: Path, name: str, cgroup_root: str) -> ContainerPaths:
    """The same ``ContainerPaths`` for the same container: their paths are worked out once (the
    daemon looks at every container's files on every pass)."""
    return ContainerPaths(data_root, name, cgroup_root)


@dataclass(frozen=True)
class HostLayout:
    """The host-wide directories of one ``RealHost``."""

    data_root: Path = DEFAULT_DATA_ROOT
    run_dir: Path = DEFAULT_RUN_DIR
    cgroup_root: str = DEFAULT_CGROUP_ROOT

    def container(self, name: str) -> ContainerPaths:
        return _container_paths(self.data_root, name, self.cgroup_root)

    @property
    def containers_dir(self) -> Path:
        return self.data_root / "containers"

    @property
    def volumes_dir(self) -> Path:
        return self.data_root / "volumes"

    @property
    def store_path(self) -> Path:
        return self.data_root / "stackd.db"

    def project_dir(self, project: str) -> Path:
        return self.data_root / "projects" / project

    def network_file(self, project: str, network: str) -> Path:
        return self.project_dir(project) / "networks" / f"{network}.json"

    def group_file(self, project: str, group: str) -> Path:
        return self.project_dir(project) / "groups" / f"{group}.json"

    @property
    def runtime_root(self) -> Path:
        """The parent of each runtime's state directory (``<run>/runtime/<runtime>``)."""
        return self.run_dir / "runtime"

    @property
    def runtime_cache(self) -> Path:
        """Which OCI runtime works here, found once per boot."""
        return self.run_dir / "runtime.json"

    @property
    def exit_dir(self) -> Path:
        return self.run_dir / "exits"

    @property
    def monitor_dir(self) -> Path:
        return self.run_dir / "monitor"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.pid"

    def conmon_pid_file(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.conmon.pid"

    @property
    def ip_forward_file(self) -> Path:
        """The value ``net.ipv4.ip_forward`` had before stackd's first network turned it on."""
        return self.run_dir / "ip_forward.before"

    def lock_file(self, project: str) -> Path:
        return self.run_dir / "locks" / f"{project}.lock"

    @property
    def ports_lock_file(self) -> Path:
        """Held while a container's published ports are checked and claimed (host-wide)."""
        return self.run_dir / "locks" / "ports.lock"
