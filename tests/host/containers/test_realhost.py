"""The real host driver end to end on this host, through the facade: a two-service stack (a web
server on port 8000 with a published port, and a client) made from a busybox image imported in
the test; names resolved by service name and alias, also after the server is recreated with a
new address; the published port answering on 127.0.0.1; copy-up into a new named volume; stop by
SIGTERM and by SIGKILL after the grace period; a container that fails at once; and removal that
leaves the host exactly as it was.

Root only; see conftest.py for the names used and the cleanup.
"""

from __future__ import annotations

import socket
import urllib.request
from ipaddress import IPv4Network

import pytest

from stackd.drivers.host import ContainerRecord
from stackd.drivers.realhost import RealHost
from stackd.errors import DriverError
from stackd.plan import hashing, names
from stackd.spec.models import Stack
from tests.host.containers.conftest import Lab
from tests.host.containers.support import IMAGE

pytestmark = pytest.mark.host


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


STACK = """
x-stackd:
  groups:
    background: {{memory: 256m}}
services:
  server:
    image: {image}
    command: ["httpd", "-f", "-p", "8000", "-h", "/www"]
    ports: ["127.0.0.1:{port}:8000"]
    volumes: ["content:/seed"]
    networks:
      default:
        aliases: [web]{address}
  client:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]
    cgroup_parent: background
    environment: {{OVERRIDDEN: service}}
  stubborn:
    image: {image}
    command: ["sleep", "1000"]
  broken:
    image: {image}
    command: ["sh", "-c", "echo boom; echo bust >&2; exit 3"]
volumes:
  content: {{}}
"""


def stack_text(port: int, address: str | None = None) -> str:
    extra = f"\n        ipv4_address: {address}" if address else ""
    return STACK.format(image=IMAGE, port=port, address=extra)


def prepare(host: RealHost, stack: Stack) -> None:
    """What the planner would have made before the containers: groups, networks, volumes."""
    for group in stack.groups:
        host.ensure_group(stack, group, hashing.group_hash(stack, group))
    for key in names.stack_networks(stack):
        host.ensure_network(stack, key, names.network_name(stack, key), hashing.network_hash(stack, key))
    for key in stack.volumes:
        host.ensure_volume(stack, key, names.volume_name(stack, key))


def create(host: RealHost, stack: Stack, service: str) -> str:
    name = names.container_name(stack.name, stack.services[service], 1)
    host.create_container(stack, service, 1, name, image=IMAGE,
                          config_hash=hashing.service_hash(stack, service),
                          config_parts=hashing.hash_parts(stack, service))
    return name


def record(host: RealHost, project: str, name: str) -> ContainerRecord:
    return next(r for r in host.list_containers(project) if r.name == name)


def run(host: RealHost, name: str, *argv: str) -> str:
    done = host.exec_in(name, argv, timeout=30)
    assert done.exit_code == 0, (argv, done)
    return done.stdout.decode()


def fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as answer:
        return str(answer.read().decode())


def test_a_stack_runs_and_goes_without_a_trace(lab: Lab) -> None:
    host, port = lab.host, free_port()
    stack = lab.stack(stack_text(port))
    prepare(host, stack)
    server, client = create(host, stack, "server"), create(host, stack, "client")
    states = {r.name: r.state for r in host.list_containers(lab.project)}
    assert states == {server: "created", client: "created"}
    host.start_container(server)
    host.start_container(client)
    rec = record(host, lab.project, server)
    assert rec.state == "running" and rec.pid and rec.service == "server" and rec.number == 1
    assert rec.config_hash == hashing.service_hash(stack, "server")
    assert rec.ports == (f"127.0.0.1:{port}->8000/tcp",)
    old_address = rec.addresses["default"]

    # by service name and by alias, from the client; the published port from the host
    assert run(host, client, "wget", "-q", "-O-", "http://server:8000/index.html") == "hello from stackd\n"
    assert run(host, client, "wget", "-q", "-O-", "http://web:8000/index.html") == "hello from stackd\n"
    assert fetch(port) == "hello from stackd\n"
    # image Env < service environment; the hostname is the container name; copy-up filled the volume
    env = run(host, client, "env")
    assert "FROM_IMAGE=image" in env and "OVERRIDDEN=service" in env
    assert run(host, client, "hostname").strip() == client
    assert run(host, server, "cat", "/seed/greeting") == "seeded\n"
    volume = lab.work / "data" / "volumes" / f"{lab.project}_content"
    assert (volume / "_data" / "greeting").read_text() == "seeded\n"
    cgroup = host.container_stats(client)
    assert cgroup is not None and cgroup.pids is not None and cgroup.pids >= 1
    # a group's limits changed by hand: the group is reported with no hash (drift)
    recorded = {g.key: g.config_hash for g in host.list_groups(lab.project)}
    assert recorded == {g: hashing.group_hash(stack, g) for g in ("background", "default")}
    backing = host.cgroups().layout.backing("memory")
    assert backing is not None
    limit = "memory.limit_in_bytes" if backing[0] == "v1" else "memory.max"
    (backing[1] / lab.cgroup_root.lstrip("/") / lab.project / "background" / limit).write_text(str(128 << 20))
    assert {g.key: g.config_hash for g in host.list_groups(lab.project)}["background"] == ""
    host.ensure_group(stack, "background", hashing.group_hash(stack, "background"))
    assert {g.key: g.config_hash for g in host.list_groups(lab.project)} == recorded

    # recreate the server with a new address: the client still finds it by name
    host.stop_container(server, timeout=0.5, signal="SIGTERM")  # httpd as pid 1 ignores TERM
    host.remove_container(server, volumes=True)
    subnet = host.store.subnet(names.network_name(stack, "default"))
    assert subnet is not None
    new_address = str(list(IPv4Network(subnet.subnet).hosts())[199])
    assert new_address != old_address
    moved = lab.stack(stack_text(port, new_address))
    create(host, moved, "server")
    host.start_container(server)
    assert record(host, lab.project, server).addresses["default"] == new_address
    assert f"{new_address}\tserver" in run(host, client, "cat", "/etc/hosts")
    assert run(host, client, "wget", "-q", "-O-", "http://server:8000/index.html") == "hello from stackd\n"
    assert fetch(port) == "hello from stackd\n"

    # the client stops on SIGTERM (its trap exits 0) well before the grace period
    host.stop_container(client, timeout=60, signal="SIGTERM")
    stopped = record(host, lab.project, client)
    assert (stopped.state, stopped.exit_code) == ("exited", 0)
    # a container started again keeps its log and runs again
    host.start_container(client)
    assert record(host, lab.project, client).state == "running"
    host.stop_container(client, timeout=60, signal="SIGTERM")

    # everything removed through the driver: the host is as it was
    host.stop_container(server, timeout=0.2, signal="SIGTERM")
    for name in (server, client):
        host.remove_container(name, volumes=True)
    for res in host.list_networks(lab.project):
        host.remove_network(lab.project, res.name)
    for res in host.list_volumes(lab.project):
        host.remove_volume(lab.project, res.name)
    for group in stack.groups:
        host.remove_group(lab.project, group)
    assert host.list_containers(lab.project) == []
    assert lab.before.difference(lab.snapshot()) == {}
    assert not volume.exists()
    assert list((lab.work / "data" / "volumes").iterdir()) == []  # the image's VOLUME went with -v


def test_sigkill_after_the_grace_period(lab: Lab) -> None:
    host = lab.host
    stack = lab.stack(stack_text(free_port()))
    prepare(host, stack)
    name = create(host, stack, "stubborn")
    host.start_container(name)
    host.stop_container(name, timeout=0.3, signal="SIGTERM")  # sleep as pid 1 ignores SIGTERM
    rec = record(host, lab.project, name)
    assert (rec.state, rec.exit_code) == ("exited", 137)
    with pytest.raises(DriverError, match="is not running"):
        host.kill_container(name, "SIGKILL")


def test_a_container_that_fails_at_once_names_the_service_and_shows_its_output(lab: Lab) -> None:
    host = lab.host
    stack = lab.stack(stack_text(free_port()))
    prepare(host, stack)
    name = create(host, stack, "broken")
    with pytest.raises(DriverError) as caught:
        host.start_container(name)
    text = str(caught.value)
    assert "service broken" in text and "status 3" in text and "boom" in text and "bust" in text
    rec = record(host, lab.project, name)
    assert (rec.state, rec.exit_code) == ("exited", 3)
    assert rec.image_id == host.image_id(IMAGE)
    assert host.list_containers("someotherproject") == []


JOINED = """
services:
  server:
    image: {image}
    command: ["httpd", "-f", "-p", "8000", "-h", "/www"]
  side:
    image: {image}
    network_mode: service:server
    command: ["sleep", "1000"]
  alone:
    image: {image}
    network_mode: none
    command: ["sleep", "1000"]
  faulty:
    image: {image}
    volumes:
      - type: bind
        source: {missing}
        target: /mnt
"""


def test_shared_and_empty_network_namespaces_and_a_failed_create(lab: Lab) -> None:
    host = lab.host
    stack = lab.stack(JOINED.format(image=IMAGE, missing=lab.work / "missing"))
    prepare(host, stack)
    server, side, alone = (create(host, stack, s) for s in ("server", "side", "alone"))
    for name in (server, side, alone):
        host.start_container(name)
    # side shares server's network namespace (and its hosts file): the server is on its localhost
    assert run(host, side, "wget", "-q", "-O-", "http://127.0.0.1:8000/index.html") == "hello from stackd\n"
    assert run(host, side, "cat", "/etc/hosts") == run(host, server, "cat", "/etc/hosts")
    links = run(host, alone, "ip", "-o", "link").splitlines()
    assert len(links) == 1 and links[0].startswith("1: lo:")  # loopback only
    assert record(host, lab.project, alone).addresses == {}

    before = lab.snapshot()
    leases = host.store.leases(names.network_name(stack, "default"))
    with pytest.raises(DriverError, match=r"service faulty: bind source .*missing does not exist"):
        create(host, stack, "faulty")
    assert lab.before.difference(before) != {} and before.difference(lab.snapshot()) == {}
    assert host.store.leases(names.network_name(stack, "default")) == leases
    assert not (lab.work / "data" / "containers" / f"{lab.project}-faulty-1").exists()
    assert [r.name for r in host.list_containers(lab.project)] == sorted([server, side, alone])
    # the server cannot go while the side container runs in its network namespace
    host.stop_container(server, timeout=0, signal="SIGKILL")
    with pytest.raises(DriverError, match=f"cannot go while {side} run"):
        host.remove_container(server, volumes=False)
