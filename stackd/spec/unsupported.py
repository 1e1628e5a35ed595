"""Which Compose keys stackd implements, as data, and the warnings for the ones it does not (yet).

Compose accepts far more keys than a single-host orchestrator needs. stackd binds all of them (so a
Compose file never fails to load because of them) but tells the user, with the key's position, when
a key is accepted and ignored. The tables below are the one place that says what is implemented;
``unimplemented(tree)`` walks a merged tree and returns ``Warning_``s. Extension keys (``x-*``) are
always accepted silently. Pure: reads the tree, changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from stackd.errors import Pos, Warning_
from stackd.spec.tree import Map, dotted

Path = tuple[str | int, ...]

# keys of a service that stackd implements (everything else under a service warns)
SERVICE_KEYS: frozenset[str] = frozenset({
    "image", "build", "command", "entrypoint", "environment", "env_file", "depends_on", "networks",
    "network_mode", "ports", "expose", "volumes", "volumes_from", "tmpfs", "secrets", "configs",
    "healthcheck", "restart", "user", "working_dir", "hostname", "domainname", "init", "stop_signal",
    "stop_grace_period",
    "cap_add", "cap_drop", "privileged", "read_only", "security_opt", "mem_limit", "memswap_limit",
    "mem_reservation", "cpus", "cpu_shares", "cpu_quota", "cpu_period", "cpuset", "pids_limit", "deploy",
    "blkio_config", "labels", "container_name", "profiles", "scale", "cgroup_parent", "ulimits", "sysctls",
    "extra_hosts", "dns", "dns_search", "dns_opt", "tty", "stdin_open", "shm_size", "pull_policy", "platform",
    "annotations", "group_add", "oom_score_adj", "ipc", "pid", "uts", "devices", "logging",
    "extends",  # resolved while loading
})

# inside an implemented service key, only these sub-keys are implemented ("*" = any name)
SERVICE_SUBKEYS: dict[tuple[str, ...], frozenset[str]] = {
    ("networks", "*"): frozenset({"aliases", "ipv4_address", "ipv6_address", "priority"}),
    ("deploy",): frozenset({"resources", "replicas", "restart_policy", "labels"}),
    ("deploy", "resources"): frozenset({"limits", "reservations"}),
    ("deploy", "resources", "limits"): frozenset({"cpus", "memory", "pids"}),
    ("deploy", "resources", "reservations"): frozenset({"cpus", "memory"}),
    ("blkio_config",): frozenset({"weight"}),
}

# logging drivers stackd implements
LOGGING_DRIVERS: frozenset[str] = frozenset({"json-file", "local", "none"})

# keys of top-level resources that stackd implements
RESOURCE_KEYS: dict[str, frozenset[str]] = {
    "networks": frozenset({"name", "driver", "driver_opts", "ipam", "external", "internal", "labels",
                           "enable_ipv4", "enable_ipv6"}),
    "volumes": frozenset({"name", "driver", "driver_opts", "external", "labels"}),
    "secrets": frozenset({"name", "file", "environment", "external", "labels"}),
    "configs": frozenset({"name", "file", "content", "environment", "external", "labels"}),
}

# top-level keys Compose accepts that stackd does not implement
TOP_LEVEL_UNIMPLEMENTED: frozenset[str] = frozenset({"models"})


# the text of every warning about a key (``Warning_.render`` puts the key's path in front of it)
IGNORED = "accepted by Compose but not implemented by stackd yet; ignored"


def _unknown_keys(node: Map, allowed: frozenset[str], path: Path) -> Iterator[Warning_]:
    for key in node:
        if key not in allowed and not key.startswith("x-"):
            yield Warning_(IGNORED, node.where(key), dotted((*path, key)))


def _select(node: Any, pattern: tuple[str, ...], path: Path) -> Iterator[tuple[Map, Path]]:
    """The mappings below ``node`` that ``pattern`` names (``*`` = every key), with their paths."""
    if not isinstance(node, Map):
        return
    if not pattern:
        yield node, path
        return
    head, rest = pattern[0], pattern[1:]
    for key in (node if head == "*" else [head] if head in node else []):
        yield from _select(node[key], rest, (*path, key))


def _service(name: str, svc: Map) -> Iterator[Warning_]:
    base: Path = ("services", name)
    yield from _unknown_keys(svc, SERVICE_KEYS, base)
    for pattern, allowed in SERVICE_SUBKEYS.items():
        if pattern[0] in svc:
            for node, path in _select(svc, pattern, base):
                yield from _unknown_keys(node, allowed, path)
    logging = svc.get("logging")
    if isinstance(logging, Map):
        driver = logging.get("driver")
        if isinstance(driver, str) and driver not in LOGGING_DRIVERS:
            path = (*base, "logging", "driver")
            known = ", ".join(sorted(LOGGING_DRIVERS))
            yield Warning_(f"{driver!r} is not implemented by stackd yet (it has {known}); json-file is used "
                           "instead", logging.where("driver"), dotted(path))


def unimplemented(tree: Any) -> list[Warning_]:
    """One warning per key of ``tree`` that Compose accepts and stackd ignores, in file order."""
    if not isinstance(tree, Map):
        return []
    out: list[Warning_] = []
    for key in tree:
        if key in TOP_LEVEL_UNIMPLEMENTED:
            out.append(Warning_(IGNORED, tree.where(key), key))
    services = tree.get("services")
    if isinstance(services, Map):
        for name, svc in services.items():
            if isinstance(svc, Map):
                out.extend(_service(name, svc))
    for section, allowed in RESOURCE_KEYS.items():
        entries = tree.get(section)
        if isinstance(entries, Map):
            for name, spec in entries.items():
                if isinstance(spec, Map):
                    out.extend(_unknown_keys(spec, allowed, (section, name)))
    return sorted(out, key=lambda w: (w.pos is None, w.pos or Pos("", 0)))


__all__ = ["IGNORED", "LOGGING_DRIVERS", "RESOURCE_KEYS", "SERVICE_KEYS", "SERVICE_SUBKEYS",
           "TOP_LEVEL_UNIMPLEMENTED", "unimplemented"]
