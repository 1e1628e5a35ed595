"""Names of the host objects the network driver makes, and how to recognise them again.

Linux interface names are at most 15 bytes, so links carry a short prefix and a hash:

- bridge of a stack network: ``<prefix>-<6 hex>`` from (project, network), e.g. ``stk-3fa9c1``;
- host side of a container's veth on one network: ``<prefix>v<8 hex>`` from (container, network)
  (a container on two networks has two pairs, hence the network in the hash);
- network namespace of a container: ``<prefix>-<container>``, or ``<prefix>-<start>-<8 hex>`` when
  the container name is long or has characters a file name should not;
- nftables table of a stack: ``<table_prefix>-<project>`` (hashed the same way when needed).

The prefixes are parameters so that tests work under their own (``stkt``) and never touch what a
running stackd owns; the ``is_*`` predicates match the exact shapes, so ``stk`` does not claim
``stkt-...``. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

IFNAMSIZ = 15
"""The longest Linux interface name, in bytes (the kernel's IFNAMSIZ minus the final NUL)."""

NETNS_DIR = PurePosixPath("/run/netns")
"""Where named network namespaces are bind-mounted (the ``ip netns`` convention)."""

_PREFIX = re.compile(r"[a-z][a-z0-9]{0,5}")
_TABLE_PREFIX = re.compile(r"[a-z][a-z0-9]{0,15}")
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NETNS_MAX = 64
_TABLE_MAX = 64


def short_hash(*parts: str, length: int) -> str:
    """``length`` hex digits of a SHA-256 over ``parts`` (joined unambiguously)."""
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    return digest[:length]


def _readable_or_hashed(prefix: str, name: str, limit: int) -> str:
    full = f"{prefix}-{name}"
    if _SAFE.fullmatch(name) and len(full) <= limit:
        return full
    start = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[: limit - len(prefix) - 10].strip("_.-")
    tail = short_hash(name, length=8)
    return f"{prefix}-{start}-{tail}" if start else f"{prefix}-{tail}"


@dataclass(frozen=True)
class Naming:
    """The names of one owner of host objects: stackd itself (the default) or a test run."""

    prefix: str = "stk"
    table_prefix: str = "stackd"

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise ValueError(f"link prefix {self.prefix!r}: 1-6 lowercase letters and digits, "
                             "starting with a letter (names must fit in 15 bytes)")
        if not _TABLE_PREFIX.fullmatch(self.table_prefix):
            raise ValueError(f"table prefix {self.table_prefix!r}: 1-16 lowercase letters and digits, "
                             "starting with a letter")

    # ------------------------------------------------------------------------------- make names

    def bridge(self, project: str, network: str) -> str:
        """The bridge of ``network`` in ``project``: ``<prefix>-<6 hex>``."""
        return f"{self.prefix}-{short_hash(project, network, length=6)}"

    def veth(self, container: str, network: str) -> str:
        """The host side of ``container``'s veth pair on ``network``: ``<prefix>v<8 hex>``."""
        return f"{self.prefix}v{short_hash(container, network, length=8)}"

    def netns(self, container: str) -> str:
        """The network namespace of ``container`` (a file name under /run/netns)."""
        return _readable_or_hashed(self.prefix, container, _NETNS_MAX)

    def table(self, project: str) -> str:
        """The nftables table (family ``ip``) of ``project``."""
        return _readable_or_hashed(self.table_prefix, project, _TABLE_MAX)

    # --------------------------------------------------------------------------- recognise them

    def is_bridge(self, name: str) -> bool:
        return re.fullmatch(rf"{self.prefix}-[0-9a-f]{{6}}", name) is not None

    def is_veth(self, name: str) -> bool:
        return re.fullmatch(rf"{self.prefix}v[0-9a-f]{{8}}", name) is not None

    def is_link(self, name: str) -> bool:
        """True for the bridges and veths of this owner (not for anything else on the host)."""
        return self.is_bridge(name) or self.is_veth(name)

    def is_netns(self, name: str) -> bool:
        return name.startswith(f"{self.prefix}-") and len(name) > len(self.prefix) + 1

    def is_table(self, name: str) -> bool:
        return name.startswith(f"{self.table_prefix}-") and len(name) > len(self.table_prefix) + 1


DEFAULT = Naming()
"""The names a running stackd uses."""


def netns_path(name: str) -> PurePosixPath:
    """The path of a named network namespace (what an OCI config's network namespace points at)."""
    if "/" in name or name in {"", ".", ".."}:
        raise ValueError(f"not a network namespace name: {name!r}")
    return NETNS_DIR / name
