"""The stacks the fault tests run (busybox services as plain dicts for ``Project.write``), a free
host port for a published one, and small probes of what the daemon made (a container's address
inside its namespace, the rules of the project's nft table, a cgroup file, whether one container
reaches another by name).

It never changes the host: it picks, reads, and runs ``ping`` inside containers.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

from tests.e2e.hoststate import run_json
from tests.faults.harness import CGROUP_MOUNT, Project, wait_for
from tests.faults.image import IMAGE

SLEEPER = ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
HTTPD = ["/bin/sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait"]
MEM_LIMIT = 64 * 1024 * 1024


def service(command: list[str], **extra: Any) -> dict[str, Any]:
    """A busybox service with ``restart: always`` and a short grace period."""
    return {"image": IMAGE, "command": command, "restart": "always", "stop_grace_period": "2s", **extra}


def free_port() -> int:
    """A TCP port nothing listens on now (from a range the host's own services do not use)."""
    rng = random.SystemRandom()
    for _ in range(100):
        port = rng.randrange(20000, 40000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free TCP port found")


def two_webs(port: int) -> dict[str, Any]:
    """``a`` (publishes ``port``, mem_limit 64 MiB) and ``b``, both serving the image's page."""
    return {"a": service(HTTPD, ports=[f"{port}:80"], mem_limit=MEM_LIMIT),
            "b": service(HTTPD)}


def inside_addresses(netns: str) -> set[str]:
    """The IPv4 addresses (``a.b.c.d/len``) of the links in network namespace ``netns``."""
    return {f"{a['local']}/{a['prefixlen']}" for link in run_json("ip", "-n", netns, "-j", "-4", "addr") or []
            for a in link.get("addr_info", []) if a.get("family") == "inet" and link.get("ifname") != "lo"}


def ifindex(link: str) -> int | None:
    """The interface index of ``link`` in the host's namespace (None when there is none): a link
    made again has a new one."""
    try:
        return int((Path("/sys/class/net") / link / "ifindex").read_text())
    except (OSError, ValueError):
        return None


def table_rules(project: Project) -> int | None:
    """How many rules the project's nft table (family ip) holds; None when there is no table."""
    data = run_json("nft", "-j", "list", "table", "ip", project.table())
    if data is None:
        return None
    return sum(1 for item in data.get("nftables", []) if "rule" in item)


def cgroup_file(project: Project, container: str, hierarchy: str, name: str) -> Path:
    """A control file of ``container``'s own cgroup in ``hierarchy``."""
    rel = str(project.info(container)["cgroups_path"]).lstrip("/")
    return CGROUP_MOUNT / hierarchy / rel / name


def reaches(project: Project, source: str, target: str) -> None:
    """``source`` pings ``target`` by its service name (retried briefly: a repaired link may need
    a moment for neighbour discovery). busybox's ping, as its wget segfaults when linked statically."""
    address = project.info(f"{project.name}-{target}-1")["attachments"][0]["address"]

    def ping() -> bool:
        ran = project.exec(source, "ping", "-c1", "-W1", target, check=False)
        return ran.code == 0 and f"({address})" in ran.out
    wait_for(f"{source} reaches {target} by name", ping, timeout=20.0, every=0.3)
