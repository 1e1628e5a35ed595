"""The name-resolution files of a container: /etc/hosts (every service name, container name and
alias of the project's containers on the networks it shares with them), /etc/resolv.conf and
/etc/hostname.

resolv.conf starts from the host's: nameservers on loopback (127.0.0.0/8, ::1: a local cache
such as systemd-resolved's 127.0.0.53) cannot be reached from a container's network namespace,
so they are dropped and the upstream servers of such a cache are used instead (its own
resolv.conf, e.g. /run/systemd/resolve/resolv.conf); stackd runs no resolver of its own, so when
nothing is left it falls back to public servers, as Docker does. The service's ``dns``,
``dns_search`` and ``dns_opt`` replace the host's servers, search domains and options. A
container on the host's network gets the host's file as it is.

Pure: the caller reads the host's files and writes the results.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from stackd.drivers.containers.info import ContainerInfo
from stackd.drivers.network.hosts import Member, render_hosts

FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")


@dataclass(frozen=True)
class Resolv:
    """The parts of a resolv.conf stackd keeps."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    other: tuple[str, ...] = field(default=())
    """lines kept as they are (``sortlist``...)"""


def parse_resolv(text: str) -> Resolv:
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    other: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        word, _, rest = line.partition(" ")
        values = rest.split()
        if word == "nameserver" and values:
            servers.append(values[0])
        elif word in ("search", "domain"):
            search = values
        elif word == "options":
            options.extend(values)
        else:
            other.append(line)
    return Resolv(tuple(servers), tuple(search), tuple(options), tuple(other))


def is_loopback(server: str) -> bool:
    try:
        return ipaddress.ip_address(server.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def reachable(servers: Iterable[str]) -> tuple[str, ...]:
    return tuple(s for s in servers if not is_loopback(s))


def render_resolv(host: str, *, upstream: str = "", dns: Sequence[str] = (), search: Sequence[str] = (),
                  options: Sequence[str] = ()) -> str:
    """The container's resolv.conf from the host's text ``host`` and, when the host's servers
    are all on loopback, ``upstream`` (the text of the local cache's own resolv.conf)."""
    base = parse_resolv(host)
    servers = tuple(dns) or reachable(base.nameservers) or reachable(parse_resolv(upstream).nameservers) \
        or FALLBACK_NAMESERVERS
    lines = [f"nameserver {s}" for s in servers]
    domains = tuple(search) or base.search
    if domains:
        lines.append("search " + " ".join(domains))
    opts = tuple(options) or base.options
    if opts:
        lines.append("options " + " ".join(opts))
    lines.extend(base.other)
    return "\n".join(lines) + "\n"


def members(infos: Iterable[ContainerInfo]) -> list[Member]:
    """Every attachment of the given containers, as ``hosts.Member``s."""
    return [Member(network=a.network, address=a.address, container=info.name, service=info.service,
                   aliases=a.aliases)
            for info in infos for a in info.attachments]


def hosts_text(info: ContainerInfo, peers: Iterable[ContainerInfo], *, host_hosts: str = "") -> str:
    """The /etc/hosts of ``info`` among ``peers`` (the project's containers; ``info`` may be
    among them). A container on the host's network gets ``host_hosts`` plus its extra hosts."""
    if info.network_mode == "host":
        extra = "".join(f"{address}\t{name}\n" for name, address in info.extra_hosts)
        return host_hosts + ("" if not host_hosts or host_hosts.endswith("\n") else "\n") + extra
    everyone = [p for p in peers if p.name != info.name] + [info]
    return render_hosts(info.name, members(everyone), hostname=info.hostname, extra_hosts=info.extra_hosts)


def hostname_text(info: ContainerInfo) -> str:
    return f"{info.hostname}\n"
