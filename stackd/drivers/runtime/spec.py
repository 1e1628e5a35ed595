"""``oci_config``: a container request becomes an OCI runtime-spec config.json, with Docker's
defaults (capabilities, mounts, masked and read-only paths, device rules, seccomp).

A pure function: the same request and host limits always give the same dict, nothing is read
from or written to the host (``host.probe_host_limits`` reads the host once, beforehand).
It must not make decisions that belong to the planner (whether to run a container at all).
"""

from __future__ import annotations

from typing import Any

from stackd.drivers.runtime import caps as capabilities
from stackd.drivers.runtime import defaults, seccomp
from stackd.drivers.runtime.request import (
    HOST,
    PRIVATE,
    SECCOMP_UNCONFINED,
    ContainerRequest,
    Device,
    HostLimits,
    Mount,
    Resources,
    Rlimit,
)
from stackd.errors import PermanentDriverError

OCI_VERSION = "1.0.2"
CPU_PERIOD = 100_000
"""The CFS period (µs) over which ``cpus`` becomes a quota, as Docker's ``--cpus`` does."""
RLIM_INFINITY = (1 << 64) - 1

RLIMIT_NAMES = frozenset({
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
    "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
})

_NS_KINDS = (("pid", "pid"), ("ipc", "ipc"), ("uts", "uts"), ("net", "network"), ("cgroup", "cgroup"))


def oci_config(req: ContainerRequest, limits: HostLimits) -> dict[str, Any]:
    """The config.json of ``req`` on a host with ``limits``."""
    caps = list(capabilities.resolve_caps(
        req.cap_add, req.cap_drop, privileged=req.privileged, cap_last_cap=limits.cap_last_cap))
    process: dict[str, Any] = {
        "terminal": req.terminal,
        "user": _user(req),
        "args": list(req.args),
        "env": _env(req),
        "cwd": req.cwd,
        "capabilities": {"bounding": list(caps), "effective": list(caps), "permitted": list(caps),
                         "inheritable": []},
        "noNewPrivileges": req.no_new_privileges,
    }
    rlimits = [_rlimit(r, limits) for r in req.rlimits]
    if rlimits:
        process["rlimits"] = rlimits
    if req.oom_score_adj is not None:
        process["oomScoreAdj"] = req.oom_score_adj
    linux: dict[str, Any] = {
        "namespaces": _namespaces(req),
        "resources": _resources(req, limits),
        "maskedPaths": [] if req.privileged else list(defaults.MASKED_PATHS),
        "readonlyPaths": [] if req.privileged else list(defaults.READONLY_PATHS),
    }
    devices = _devices(req, limits)
    if devices:
        linux["devices"] = devices
    if req.cgroups_path:
        linux["cgroupsPath"] = req.cgroups_path
    if req.sysctls:
        linux["sysctl"] = dict(sorted(req.sysctls.items()))
    profile = _seccomp(req, caps, limits)
    if profile is not None:
        linux["seccomp"] = profile
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": req.rootfs, "readonly": req.readonly_rootfs},
        "mounts": [_mount_json(m) for m in _mounts(req)],
        "linux": linux,
    }
    if req.hostname and req.namespaces.uts == PRIVATE:
        config["hostname"] = req.hostname
    if req.domainname and req.namespaces.uts == PRIVATE:
        config["domainname"] = req.domainname
    if req.annotations:
        config["annotations"] = dict(sorted(req.annotations.items()))
    return config


def _user(req: ContainerRequest) -> dict[str, Any]:
    user: dict[str, Any] = {"uid": req.user.uid, "gid": req.user.gid}
    if req.user.additional_gids:
        user["additionalGids"] = list(req.user.additional_gids)
    return user


def _env(req: ContainerRequest) -> list[str]:
    """Docker's base environment (PATH, HOSTNAME, TERM with a terminal), overridden by the
    request's own variables, in order, one entry per name."""
    base = [f"PATH={defaults.DEFAULT_PATH}"]
    if req.hostname and req.namespaces.uts == PRIVATE:
        base.append(f"HOSTNAME={req.hostname}")
    if req.terminal:
        base.append("TERM=xterm")
    env: dict[str, str] = {}  # a name keeps its first position and takes its last value
    for item in (*base, *req.env):
        env[item.split("=", 1)[0]] = item
    return list(env.values())


def _rlimit(r: Rlimit, limits: HostLimits) -> dict[str, Any]:
    name = r.type.upper()
    if not name.startswith("RLIMIT_"):
        name = f"RLIMIT_{name}"
    if name not in RLIMIT_NAMES:
        raise PermanentDriverError(f"unknown rlimit {r.type!r}")
    hard = RLIM_INFINITY if r.hard < 0 else r.hard
    soft = RLIM_INFINITY if r.soft < 0 else r.soft
    ceiling = limits.rlimits.get(name)
    if ceiling is not None and ceiling >= 0:
        hard = min(hard, ceiling)
    return {"type": name, "soft": min(soft, hard), "hard": hard}


def _namespaces(req: ContainerRequest) -> list[dict[str, str]]:
    out = [{"type": "mount"}]
    for attr, kind in _NS_KINDS:
        mode = getattr(req.namespaces, attr)
        if mode == PRIVATE:
            out.append({"type": kind})
        elif mode != HOST:
            out.append({"type": kind, "path": mode})
    return out


def _mounts(req: ContainerRequest) -> list[Mount]:
    """The standard mounts, then the request's, parents before children. A request's mount
    replaces a standard one at the same place; a request's /dev replaces every standard mount
    under /dev; with the host's IPC namespace /dev/shm is the host's."""
    user = list(req.mounts)
    if req.namespaces.ipc == HOST and not any(m.destination == "/dev/shm" for m in user):
        user.append(Mount("/dev/shm", "/dev/shm", "bind", ("rbind", "rprivate")))
    taken = {m.destination.rstrip("/") or "/" for m in user}
    user_dev = "/dev" in taken
    out = [
        m for m in defaults.standard_mounts(req.shm_size, privileged=req.privileged)
        if m.destination not in taken and not (user_dev and m.destination.startswith("/dev/"))
    ]
    out.extend(sorted(user, key=lambda m: len([p for p in m.destination.split("/") if p])))
    return out


def _mount_json(m: Mount) -> dict[str, Any]:
    options = list(m.options)
    if m.type == "bind":
        if "bind" not in options and "rbind" not in options:
            options.insert(0, "rbind")
        propagation = {"private", "rprivate", "shared", "rshared", "slave", "rslave"}
        if not propagation.intersection(options):
            options.append("rprivate")
    return {"destination": m.destination, "type": m.type, "source": m.source, "options": options}


def discarded(req: ContainerRequest, limits: HostLimits) -> list[str]:
    """The resource settings of ``req`` that ``oci_config`` leaves out because the host lacks
    them, one sentence each (for the caller to show as warnings)."""
    r = req.resources
    checks = [
        (r.memory is not None and r.memory_swap is not None, limits.swap_accounting,
         "the kernel does not account swap: memory_swap discarded, memory limited without swap"),
        (r.memory_swappiness is not None, limits.memory_swappiness,
         "the kernel does not support memory swappiness: memory_swappiness discarded"),
        (r.cpu_shares is not None, limits.cpu_shares, "the kernel does not support CPU shares: discarded"),
        (r.cpus is not None or r.cpu_quota is not None or r.cpu_period is not None, limits.cpu_quota,
         "the kernel does not support CPU quotas (CFS): cpus, cpu_quota and cpu_period discarded"),
        (r.cpuset_cpus is not None or r.cpuset_mems is not None, limits.cpuset,
         "the kernel does not support cpusets: cpuset discarded"),
        (r.pids_limit is not None, limits.pids_limit, "the kernel does not support pids limits: discarded"),
        (r.blkio_weight is not None, limits.blkio_weight,
         "the kernel does not support block I/O weight: blkio weight discarded"),
    ]
    return [message for wanted, offered, message in checks if wanted and not offered]


def _resources(req: ContainerRequest, limits: HostLimits) -> dict[str, Any]:
    res: dict[str, Any] = {}
    if req.privileged:
        res["devices"] = [defaults.allow_all_devices_rule()]
    else:
        res["devices"] = defaults.default_device_rules() + [
            {"allow": True, "type": d.type, "major": d.major, "minor": d.minor, "access": d.access}
            for d in req.devices
        ]
    memory = _memory(req.resources, limits)
    if memory:
        res["memory"] = memory
    cpu = _cpu(req.resources, limits)
    if cpu:
        res["cpu"] = cpu
    if req.resources.pids_limit is not None and limits.pids_limit:
        res["pids"] = {"limit": req.resources.pids_limit}
    if req.resources.blkio_weight is not None and limits.blkio_weight:
        res["blockIO"] = {"weight": req.resources.blkio_weight}
    return res


def _memory(r: Resources, limits: HostLimits) -> dict[str, Any]:
    """Docker's memory rules: without an explicit ``memory_swap`` a container may swap as much
    as its memory limit (memory plus swap = twice the limit); no swap setting at all where the
    kernel does not account swap."""
    memory: dict[str, Any] = {}
    if r.memory is not None:
        memory["limit"] = r.memory
        if limits.swap_accounting:
            memory["swap"] = r.memory_swap if r.memory_swap is not None else 2 * r.memory
    if r.memory_reservation is not None:
        memory["reservation"] = r.memory_reservation
    if r.memory_swappiness is not None and limits.memory_swappiness:
        memory["swappiness"] = r.memory_swappiness
    return memory


def _cpu(r: Resources, limits: HostLimits) -> dict[str, Any]:
    cpu: dict[str, Any] = {}
    if r.cpu_shares is not None and limits.cpu_shares:
        cpu["shares"] = r.cpu_shares
    if limits.cpu_quota:
        if r.cpu_quota is not None:
            cpu["quota"] = r.cpu_quota
            if r.cpu_period is not None:
                cpu["period"] = r.cpu_period
        elif r.cpus is not None:
            period = r.cpu_period if r.cpu_period is not None else CPU_PERIOD
            cpu["quota"] = round(r.cpus * period)
            cpu["period"] = period
        elif r.cpu_period is not None:
            cpu["period"] = r.cpu_period
    if limits.cpuset:
        if r.cpuset_cpus is not None:
            cpu["cpus"] = r.cpuset_cpus
        if r.cpuset_mems is not None:
            cpu["mems"] = r.cpuset_mems
    return cpu


def _devices(req: ContainerRequest, limits: HostLimits) -> list[dict[str, Any]]:
    chosen: dict[str, Device] = {}
    if req.privileged:
        chosen.update((d.path, d) for d in limits.devices)
    chosen.update((d.path, d) for d in req.devices)
    return [
        {"path": d.path, "type": d.type, "major": d.major, "minor": d.minor,
         "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid}
        for d in sorted(chosen.values(), key=lambda d: d.path)
    ]


def _seccomp(req: ContainerRequest, caps: list[str], limits: HostLimits) -> dict[str, Any] | None:
    if req.privileged or req.seccomp == SECCOMP_UNCONFINED:
        return None
    if req.seccomp_profile is not None:
        return dict(req.seccomp_profile)
    return seccomp.default_profile(caps, limits.arch)
