"""A private podman for the interop tests, and a record of the host to prove they leave nothing.

``PrivatePodman`` keeps everything podman writes under one ``/tmp/stkt-ix-*`` directory: its
storage (``--root``/``--runroot`` and storage.conf), its containers.conf (cgroupfs, file events,
runc, the host's ulimits, netavark with a private network config dir, file locks, temporary
directories), and every call runs in a private mount namespace whose ``/run`` is a fresh tmpfs
and whose ``/var/lib/containers`` is a directory of the test. So the machine's podman state
(``/var/lib/containers``, ``/run/containers``, ``/run/runc``, ``/etc/containers``) is never read
or written, and every overlay mount podman makes vanishes with the namespace. Containers run with
``--network none`` and a ``--cgroup-parent`` of the test's own; ``close()`` removes those cgroups
in every hierarchy, kills any process still running from the test's directory, unmounts what is
left under it and removes it.

``HostState`` is what the tests compare before and after: links, network namespaces, nft
tables, mounts, top-level cgroups, and the podman/runc state directories of the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from stackd.drivers.mountinfo import mounts_under

PREFIX = "stkt-ix-"
BUSYBOX = Path("/bin/busybox")
TIMEOUT = 180.0
# other host tests may run beside these: their objects carry stackd's prefixes or live in pytest's
# temporary directories, and are not this test's business
_OTHERS = ("stk", "stackd", "/tmp/pytest-of-")

_NAMESPACE = """set -e
mount -t tmpfs stkt-ix-run /run
if [ -d /var/lib/containers ]; then mount --bind "$0" /var/lib/containers
else mount -t tmpfs stkt-ix-lib /var/lib; fi
exec "$@"
"""


def need(ok: bool, why: str) -> None:
    """Skip when ``ok`` is false, except in CI (``CI`` set), where every host test must run."""
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI runs every host test)")
        pytest.skip(why)


def need_tools(*tools: str) -> None:
    need(os.geteuid() == 0, "the interop tests need root")
    for tool in tools:
        need(shutil.which(tool) is not None, f"{tool} is not installed (apt-get install {tool})")


def cgroup_mounts() -> list[Path]:
    points = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                points.add(Path(fields[4]))
    return sorted(points)


def remove_cgroups(name: str) -> list[str]:
    """Remove ``/<name>`` and everything below it in every hierarchy; what could not be removed."""
    left = []
    for mount in cgroup_mounts():
        top = mount / name
        if not top.is_dir():
            continue
        for d in sorted((p for p in [top, *top.rglob("*")] if p.is_dir()), key=lambda p: len(p.parts),
                        reverse=True):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)  # a process that just exited is still leaving the cgroup
            else:
                left.append(str(d))
    return left


def unmount_all(root: Path) -> None:
    for point in mounts_under(root):
        if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def processes_using(root: Path) -> list[int]:
    """Processes whose command line names ``root`` (conmon, podman: the test's own)."""
    needle = str(root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def kill_processes_using(root: Path) -> None:
    for pid in processes_using(root):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


class PrivatePodman:
    """podman (and skopeo) with a configuration and storage of their own under ``self.dir``."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=PREFIX))
        self.token = self.dir.name.removeprefix(PREFIX)
        for d in ("root", "runroot", "tmp", "netconf", "lib", "copy"):
            (self.dir / d).mkdir()
        self.cgroups = [f"{PREFIX}{self.token}-run", f"{PREFIX}{self.token}-build"]
        (self.dir / "containers.conf").write_text(f"""\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
network_backend = "netavark"
network_config_dir = "{self.dir}/netconf"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{self.dir}/tmp/events.log"
runtime = "runc"
tmp_dir = "{self.dir}/tmp"
lock_type = "file"
volume_path = "{self.dir}/root/volumes"
image_copy_tmp_dir = "{self.dir}/copy"
""")
        (self.dir / "storage.conf").write_text(f"""\
[storage]
driver = "overlay"
graphroot = "{self.dir}/root"
runroot = "{self.dir}/runroot"
""")
        self.env = {**os.environ, "CONTAINERS_CONF": str(self.dir / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(self.dir / "storage.conf"),
                    "CONTAINERS_REGISTRIES_CONF": str(self.dir / "registries.conf"),
                    "TMPDIR": str(self.dir / "copy")}
        (self.dir / "registries.conf").write_text("unqualified-search-registries = []\n")

    def _wrap(self, argv: list[str]) -> list[str]:
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", _NAMESPACE,
                str(self.dir / "lib"), *argv]

    def call(self, tool: str, *args: str) -> str:
        """Run ``tool`` (podman, skopeo) in its private namespace; its output, or a failed test."""
        argv = [tool]
        if tool == "podman":
            argv += ["--root", str(self.dir / "root"), "--runroot", str(self.dir / "runroot")]
        done = subprocess.run(self._wrap([*argv, *args]), env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
        assert done.returncode == 0, f"{tool} {' '.join(args)} failed ({done.returncode}): {done.stderr}"
        return done.stdout

    def podman(self, *args: str) -> str:
        return self.call("podman", *args)

    def run(self, image: str, *argv: str) -> str:
        """``podman run --rm`` without a network, in the test's own cgroup parent."""
        return self.podman("run", "--rm", "--network", "none", f"--cgroup-parent=/{self.cgroups[0]}",
                           image, *argv)

    def build(self, context: Path, tag: str) -> str:
        return self.podman("build", "--quiet", "--network", "none", f"--cgroup-parent=/{self.cgroups[1]}",
                           "--tag", tag, str(context))

    def close(self) -> list[str]:
        """Remove everything; what could not be removed (cgroups)."""
        with contextlib.suppress(Exception):
            subprocess.run(self._wrap(["podman", "--root", str(self.dir / "root"), "--runroot",
                                       str(self.dir / "runroot"), "rm", "--all", "--force"]),
                           env=self.env, capture_output=True, timeout=TIMEOUT, check=False)
        kill_processes_using(self.dir)
        left = [x for name in self.cgroups for x in remove_cgroups(name)]
        unmount_all(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.dir.exists():  # read-only bits podman's overlay left: make them writable, try again
            subprocess.run(["chmod", "-R", "u+rwx", str(self.dir)], capture_output=True, check=False)
            shutil.rmtree(self.dir, ignore_errors=True)
        return left + ([str(self.dir)] if self.dir.exists() else [])


def unique(name: str) -> str:
    return f"{PREFIX}{name}-{secrets.token_hex(3)}"


def _lines(argv: list[str]) -> list[str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return []
    return done.stdout.splitlines()


def _ours(name: str) -> bool:
    return PREFIX in name or not any(p in name for p in _OTHERS)


@dataclass(frozen=True)
class HostState:
    """What podman or a runtime could leave behind on the host (others' stackd objects excluded)."""

    links: frozenset[str]
    netns: frozenset[str]
    nft_tables: frozenset[str]
    mounts: frozenset[str]
    cgroups: frozenset[str]
    run_dirs: frozenset[str]
    containers_lib: frozenset[str]

    @staticmethod
    def now() -> HostState:
        links = {line.split(":")[1].strip().split("@")[0] for line in _lines(["ip", "-o", "link"])
                 if line.count(":") >= 2}
        netns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
        tables = set(_lines(["nft", "list", "tables"]))
        with open("/proc/self/mountinfo") as f:
            mounts = {line.split()[4] for line in f}
        cgroups = {f"{m.name}/{d.name}" for m in cgroup_mounts() for d in m.iterdir() if d.is_dir()}
        run = {p for p in ("/run/containers", "/run/libpod", "/run/runc", "/run/podman", "/run/crun",
                           "/etc/containers/networks", "/dev/shm/libpod_lock") if os.path.exists(p)}
        lib = Path("/var/lib/containers")
        contents = {f"{p.relative_to(lib)}:{p.stat().st_mtime_ns}" for p in lib.rglob("*")} \
            if lib.is_dir() else set()
        return HostState(*(frozenset(x for x in s if _ours(x))
                           for s in (links, netns, tables, mounts, cgroups, run, contents)))

    def changes(self, later: HostState) -> dict[str, tuple[list[str], list[str]]]:
        """Per kind, what appeared and what disappeared since ``self``."""
        out = {}
        for kind in self.__dataclass_fields__:
            before, after = getattr(self, kind), getattr(later, kind)
            if before != after:
                out[kind] = (sorted(after - before), sorted(before - after))
        return out
