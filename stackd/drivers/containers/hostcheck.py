"""What this host must offer before stackd changes anything on it, checked up front so that a
missing piece is named at once instead of surfacing half-way through a ``stack up``:

- root (containers need mounts, network namespaces, nft tables and cgroups);
- overlayfs (``/proc/filesystems``, or a module the kernel loads on the first mount);
- the namespaces every container gets (``/proc/self/ns``: mnt, uts, ipc, pid, net);
- a mounted cgroup hierarchy (v1, v2 or hybrid);
- nftables (the ``nft`` command, and a kernel that answers ``nft list tables``);
- conmon and an OCI runtime (crun or runc).

``gather`` reads the facts (``/proc``, ``/sys/module``, ``/lib/modules``, the cgroup mounts, one
read-only ``nft list tables``); ``problems`` turns facts into lines, each naming the missing
feature and what to do, and is pure. Nothing here changes the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stackd.drivers import cgroups
from stackd.errors import ROOT_REASON, DriverError

NAMESPACES = ("mnt", "uts", "ipc", "pid", "net")
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONMON_ELSEWHERE = ("/usr/libexec/podman/conmon", "/usr/local/libexec/podman/conmon",
                    "/usr/libexec/crio/conmon")
NFT_TIMEOUT = 10.0


@dataclass(frozen=True)
class HostFacts:
    """What ``gather`` found: ``None`` for a probe means it passed, else why it failed."""

    euid: int
    filesystems: str
    overlay_module: bool
    namespaces: frozenset[str]
    cgroups: str | None
    nft: str | None
    conmon: bool
    runtimes: tuple[str, ...]


def _has_overlay(filesystems: str) -> bool:
    return any(line.split()[-1:] == ["overlay"] for line in filesystems.splitlines())


def problems(f: HostFacts) -> list[str]:
    """One line per missing feature (see the module docstring). Pure."""
    out = []
    if f.euid != 0:
        out.append(f"stackd must run as root to run containers ({ROOT_REASON}); run it as root, e.g. "
                   "with sudo")
    if not _has_overlay(f.filesystems) and not f.overlay_module:
        out.append("the kernel has no overlayfs (`overlay` is not in /proc/filesystems and there is no "
                   "overlay module); container root file systems are overlay mounts: run `modprobe overlay` "
                   "or use a kernel built with CONFIG_OVERLAY_FS")
    missing = [ns for ns in NAMESPACES if ns not in f.namespaces]
    if missing:
        out.append(f"the kernel has no {', '.join(missing)} namespaces (/proc/self/ns lacks them); every "
                   "container gets its own: use a kernel built with "
                   + ", ".join(f"CONFIG_{ns.upper()}_NS" for ns in missing if ns != "mnt"))
    if f.cgroups is not None:
        out.append(f"cgroups are not usable: {f.cgroups}; mount cgroup2 at /sys/fs/cgroup (or the v1 "
                   "hierarchies)")
    if f.nft is not None:
        out.append(f"nftables is not usable: {f.nft}; install nftables (`apt-get install nftables`) and use "
                   "a kernel with nf_tables (CONFIG_NF_TABLES)")
    if not f.conmon:
        out.append("conmon is not installed (`apt-get install conmon`); it watches every container")
    if not f.runtimes:
        out.append("no OCI runtime is installed (`apt-get install crun`, or runc)")
    return out


# ---------------------------------------------------------------------------------- reading


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _which(name: str) -> str | None:
    path = os.environ.get("PATH", "")
    return shutil.which(name, path=f"{path}:{SEARCH_PATH}" if path else SEARCH_PATH)


def _overlay_module(proc: Path) -> bool:
    if Path("/sys/module/overlay").exists():
        return True
    release = _read(proc / "sys/kernel/osrelease").strip()
    return bool(release) and Path(f"/lib/modules/{release}/kernel/fs/overlayfs").is_dir()


def _nft(euid: int) -> str | None:
    nft = _which("nft")
    if nft is None:
        return "the nft command is not installed"
    if euid != 0:
        return None  # only root may ask the kernel; not being root is reported on its own
    try:
        done = subprocess.run([nft, "list", "tables"], capture_output=True, text=True, timeout=NFT_TIMEOUT,
                              check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`nft list tables` failed: {exc}"
    if done.returncode != 0:
        why = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        return f"`nft list tables` failed: {why}"
    return None


def _cgroups() -> str | None:
    try:
        cgroups.detect()
    except DriverError as exc:
        return str(exc)
    return None


def gather(proc: Path = Path("/proc")) -> HostFacts:
    """The facts of this host (one ``nft list tables`` when root)."""
    euid = os.geteuid()
    try:
        namespaces = frozenset(os.listdir(proc / "self/ns"))
    except OSError:
        namespaces = frozenset()
    return HostFacts(
        euid=euid, filesystems=_read(proc / "filesystems"), overlay_module=_overlay_module(proc),
        namespaces=namespaces, cgroups=_cgroups(), nft=_nft(euid),
        conmon=_which("conmon") is not None or any(os.access(c, os.X_OK) for c in CONMON_ELSEWHERE),
        runtimes=tuple(r for r in ("crun", "runc") if _which(r) is not None))
