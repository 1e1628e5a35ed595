"""Failures at run time on the real host leave nothing half-made: a published port some process
listens on (or another stack publishes) stops the create before anything is made, naming the
service, the port and the holder; a container that exits at once keeps its status and log but
not its runtime container or its leaf cgroup.

Root only; see conftest.py for the names used and the cleanup.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackd.drivers.containers.info import read_info
from stackd.drivers.runtime.host import cgroup_mount_points, read_mountinfo
from stackd.errors import DriverError
from stackd.plan import names
from tests.host.containers.conftest import Lab
from tests.host.containers.support import IMAGE
from tests.host.containers.test_realhost import create, free_port, prepare, record, stack_text

pytestmark = pytest.mark.host


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_a_port_someone_listens_on_is_refused_before_anything_is_made(lab: Lab, listener: int) -> None:
    host = lab.host
    stack = lab.stack(stack_text(listener))
    prepare(host, stack)
    network = names.network_name(stack, "default")
    before, leases = lab.snapshot(), host.store.leases(network)
    with pytest.raises(DriverError) as caught:
        create(host, stack, "server")
    text = str(caught.value)
    assert text.startswith(f"service server: host port 127.0.0.1:{listener} is already in use (")
    assert f"pid {os.getpid()} listens on 127.0.0.1:{listener})" in text
    assert before.difference(lab.snapshot()) == {}
    assert host.store.leases(network) == leases
    assert not (lab.work / "data" / "containers" / f"{lab.project}-server-1").exists()
    assert host.list_containers(lab.project) == []


def test_a_port_another_stack_publishes_is_refused(lab: Lab) -> None:
    host, port = lab.host, free_port()
    stack = lab.stack(stack_text(port))
    prepare(host, stack)
    server = create(host, stack, "server")
    other = stack.model_copy(update={"name": f"{lab.project}x"})
    with pytest.raises(DriverError, match=rf"service server: host port 127.0.0.1:{port} is already in use "
                                          rf"\(container {server} of stack {lab.project} publishes"):
        host.create_container(other, "server", 1, f"{other.name}-server-1", image=IMAGE, config_hash="h",
                              config_parts={})
    assert host.list_containers(other.name) == []
    # the stack's own container does not stand in its way when it is recreated
    assert host.port_conflicts(stack, [("server", server)]) == []


def test_a_container_that_exits_at_once_keeps_its_status_but_not_its_cgroup(lab: Lab) -> None:
    host = lab.host
    stack = lab.stack(stack_text(free_port()))
    prepare(host, stack)
    name = create(host, stack, "broken")
    info = read_info(host.layout.container(name).info)
    assert info is not None
    for attempt in range(2):  # and again: a second start fails the same way
        with pytest.raises(DriverError, match=r"service broken: container .* exited at once with status 3; "
                                              r"its last output:\n(.|\n)*boom"):
            host.start_container(name)
        rec = record(host, lab.project, name)
        assert (rec.state, rec.exit_code, rec.pid) == ("exited", 3, None), attempt
        assert host.processes.status(name) is None  # no ended runtime container is left behind
        leaves = [Path(m, info.cgroups_path.lstrip("/")) for m in cgroup_mount_points(read_mountinfo())]
        assert not [leaf for leaf in leaves if leaf.exists()]
    assert "bust" in Path(host.log_path(name)).read_text()


def test_a_create_cut_short_by_a_crash_is_made_again_from_its_remains(lab: Lab) -> None:
    """A daemon killed between writing a container's bundle and its record leaves a bundle, a
    mounted root, a namespace and a veth, but no record: the next create takes them over."""
    host = lab.host
    stack = lab.stack(stack_text(free_port()))
    prepare(host, stack)
    name = create(host, stack, "client")
    paths = host.layout.container(name)
    info = read_info(paths.info)
    assert info is not None and info.netns is not None
    paths.info.unlink()  # what the crash left: everything but the record
    host.store.remove_container(name)
    assert paths.bundle.exists()
    again = create(host, stack, "client")
    assert again == name
    host.start_container(name)
    assert record(host, lab.project, name).state == "running"
    renewed = read_info(paths.info)
    assert renewed is not None and renewed.attachments[0].address == info.attachments[0].address
    with pytest.raises(DriverError, match="already exists"):  # with its record, it is a container
        create(host, stack, "client")
