"""The network driver against the real kernel: bridges, namespaces and veths carrying TCP, port
publishing on 127.0.0.1 and on the host's address, outbound masquerade, internal networks, and
drift (a deleted bridge, a flushed table) seen and repaired.

Root only; everything is named under ``stkt`` and removed by the ``lab`` fixture (see conftest).
"""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Interface

import anyio
import pytest

from stackd.drivers.network import links, nftables
from stackd.drivers.network.names import DEFAULT
from stackd.drivers.network.nft import Publish, render
from stackd.errors import PermanentDriverError
from tests.host.network.lab import TEST, Lab, fetch, fetch_in, host_address, make_outside, run
from tests.unit.network.test_network_nft import SCENARIOS

pytestmark = pytest.mark.host


def test_containers_on_one_bridge_reach_each_other_by_address(lab: Lab) -> None:
    net = lab.network("front")
    a, b = lab.container("net-a", net), lab.container("net-b", net)
    lab.processes.serve(b.netns, 8000, "from-b")
    assert fetch_in(a.netns, b.address, 8000) == f"from-b {a.address}"

    # and the driver observes what it made
    observed = {s.name: s for s in links.list_links(TEST)}
    assert observed[net.bridge].kind == "bridge" and observed[net.bridge].up
    assert observed[net.bridge].addresses == (net.gateway,)
    for box in (a, b):
        veth = observed[TEST.veth(box.name, net.name)]
        assert (veth.kind, veth.master, veth.up) == ("veth", net.bridge, True)
        inside = {s.name: s for s in links.netns_links(box.netns)}
        assert inside["eth0"].addresses == (IPv4Interface(f"{box.address}/{net.subnet.prefixlen}"),)
        assert inside["eth0"].up and inside["lo"].up
        assert links.default_gateway(box.netns) == net.gateway.ip
    assert set(links.list_netns(TEST)) == {a.netns, b.netns}
    assert links.read_sysctl(f"net.ipv4.conf.{net.bridge}.route_localnet") == "1"


def test_published_ports_answer_on_localhost_and_on_the_host_address(lab: Lab) -> None:
    links.enable_ip_forward()
    net = lab.network("front")
    web = lab.container("net-web", net)
    lab.processes.serve(web.netns, 8000, "web")
    table = lab.table([net], [
        Publish(str(web.address), 8000, 18080),
        Publish(str(web.address), 8000, 18081, host_ip="127.0.0.1"),
        Publish(str(web.address), 8000, 18090, published_end=18092),
    ])
    nftables.apply(render(table))
    assert nftables.status(table) == "in-sync"

    outside_address = host_address()
    assert fetch("127.0.0.1", 18080).startswith("web ")
    assert fetch(outside_address, 18080).startswith("web ")
    assert fetch("127.0.0.1", 18081).startswith("web ")
    assert fetch(outside_address, 18081).startswith("ERROR"), "published on 127.0.0.1 only"
    assert fetch("127.0.0.1", 18091).startswith("web ")
    # from localhost, the container sees the bridge's address (the masquerade rule at work)
    assert fetch("127.0.0.1", 18080) == f"web {net.gateway.ip}"


def test_a_container_reaches_a_published_port_of_its_own_network(lab: Lab) -> None:
    links.enable_ip_forward()
    net = lab.network("front")
    web, client = lab.container("net-web", net), lab.container("net-client", net)
    lab.processes.serve(web.netns, 8000, "web")
    nftables.apply(render(lab.table([net], [Publish(str(web.address), 8000, 18080)])))
    assert fetch_in(client.netns, host_address(), 18080).startswith("web ")


def test_outbound_traffic_is_masqueraded_and_internal_networks_stay_inside(lab: Lab) -> None:
    links.enable_ip_forward()
    front, back = lab.network("front"), lab.network("back", internal=True)
    app = lab.container("net-app", front)
    hidden = lab.container("net-hidden", back)  # with a default route: only the firewall stops it
    outside = make_outside(lab.free_subnet())
    lab.processes.serve(outside.netns, 9000, "world")
    nftables.apply(render(lab.table([front, back])))

    assert fetch_in(app.netns, outside.address, 9000) == f"world {outside.host_address}"
    assert fetch_in(hidden.netns, outside.address, 9000).startswith("ERROR")

    listing = nftables.table_listing(TEST.table("nettest")) or ""
    assert f'ip saddr {front.subnet} oifname != "{front.bridge}" masquerade' in listing
    assert str(back.subnet) not in listing
    assert f'oifname "{back.bridge}" masquerade' not in listing


def test_networks_are_isolated_from_each_other(lab: Lab) -> None:
    links.enable_ip_forward()
    one, two = lab.network("one"), lab.network("two")
    a, b = lab.container("net-a", one), lab.container("net-b", two)
    lab.processes.serve(b.netns, 8000, "b")
    nftables.apply(render(lab.table([one, two])))
    assert fetch_in(a.netns, b.address, 8000).startswith("ERROR")


def test_a_deleted_bridge_is_observed_missing_and_recreated_with_the_same_address(lab: Lab) -> None:
    net = lab.network("front")
    run("ip", "link", "del", net.bridge)
    assert net.bridge not in {s.name for s in links.list_links(TEST)}

    links.ensure_bridge(net.bridge, net.gateway)
    again = {s.name: s for s in links.list_links(TEST)}[net.bridge]
    assert again.addresses == (net.gateway,) and again.up and again.kind == "bridge"
    assert links.read_sysctl(f"net.ipv4.conf.{net.bridge}.route_localnet") == "1"


def test_ensure_endpoint_converges(lab: Lab) -> None:
    net = lab.network("front")
    box = lab.container("net-a", net)
    veth = TEST.veth(box.name, net.name)
    moved = IPv4Interface(f"{box.address + 10}/{net.subnet.prefixlen}")
    endpoint = links.Endpoint(box.netns, veth, net.bridge, moved, net.gateway.ip)
    links.ensure_endpoint(endpoint)
    links.ensure_endpoint(endpoint)
    assert {s.name: s for s in links.netns_links(box.netns)}["eth0"].addresses == (moved,)

    run("ip", "link", "del", veth)  # someone removes the pair
    assert "eth0" not in {s.name for s in links.netns_links(box.netns)}
    links.ensure_endpoint(endpoint)
    assert {s.name: s for s in links.netns_links(box.netns)}["eth0"].addresses == (moved,)
    assert {s.name: s for s in links.list_links(TEST)}[veth].master == net.bridge


def test_removing_the_namespace_removes_the_veth(lab: Lab) -> None:
    net = lab.network("front")
    box = lab.container("net-a", net)
    links.remove_netns(box.netns)
    links.remove_netns(box.netns)  # already gone: fine
    assert TEST.veth(box.name, net.name) not in {s.name for s in links.list_links(TEST)}
    assert links.netns_links(box.netns) == ()
    assert box.netns not in links.list_netns(TEST)


def test_a_flushed_or_deleted_table_is_detected_and_reapplied(lab: Lab) -> None:
    net = lab.network("front")
    table = lab.table([net], [Publish("10.213.0.2", 80, 18080)])
    assert nftables.status(table) == "missing"
    nftables.apply(render(table))
    nftables.apply(render(table))  # applying again is harmless
    assert nftables.status(table) == "in-sync"
    assert nftables.list_tables(TEST) == (table.name,)

    run("nft", "flush", "table", "ip", table.name)
    assert nftables.status(table) == "drifted"
    nftables.apply(render(table))
    assert nftables.status(table) == "in-sync"

    run("nft", "add", "chain", "ip", table.name, "extra")
    assert nftables.status(table) == "drifted"
    nftables.apply(render(table))
    assert nftables.status(table) == "in-sync"

    nftables.delete_table(table.name)
    nftables.delete_table(table.name)  # already gone: fine
    assert nftables.status(table) == "missing"
    assert nftables.list_tables(TEST) == ()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_golden_table_reads_back_in_sync(lab: Lab, scenario: str) -> None:
    # what ``nft list table`` prints must be exactly what the renderer wrote, or drift checks lie
    table = dataclasses.replace(SCENARIOS[scenario](), name=TEST.table("nettest"))
    nftables.apply(render(table))
    assert nftables.status(table) == "in-sync"


def test_enable_ip_forward_reports_the_value_it_found(lab: Lab) -> None:
    links.write_sysctl("net.ipv4.ip_forward", "0")
    assert links.enable_ip_forward() == "0"
    assert links.read_sysctl("net.ipv4.ip_forward") == "1"
    assert links.enable_ip_forward() == "1"


def test_host_subnets_include_foreign_networks_but_not_the_owners_own(lab: Lab) -> None:
    net = lab.network("front")
    assert net.subnet not in links.host_subnets(TEST)
    assert net.subnet in links.host_subnets(DEFAULT)  # to another owner it is in use
    assert IPv4Interface(f"{host_address()}/32").network.subnet_of(
        next(n for n in links.host_subnets(TEST) if host_address() in n))


def test_foreign_failures_are_driver_errors(lab: Lab) -> None:
    net = lab.network("front")
    with pytest.raises(PermanentDriverError, match="does not exist"):
        links.ensure_endpoint(links.Endpoint(TEST.netns("net-missing"), TEST.veth("x", "y"), net.bridge,
                                             IPv4Interface("10.213.0.9/24")))
    links.ensure_netns(TEST.netns("net-a"))
    with pytest.raises(PermanentDriverError, match="bridge stkt-000000 does not exist"):
        links.ensure_endpoint(links.Endpoint(TEST.netns("net-a"), TEST.veth("x", "y"), "stkt-000000",
                                             IPv4Interface("10.213.0.9/24")))
    impostor = TEST.bridge("nettest", "impostor")
    run("ip", "link", "add", impostor, "type", "veth", "peer", "name", TEST.veth("impostor", "peer"))
    with pytest.raises(PermanentDriverError, match="is a veth, not a bridge"):
        links.ensure_bridge(impostor, IPv4Interface("10.213.0.1/24"))
    with pytest.raises(PermanentDriverError, match="apply nftables script"):
        nftables.apply("table ip stkt-broken { chain c { nonsense } }\n")
    assert nftables.list_tables(TEST) == ()  # the broken script changed nothing


def test_setup_runs_in_parallel_worker_threads(lab: Lab) -> None:
    # how the executor calls the driver: blocking calls through anyio.to_thread, several at once
    net = lab.network("front")
    names = [f"net-par{i}" for i in range(6)]
    addresses = {name: lab.lease(name, net) for name in names}

    async def attach(name: str) -> None:
        await anyio.to_thread.run_sync(lab.attach, name, net, addresses[name])

    async def attach_all() -> None:
        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(attach, name)

    anyio.run(attach_all)
    assert set(links.list_netns(TEST)) == {TEST.netns(n) for n in names}
    veths = {s.name: s for s in links.list_links(TEST) if s.kind == "veth"}
    assert {veths[TEST.veth(n, net.name)].master for n in names} == {net.bridge}
    for name in names:
        inside = {s.name: s for s in links.netns_links(TEST.netns(name))}
        assert inside["eth0"].addresses == (IPv4Interface(f"{addresses[name]}/{net.subnet.prefixlen}"),)

    async def on_the_loop() -> None:
        links.list_links(TEST)

    with pytest.raises(RuntimeError, match="to_thread"):
        anyio.run(on_the_loop)
