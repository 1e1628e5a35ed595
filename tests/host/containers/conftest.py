"""The lab of the real host driver's host tests: a ``RealHost`` with its own data and run
directories (``/tmp/stkt-ctr-*``), link/namespace/table prefix ``stkt``, cgroup root
``/stkt-ctr-<hex>``, address pool 10.214.0.0/16, the test image imported, and a project name of
its own. Its finalizer (run also when a test fails) kills and removes every container, network,
group and volume through the driver, then sweeps whatever is left by hand (processes, nft tables,
namespaces, mounts, cgroups, files) and fails the test if anything had to be swept.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from stackd.drivers.network import links, nftables
from stackd.drivers.realhost import RealHost
from stackd.drivers.runtime import probe
from stackd.drivers.runtime.runtime import find_binary
from stackd.errors import DriverError
from stackd.spec.loader import load
from stackd.spec.models import Stack
from stackd.spec.options import ProjectOptions
from tests.host.containers.support import (
    NAMING,
    PREFIX,
    Snapshot,
    import_image,
    need,
    processes_with,
    remove_cgroups,
    require_host,
    unmount_under,
)

POOL = IPv4Network("10.214.0.0/16")


@dataclass
class Lab:
    host: RealHost
    work: Path
    project: str
    cgroup_root: str
    before: Snapshot
    problems: list[str] = field(default_factory=list)

    def stack(self, text: str, name: str = "stack.yaml") -> Stack:
        """The stack of the YAML ``text``, loaded as the CLI would (project name: the lab's)."""
        folder = self.work / "project"
        folder.mkdir(exist_ok=True)
        (folder / name).write_text(text)
        return load(ProjectOptions(files=(str(folder / name),), project_name=self.project, environ={},
                                   cwd=str(folder))).stack

    def snapshot(self) -> Snapshot:
        return Snapshot.take(self.work, self.cgroup_root)

    def teardown(self) -> None:
        """Everything the project made, removed through the driver (failures noted)."""
        host = self.host

        def attempt(what: str, action: object) -> None:
            try:
                action()  # type: ignore[operator]
            except DriverError as exc:
                self.problems.append(f"{what}: {exc}")

        try:
            records = host.list_containers(self.project)
        except DriverError as exc:
            self.problems.append(f"list containers: {exc}")
            records = []
        for record in records:  # all stopped first: containers may share a network namespace
            with contextlib.suppress(DriverError):
                host.processes.runtime().kill(record.name, "SIGKILL", all_processes=True)
            attempt(f"stop {record.name}",
                    lambda n=record.name: host.stop_container(n, timeout=0, signal="KILL"))
        for record in records:
            attempt(f"remove {record.name}", lambda n=record.name: host.remove_container(n, volumes=True))
        for res in host.list_networks(self.project):
            attempt(f"remove network {res.name}", lambda n=res.name: host.remove_network(self.project, n))
        for res in host.list_volumes(self.project):
            attempt(f"remove volume {res.name}", lambda n=res.name: host.remove_volume(self.project, n))
        for grp in host.store.resources(self.project, "group"):
            attempt(f"remove group {grp.key}", lambda k=grp.key: host.remove_group(self.project, k))


def _sweep(lab: Lab) -> list[str]:
    """Remove by hand whatever the driver left; what had to be removed."""
    left = []
    for pid in processes_with(str(lab.work)):
        left.append(f"process {pid}")
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    after = lab.snapshot()
    for table in after.tables - lab.before.tables:
        left.append(table)
        with contextlib.suppress(DriverError):
            nftables.delete_table(table.split()[-1])
    for ns in after.netns - lab.before.netns:
        if NAMING.is_netns(ns):
            left.append(f"netns {ns}")
            with contextlib.suppress(DriverError):
                links.remove_netns(ns)
    for link in after.links - lab.before.links:
        if NAMING.is_link(link):
            left.append(f"link {link}")
            with contextlib.suppress(DriverError):
                links.remove_link(link)
    unmount_under(lab.work)
    remove_cgroups(lab.cgroup_root)
    lab.host.close()
    shutil.rmtree(lab.work, ignore_errors=True)
    return left


@pytest.fixture(params=("crun", "runc"))
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    require_host()
    binary = find_binary(request.param)
    need(binary is not None, f"{request.param} is not installed")
    runtime = probe(request.param, prefix=f"{PREFIX}probe-")
    work = Path(tempfile.mkdtemp(prefix=PREFIX))  # short: conmon's socket paths live below it
    cgroup_root = f"/{PREFIX}{secrets.token_hex(3)}"
    before = Snapshot.take(work, cgroup_root)
    host = RealHost(work / "data", work / "run", naming=NAMING, cgroup_root=cgroup_root, pool=POOL,
                    runtime=runtime)
    harness = Lab(host, work, f"stkt{secrets.token_hex(3)}", cgroup_root, before)
    try:
        import_image(work / "data", work)
        yield harness
    finally:
        harness.teardown()
        swept = _sweep(harness)
        assert not harness.problems and not swept, f"cleanup problems: {harness.problems}; swept: {swept}"
