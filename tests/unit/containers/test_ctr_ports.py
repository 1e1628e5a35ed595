"""Whether published host ports are free: the /proc/net tables, the overlap rules, claims of
other containers and of the other new containers of one up, and ``RealHost.port_conflicts``
against a socket this test really listens on (no root needed)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackd.drivers.containers.info import ContainerInfo, PortInfo
from stackd.drivers.containers.ports import (
    Claim,
    Socket,
    claims_of,
    conflicts,
    nat_claims,
    parse_sockets,
    read_sockets,
    relevant_sockets,
    socket_owners,
    stack_conflicts,
)
from stackd.drivers.realhost import RealHost
from tests.unit.containers.conftest import LoadStack

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 535 1 0 100 0
   1: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 536 1 0 100 0
   2: 01005A0A:88EA 03005A0A:18EB 06 00000000:00000000 03:000009B3 00000000     0        0 0 3 0
"""
TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A 0:0 00:0 0 0 0 700 1
   1: 00000000000000000000000001000000:1389 00000000000000000000000000000000:0000 0A 0:0 00:0 0 0 0 701 1
   2: 0000000000000000FFFF00000100007F:138A 00000000000000000000000000000000:0000 0A 0:0 00:0 0 0 0 702 1
"""
UDP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref
  10: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 900 2 0 0
"""


def test_the_proc_tables_are_read_in_their_byte_order() -> None:
    assert parse_sockets(TCP, "tcp", "0A") == [Socket("tcp", "0.0.0.0", 8080, 535),
                                               Socket("tcp", "127.0.0.1", 3000, 536)]
    assert parse_sockets(TCP6, "tcp", "0A") == [Socket("tcp", "::", 5000, 700),
                                                Socket("tcp", "::1", 5001, 701),
                                                Socket("tcp", "127.0.0.1", 5002, 702)]
    assert parse_sockets(UDP, "udp", "07") == [Socket("udp", "0.0.0.0", 53, 900)]
    assert parse_sockets("header only\n garbage line\n", "tcp", "0A") == []


def test_read_sockets_and_owners_from_a_proc_tree(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(TCP)
    (tmp_path / "net" / "udp").write_text(UDP)  # no tcp6/udp6: a host without IPv6
    found = read_sockets(tmp_path)
    assert {(s.protocol, s.port) for s in found} == {("tcp", 8080), ("tcp", 3000), ("udp", 53)}
    fd = tmp_path / "4242" / "fd"
    fd.mkdir(parents=True)
    os.symlink("socket:[536]", fd / "7")
    os.symlink("/dev/null", fd / "0")
    (tmp_path / "4242" / "comm").write_text("redis-server\n")
    assert socket_owners([536, 535], tmp_path) == {536: "redis-server, pid 4242"}
    assert socket_owners([], tmp_path) == {}


def port(published: int, host_ip: str | None = None, protocol: str = "tcp",
         end: int | None = None) -> PortInfo:
    return PortInfo(80, published, protocol, host_ip, end)


@pytest.mark.parametrize(("wanted", "sock", "clash"), [
    (port(8080), Socket("tcp", "127.0.0.1", 8080), True),          # every address includes loopback
    (port(8080, "127.0.0.1"), Socket("tcp", "0.0.0.0", 8080), True),
    (port(8080, "127.0.0.1"), Socket("tcp", "10.0.0.5", 8080), False),
    (port(8080, "10.0.0.5"), Socket("tcp", "10.0.0.5", 8080), True),
    (port(8080), Socket("tcp", "::", 8080), True),                 # a dual-stack listener
    (port(8080), Socket("tcp", "::1", 8080), False),               # IPv6 only: the v4 table misses it
    (port(8080), Socket("udp", "0.0.0.0", 8080), False),
    (port(8080, protocol="udp"), Socket("udp", "0.0.0.0", 8080), True),
    (port(8000, end=8010), Socket("tcp", "0.0.0.0", 8005), True),
    (port(8000, end=8010), Socket("tcp", "0.0.0.0", 8011), False),
    (port(8080, "::1"), Socket("tcp", "::", 8080), False),         # an IPv6 host address is not published
])
def test_a_socket_holds_a_port_when_protocol_port_and_address_meet(wanted: PortInfo, sock: Socket,
                                                                    clash: bool) -> None:
    assert bool(conflicts("web", [wanted], [sock], [])) == clash


def test_messages_name_the_service_the_port_and_the_holder() -> None:
    [text] = conflicts("web", [port(8080)], [Socket("tcp", "0.0.0.0", 8080, 535)], [], {535: "nginx, pid 7"})
    assert text == ("service web: host port 8080 is already in use (nginx, pid 7 listens on 0.0.0.0:8080); "
                    "stop what holds it, or publish the service on another host port")
    [udp] = conflicts("dns", [port(53, "127.0.0.1", "udp")], [Socket("udp", "0.0.0.0", 53)], [])
    assert udp.startswith("service dns: host port 127.0.0.1:53/udp is already in use (a process listens on ")
    [ranged] = conflicts("web", [port(9000, end=9010)], [], [Claim("container other-web-1 of stack other",
                                                                   port(9005, end=9020))])
    assert "port 9005 is already in use (container other-web-1 of stack other publishes 9005-9020)" in ranged


INFOS = [
    ContainerInfo(name="other-web-1", project="other", service="web", number=1, image="i", image_id="x",
                  cgroups_path="/", hostname="h", ports=(port(8080),)),
    ContainerInfo(name="demo-api-1", project="demo", service="api", number=1, image="i", image_id="x",
                  cgroups_path="/", hostname="h", ports=(port(9090),)),
    ContainerInfo(name="demo-host-1", project="demo", service="host", number=1, image="i", image_id="x",
                  cgroups_path="/", hostname="h", network_mode="host", ports=(port(7070),)),
]


def test_claims_of_other_containers_and_of_each_other(load_stack: LoadStack) -> None:
    stack = load_stack("""
        services:
          web: {image: x, ports: ["8080:80"]}
          api: {image: x, ports: ["9090:80", "7070:81"]}
          solo: {image: x, network_mode: host, ports: ["8080:80"]}
        """)
    claims = claims_of(INFOS, "demo")
    assert [c.owner for c in claims] == ["container other-web-1 of stack other", "container demo-api-1"]
    found = stack_conflicts(stack, [("web", "demo-web-1"), ("api", "demo-api-2"), ("api", "demo-api-3")],
                            claims=claims, sockets=[])
    hint = "; stop what holds it, or publish the service on another host port"
    assert found == [
        "service web: host port 8080 is already in use (container other-web-1 of stack other publishes "
        "8080)" + hint,
        "service api: host port 9090 is already in use (container demo-api-1 publishes 9090)" + hint,
        "service api: host port 9090 is already in use (container demo-api-1 publishes 9090)" + hint,
        "service api: host port 7070 is already in use (another new container, demo-api-2, publishes "
        "7070)" + hint,
    ]
    # a container being replaced holds nothing; a service in the host's namespace publishes nothing
    assert stack_conflicts(stack, [("api", "demo-api-1"), ("solo", "demo-solo-1")],
                           claims=claims_of(INFOS[:1], "demo"), sockets=[]) == []
    sockets = [Socket("tcp", "0.0.0.0", 9090), Socket("tcp", "0.0.0.0", 22)]
    assert relevant_sockets(stack, [("api", "demo-api-1")], sockets) == sockets[:1]


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_real_host_names_the_process_listening_on_the_port(tmp_path: Path, load_stack: LoadStack,
                                                           listener: int) -> None:
    stack = load_stack(f"services:\n  web: {{image: x, ports: ['{listener}:80']}}\n"
                       f"  api: {{image: x, ports: ['127.0.0.2:{listener}:80']}}\n")
    host = RealHost(tmp_path / "data", tmp_path / "run")
    try:
        text, other = host.port_conflicts(stack, [("web", "demo-web-1"), ("api", "demo-api-1")])
    finally:
        host.close()
    assert text.startswith(f"service web: host port {listener} is already in use (")
    assert f", pid {os.getpid()} listens on 127.0.0.1:{listener})" in text
    # 127.0.0.2 is not where the test listens, but web publishes on every address
    assert f"host port 127.0.0.2:{listener} is already in use (another new container, demo-web-1," in other


def _rule(table: str, *exprs: object) -> object:
    return {"rule": {"family": "ip", "table": table, "chain": "publish", "expr": list(exprs)}}


def _match(protocol: str, field: str, right: object, op: str = "==") -> object:
    return {"match": {"op": op, "left": {"payload": {"protocol": protocol, "field": field}}, "right": right}}


DNAT = {"dnat": {"addr": "10.90.0.4", "port": 80}}


def test_dnat_rules_of_other_tables_hold_their_ports() -> None:
    import json

    ruleset = json.dumps({"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        _rule("stackd-other", _match("tcp", "dport", 8080), DNAT),
        _rule("stackd-other", _match("ip", "daddr", "127.0.0.1"),
              _match("udp", "dport", {"range": [5000, 5010]}), DNAT),
        _rule("netavark", _match("tcp", "dport", {"set": [7000, {"range": [7100, 7101]}]}),
              {"redirect": None}),
        _rule("stackd-mine", _match("tcp", "dport", 9090), DNAT),      # ours: skipped
        _rule("filter", _match("tcp", "dport", 22), {"accept": None}),  # no DNAT: not a claim
        _rule("odd", _match("tcp", "dport", 25, op="!="), DNAT),
    ]})
    claims = nat_claims(ruleset, skip_tables={"stackd-mine"})
    seen = [(c.owner, c.port.protocol, c.port.published, c.port.published_end, c.port.host_ip)
            for c in claims]
    assert seen == [
        ("an nftables rule of table ip stackd-other", "tcp", 8080, None, None),
        ("an nftables rule of table ip stackd-other", "udp", 5000, 5010, "127.0.0.1"),
        ("an nftables rule of table ip netavark", "tcp", 7000, None, None),
        ("an nftables rule of table ip netavark", "tcp", 7100, 7101, None),
    ]
    [text] = conflicts("web", [port(8080)], [], claims)
    assert "(an nftables rule of table ip stackd-other publishes 8080)" in text
    assert nat_claims("") == [] and nat_claims("not json") == [] and nat_claims('{"nftables": 3}') == []
