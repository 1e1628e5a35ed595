"""A container's /etc/hosts: the simplest service-name resolution, rewritten whenever a peer is
created or recreated (a DNS server can replace it later without changing what callers pass in).

``render_hosts(container, members)`` takes every attachment of every container of the stack
(``Member``: network, address, container, service, aliases) and writes, for the networks the
container itself is on: the standard localhost lines, the container's own address with its host
name and container name, then each peer's address with its service name, container name and
the aliases it has on that network. A scaled service has one line per replica, in container name
order (glibc's ``files`` source returns them all with ``multi on``). ``extra_hosts`` (Compose's
``extra_hosts``, as ``(name, address)`` pairs) come last, as written.

Pure: no I/O; the caller writes the text where the container's /etc/hosts is mounted from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_LOCAL = (
    ("127.0.0.1", ("localhost",)),
    ("::1", ("localhost", "ip6-localhost", "ip6-loopback")),
    ("fe00::0", ("ip6-localnet",)),
    ("ff00::0", ("ip6-mcastprefix",)),
    ("ff02::1", ("ip6-allnodes",)),
    ("ff02::2", ("ip6-allrouters",)),
)
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")


@dataclass(frozen=True)
class Member:
    """One container's attachment to one network."""

    network: str
    address: str
    container: str
    service: str
    aliases: tuple[str, ...] = ()


def _names(*groups: Sequence[str]) -> list[str]:
    """The valid host names of ``groups``, each once, in order."""
    seen: list[str] = []
    for group in groups:
        for name in group:
            if name and _HOSTNAME.fullmatch(name) and name not in seen:
                seen.append(name)
    return seen


def _line(address: str, names: Sequence[str]) -> str:
    return f"{address}\t{' '.join(names)}"


def render_hosts(container: str, members: Sequence[Member], *, hostname: str | None = None,
                 extra_hosts: Sequence[tuple[str, str]] = ()) -> str:
    """The /etc/hosts text of ``container`` among ``members`` (see the module docstring)."""
    own = sorted((m for m in members if m.container == container), key=lambda m: m.network)
    networks = {m.network for m in own}
    entries: list[tuple[str, Sequence[str]]] = list(_LOCAL)
    for m in own:
        entries.append((m.address, _names([hostname or ""], [m.container], [m.service], m.aliases)))
    peers = sorted((m for m in members if m.container != container and m.network in networks),
                   key=lambda m: (m.service, m.container, m.network))
    entries += [(m.address, _names([m.service], [m.container], m.aliases)) for m in peers]
    entries += [(address, _names([name])) for name, address in extra_hosts]
    return "".join(f"{_line(address, names)}\n" for address, names in entries if names)
