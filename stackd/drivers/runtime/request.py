"""What the runtime driver is asked to run: a container request and what the host allows.

``ContainerRequest`` is everything ``spec.oci_config`` needs to write an OCI config.json: the
upper layers (execute, build) fill it from a service and its image; ``HostLimits`` is what the
host allows (hard rlimits, capabilities the kernel knows, swap accounting, its devices), probed
once by ``host.probe_host_limits``. Plain frozen data: no I/O, no decisions beyond checking that
a value is well formed (a malformed request is a programming error and raises ``ValueError``;
the user's mistakes are caught earlier, by the spec layer, with positions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PRIVATE = "private"
"""Namespace mode: the container gets a new namespace of this kind."""
HOST = "host"
"""Namespace mode: the container shares the host's namespace of this kind."""

MIB = 1 << 20
DEFAULT_SHM_SIZE = 64 * MIB
"""Docker's default size of /dev/shm."""

SECCOMP_DEFAULT = "default"
SECCOMP_UNCONFINED = "unconfined"


@dataclass(frozen=True)
class User:
    """The numeric identity the container's process runs as (names are resolved before)."""

    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Mount:
    """One mount in the container. ``type`` is ``bind``, ``tmpfs``, ``proc``, ``sysfs``, ...;
    for a bind mount ``source`` is the host path and ``rbind``/``rprivate`` are added unless given."""

    destination: str
    source: str = ""
    type: str = "bind"
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.destination.startswith("/"):
            raise ValueError(f"mount destination must be absolute: {self.destination!r}")
        if self.type == "bind" and not self.source.startswith("/"):
            raise ValueError(f"bind mount source must be an absolute host path: {self.source!r}")


@dataclass(frozen=True)
class Device:
    """A device node created in the container (and allowed by its device cgroup)."""

    path: str
    type: str
    major: int
    minor: int
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0
    access: str = "rwm"

    def __post_init__(self) -> None:
        if self.type not in ("c", "b", "p", "u"):
            raise ValueError(f"device type must be c, b, p or u: {self.type!r}")


@dataclass(frozen=True)
class Namespaces:
    """Per kind: ``PRIVATE`` (a new one, the default), ``HOST`` (share the host's) or the absolute
    path of a namespace to join (``/run/netns/stk-…``, ``/proc/<pid>/ns/ipc``). The container
    always gets its own mount namespace."""

    pid: str = PRIVATE
    ipc: str = PRIVATE
    uts: str = PRIVATE
    net: str = PRIVATE
    cgroup: str = PRIVATE

    def __post_init__(self) -> None:
        for kind in ("pid", "ipc", "uts", "net", "cgroup"):
            mode = getattr(self, kind)
            if mode not in (PRIVATE, HOST) and not mode.startswith("/"):
                raise ValueError(f"namespace {kind}: expected 'private', 'host' or a path, got {mode!r}")


@dataclass(frozen=True)
class Resources:
    """cgroup limits, with Docker's units: bytes, CPU shares, microseconds, a CPU count.

    ``memory_swap`` is memory plus swap (Docker's ``--memory-swap``), ``-1`` for unlimited swap;
    ``cpus`` is converted to a quota over a 100 ms period unless ``cpu_quota`` is given;
    ``pids_limit`` ``-1`` means unlimited."""

    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    memory_swappiness: int | None = None
    cpus: float | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    blkio_weight: int | None = None

    def __post_init__(self) -> None:
        if self.cpus is not None and self.cpus <= 0:
            raise ValueError(f"cpus must be positive: {self.cpus}")
        if self.memory_swap is not None and self.memory_swap != -1:
            if self.memory is None:
                raise ValueError("memory_swap needs a memory limit")
            if self.memory_swap < self.memory:
                raise ValueError("memory_swap (memory plus swap) must not be below memory")
        if self.blkio_weight is not None and not 10 <= self.blkio_weight <= 1000:
            raise ValueError(f"blkio_weight must be within 10..1000: {self.blkio_weight}")


@dataclass(frozen=True)
class Rlimit:
    """A resource limit; ``type`` as ``nofile`` or ``RLIMIT_NOFILE``; ``-1`` means unlimited."""

    type: str
    soft: int
    hard: int


@dataclass(frozen=True)
class ContainerRequest:
    """Everything needed to write one container's OCI config.json."""

    rootfs: str
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: User = User()
    hostname: str = ""
    domainname: str = ""
    terminal: bool = False
    readonly_rootfs: bool = False
    mounts: tuple[Mount, ...] = ()
    devices: tuple[Device, ...] = ()
    namespaces: Namespaces = Namespaces()
    cgroups_path: str = ""
    resources: Resources = Resources()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    no_new_privileges: bool = False
    sysctls: Mapping[str, str] = field(default_factory=dict)
    rlimits: tuple[Rlimit, ...] = ()
    shm_size: int = DEFAULT_SHM_SIZE
    oom_score_adj: int | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    seccomp: str = SECCOMP_DEFAULT
    seccomp_profile: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.rootfs.startswith("/"):
            raise ValueError(f"rootfs must be an absolute path: {self.rootfs!r}")
        if not self.args:
            raise ValueError("a container needs at least one argument (the program to run)")
        if not self.cwd.startswith("/"):
            raise ValueError(f"cwd must be absolute: {self.cwd!r}")
        if self.cgroups_path and not self.cgroups_path.startswith("/"):
            raise ValueError(f"cgroups_path must be absolute: {self.cgroups_path!r}")
        if self.seccomp not in (SECCOMP_DEFAULT, SECCOMP_UNCONFINED):
            raise ValueError(f"seccomp must be 'default' or 'unconfined': {self.seccomp!r}")
        if self.shm_size <= 0:
            raise ValueError(f"shm_size must be positive: {self.shm_size}")
        if self.oom_score_adj is not None and not -1000 <= self.oom_score_adj <= 1000:
            raise ValueError(f"oom_score_adj must be within -1000..1000: {self.oom_score_adj}")


@dataclass(frozen=True)
class HostLimits:
    """What the host allows, probed once (``host.probe_host_limits``).

    ``rlimits`` maps ``RLIMIT_*`` names to the caller's hard limit (absent: unlimited);
    ``devices`` are the host's devices, given to privileged containers. The booleans say which
    cgroup settings the kernel offers (as Docker's sysinfo does): a setting the host lacks is
    left out of the config, and ``spec.discarded`` says so, rather than failing the container."""

    rlimits: Mapping[str, int] = field(default_factory=dict)
    arch: str = "x86_64"
    cap_last_cap: int = 40
    devices: tuple[Device, ...] = ()
    swap_accounting: bool = True
    memory_swappiness: bool = True
    cpu_shares: bool = True
    cpu_quota: bool = True
    cpuset: bool = True
    pids_limit: bool = True
    blkio_weight: bool = True
