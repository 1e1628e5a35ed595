"""What the end-to-end tests look at on the host, and which changes belong to one test project.

A ``HostState`` lists the network links, network namespaces, mounts, cgroup directories (every
hierarchy, ``memory/process_api`` excepted), nftables tables, live (not zombie) processes named
conmon/nginx/postgres/redis-server, and ``net.ipv4.ip_forward``. ``changes`` compares two of them.

Other software (and other test runs) may change the host while a test runs, so an ``Owner``
decides which changes are the test's: anything naming the test's unique project, anything under
its data root or run directory, the links it saw its containers use, an emptied ``stackd``
cgroup directory, and ip_forward. With ``STACKD_E2E_EXCLUSIVE=1`` (a host nobody else uses) every
change counts.

Read-only: this module lists and reads (``/proc``, ``/sys``, ``ip``, ``nft``); it never changes
the host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WATCHED = frozenset({"conmon", "nginx", "postgres", "redis-server"})
"""The process names the tests watch (``comm``)."""

CGROUP_MOUNT = Path("/sys/fs/cgroup")
EXCLUDED_CGROUPS = ("memory/process_api",)
"""Cgroup subtrees that this machine's own supervisor changes all the time."""

CGROUP_ROOT = "stackd"
"""The directory below which stackd puts every project's cgroups, in each hierarchy."""

EXCLUSIVE_ENV = "STACKD_E2E_EXCLUSIVE"
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class HostState:
    """One look at the host. ``details`` holds, per process key, its command line and cgroups."""

    links: frozenset[str]
    netns: frozenset[str]
    mounts: frozenset[str]
    cgroups: frozenset[str]
    nft_tables: frozenset[str]
    processes: frozenset[str]
    ip_forward: str
    details: Mapping[str, str] = field(default_factory=dict, compare=False)

    def kinds(self) -> dict[str, frozenset[str]]:
        return {"link": self.links, "netns": self.netns, "mount": self.mounts, "cgroup": self.cgroups,
                "nft table": self.nft_tables, "process": self.processes,
                "ip_forward": frozenset({self.ip_forward})}


@dataclass(frozen=True)
class Change:
    kind: str
    item: str
    appeared: bool
    detail: str

    def __str__(self) -> str:
        return f"{'+' if self.appeared else '-'} {self.kind}: {self.item}"


# ------------------------------------------------------------------------------ looking


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":" + SBIN_PATH)
    if found is None:
        raise RuntimeError(f"{name} is not installed")
    return found


def run_json(*argv: str) -> Any:
    """The JSON a listing tool prints (``None`` when it fails)."""
    done = subprocess.run([_tool(argv[0]), *argv[1:]], capture_output=True, text=True, check=False,
                          timeout=30)
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return json.loads(done.stdout)


def _links() -> frozenset[str]:
    return frozenset(os.listdir("/sys/class/net"))


def _netns() -> frozenset[str]:
    try:
        return frozenset(os.listdir("/run/netns"))
    except FileNotFoundError:
        return frozenset()


def _mounts() -> tuple[frozenset[str], dict[str, str]]:
    items: set[str] = set()
    lines: dict[str, str] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, rest = line.partition(" - ")
        parts, tail = fields.split(), rest.split()
        if len(parts) < 5 or len(tail) < 2:
            continue
        item = f"{parts[4]} {tail[0]} {tail[1]}"
        items.add(item)
        lines[item] = line
    return frozenset(items), lines


def _cgroups() -> frozenset[str]:
    found: set[str] = set()
    if not CGROUP_MOUNT.is_dir():
        return frozenset()
    for hierarchy in sorted(os.listdir(CGROUP_MOUNT)):
        top = CGROUP_MOUNT / hierarchy
        if not top.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(top):
            rel = os.path.relpath(dirpath, CGROUP_MOUNT)
            if rel.startswith(EXCLUDED_CGROUPS):
                dirnames.clear()
                continue
            found.add(rel)
    return frozenset(found)


def _nft_tables() -> frozenset[str]:
    data = run_json("nft", "-j", "list", "tables") or {}
    return frozenset(f"{t['table']['family']} {t['table']['name']}"
                     for t in data.get("nftables", []) if "table" in t)


def _processes() -> tuple[frozenset[str], dict[str, str]]:
    keys: set[str] = set()
    details: dict[str, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            comm = stat[stat.index("(") + 1: stat.rindex(")")]
            state = stat[stat.rindex(")") + 1:].split()[0]
            if comm not in WATCHED or state in ("Z", "X"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroup = (entry / "cgroup").read_text()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        key = f"{entry.name} {comm}"
        keys.add(key)
        details[key] = f"{cmdline}\n{cgroup}"
    return frozenset(keys), details


def snapshot() -> HostState:
    mounts, mount_lines = _mounts()
    processes, process_details = _processes()
    return HostState(links=_links(), netns=_netns(), mounts=mounts, cgroups=_cgroups(),
                     nft_tables=_nft_tables(), processes=processes,
                     ip_forward=Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
                     details={**mount_lines, **process_details})


def changes(before: HostState, after: HostState) -> list[Change]:
    found: list[Change] = []
    old, new = before.kinds(), after.kinds()
    for kind in old:
        for item in sorted(new[kind] - old[kind]):
            found.append(Change(kind, item, True, after.details.get(item, item)))
        for item in sorted(old[kind] - new[kind]):
            found.append(Change(kind, item, False, before.details.get(item, item)))
    return found


# ------------------------------------------------------------------------------ whose change


def link_names_of(netns_names: Iterable[str]) -> set[str]:
    """The host ends of the veths in these namespaces, and the bridges they are attached to."""
    host = {link["ifindex"]: link for link in run_json("ip", "-j", "link", "show") or []}
    found: set[str] = set()
    for ns in netns_names:
        for link in run_json("ip", "-n", ns, "-j", "link", "show") or []:
            peer = host.get(link.get("link_index")) if "link_netnsid" in link else None
            if peer is not None:
                found.add(peer["ifname"])
                if peer.get("master"):
                    found.add(peer["master"])
    return found


@dataclass
class Owner:
    """What one test project may leave on the host: ``project`` is unique to the test, ``paths``
    are the data root and run directory; ``links`` grows with each ``learn``."""

    project: str
    paths: tuple[str, ...]
    links: set[str] = field(default_factory=set)
    exclusive: bool = field(default_factory=lambda: os.environ.get(EXCLUSIVE_ENV) == "1")

    def learn(self) -> set[str]:
        """Note the links the project's containers use now (their names are hashes); return them."""
        mine = link_names_of(n for n in _netns() if self.project in n)
        self.links |= mine
        return mine

    def owns(self, change: Change, now: HostState) -> bool:
        if self.exclusive or change.kind == "ip_forward":
            return True
        if self.project in change.item or self.project in change.detail:
            return True
        if change.kind in ("mount", "process") and any(p in change.detail for p in self.paths):
            return True
        if change.kind == "link":
            return change.item in self.links
        if change.kind == "cgroup" and change.item.endswith(f"/{CGROUP_ROOT}") and change.appeared:
            # stackd's shared directory: the test's leftover unless another project lives in it
            return not any(c.startswith(f"{change.item}/") for c in now.cgroups)
        return False


def leftovers(before: HostState, owner: Owner, *, timeout: float = 10.0) -> tuple[list[Change], list[Change]]:
    """Poll (up to ``timeout`` seconds: exited processes need a moment to be reaped) until none of
    the owner's changes since ``before`` remain; return (the owner's changes, everyone else's)."""
    deadline = time.monotonic() + timeout
    while True:
        now = snapshot()
        found = changes(before, now)
        mine = [c for c in found if owner.owns(c, now)]
        if not mine or time.monotonic() >= deadline:
            return mine, [c for c in found if c not in mine]
        time.sleep(0.25)


def assert_restored(before: HostState, owner: Owner) -> None:
    """The host holds nothing of the owner's project that it did not hold at ``before``."""
    mine, others = leftovers(before, owner)
    if mine:
        text = "\n".join(f"  {c}" for c in mine)
        note = f"\n(also changed meanwhile, not by this test: {len(others)} items)" if others else ""
        raise AssertionError(f"project {owner.project} left the host changed:\n{text}{note}")
