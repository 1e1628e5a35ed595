"""How containers meet the network, as data: network modes, which network carries the default
route, published ports, extra hosts, the hosts/resolv.conf/hostname files, and the project's nft
table built from the containers' records."""

from __future__ import annotations

import os
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from stackd.drivers.containers import attach, dnsfiles
from stackd.drivers.containers.info import Attachment, ContainerInfo, PortInfo
from stackd.drivers.containers.networks import Networks, Wanted, write_in_place
from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.network.ipam import Subnet
from stackd.drivers.network.names import Naming
from stackd.drivers.network.nft import Bridge, Publish
from stackd.errors import PermanentDriverError
from stackd.store import Store, StoredResource, StoredSubnet
from tests.unit.containers.conftest import LoadStack

NETS = """
services:
  web:
    image: busybox
    networks:
      front: {aliases: [www], gw_priority: 0}
      back: {ipv4_address: 10.1.0.9}
      inner: {}
    ports: ['127.0.0.1:8080:80', '9000-9002:9000', '53:53/udp', '80']
    extra_hosts: ['db.local=10.0.0.5', 'db.local=10.0.0.6', 'gw:10.0.0.1']
  side:
    image: busybox
    network_mode: service:web
  solo:
    image: busybox
    network_mode: none
  hosty:
    image: busybox
    network_mode: host
  pref:
    image: busybox
    networks:
      front: {}
      back: {gw_priority: 5}
networks:
  front: {}
  back: {name: shared-back}
  inner: {internal: true}
"""


def info(name: str, service: str, *attachments: Attachment, **fields: object) -> ContainerInfo:
    return ContainerInfo(name=name, project="demo", service=service, number=1, image="i", image_id="sha256:x",
                         cgroups_path=f"/stackd/demo/default/{name}", hostname=name, attachments=attachments,
                         **fields)  # type: ignore[arg-type]


def test_network_modes(load_stack: LoadStack) -> None:
    stack = load_stack(NETS)
    modes = {s: attach.network_mode(stack, stack.services[s]) for s in ("web", "side", "solo", "hosty")}
    assert modes == {"web": attach.Mode("networks"), "side": attach.Mode("join", "demo-web-1"),
                     "solo": attach.Mode("none"), "hosty": attach.Mode("host")}


def test_unsupported_network_mode_names_the_service(load_stack: LoadStack) -> None:
    stack = load_stack("services:\n  web: {image: busybox, network_mode: bridge}\n")
    with pytest.raises(PermanentDriverError, match="service web: network_mode 'bridge'"):
        attach.network_mode(stack, stack.services["web"])


def test_gateway_skips_internal_networks_and_follows_priority(load_stack: LoadStack) -> None:
    stack = load_stack(NETS)
    # by name: back before front; inner is internal
    assert attach.gateway_key(stack, stack.services["web"]) == "back"
    assert attach.gateway_key(stack, stack.services["pref"]) == "back"
    wanted = attach.wanted_networks(stack, stack.services["web"])
    assert wanted == [Wanted("back", "shared-back", "10.1.0.9"),
                      Wanted("front", "demo_front", None, ("www",)), Wanted("inner", "demo_inner")]
    only_internal = load_stack("services:\n  a: {image: x, networks: [n]}\n"
                               "networks:\n  n: {internal: true}\n")
    assert attach.gateway_key(only_internal, only_internal.services["a"]) is None


def test_published_ports_and_extra_hosts(load_stack: LoadStack) -> None:
    svc = load_stack(NETS).services["web"]
    assert attach.port_infos(svc) == (
        PortInfo(80, 8080, "tcp", "127.0.0.1"), PortInfo(9000, 9000, "tcp", None, 9002),
        PortInfo(53, 53, "udp"))
    assert [p.render() for p in attach.port_infos(svc)] == [
        "127.0.0.1:8080->80/tcp", "0.0.0.0:9000-9002->9000/tcp", "0.0.0.0:53->53/udp"]
    assert attach.extra_host_pairs(svc) == (
        ("db.local", "10.0.0.5"), ("db.local", "10.0.0.6"), ("gw", "10.0.0.1"))


# ------------------------------------------------------------------------------ files


def test_resolv_conf_drops_loopback_servers() -> None:
    host = "# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch corp.example\noptions edns0\n"
    assert dnsfiles.render_resolv(host) == "nameserver 192.0.2.1\nsearch corp.example\noptions edns0\n"


def test_resolv_conf_uses_the_local_caches_upstream_then_public_servers() -> None:
    host = "nameserver 127.0.0.53\nnameserver ::1\n"
    assert dnsfiles.render_resolv(host, upstream="nameserver 198.51.100.7\n") == "nameserver 198.51.100.7\n"
    assert dnsfiles.render_resolv(host) == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_resolv_conf_service_settings_win() -> None:
    text = dnsfiles.render_resolv("nameserver 192.0.2.1\nsearch a\noptions ndots:2\n", dns=["1.1.1.1"],
                                  search=["b", "c"], options=["ndots:1"])
    assert text == "nameserver 1.1.1.1\nsearch b c\noptions ndots:1\n"


def test_hosts_list_peers_on_shared_networks_only() -> None:
    web = info("demo-web-1", "web", Attachment("front", "demo_front", "10.90.0.2", ("www",)),
               extra_hosts=(("gw", "10.0.0.1"),))
    db = info("demo-db-1", "db", Attachment("back", "demo_back", "10.90.1.2"))
    cache = info("demo-cache-1", "cache", Attachment("front", "demo_front", "10.90.0.3"),
                 Attachment("back", "demo_back", "10.90.1.3"))
    text = dnsfiles.hosts_text(web, [web, db, cache])
    assert "10.90.0.2\tdemo-web-1 web www\n" in text
    assert "10.90.0.3\tcache demo-cache-1\n" in text
    assert "db" not in text.replace("demo-web-1", "")  # not on a network web is on
    assert text.startswith("127.0.0.1\tlocalhost\n") and text.endswith("10.0.0.1\tgw\n")


def test_hosts_of_a_container_on_the_hosts_network() -> None:
    box = info("demo-h-1", "h", network_mode="host", extra_hosts=(("x", "10.0.0.9"),))
    assert dnsfiles.hosts_text(box, [box], host_hosts="127.0.0.1 localhost") == \
        "127.0.0.1 localhost\n10.0.0.9\tx\n"
    assert dnsfiles.hostname_text(box) == "demo-h-1\n"


def test_hosts_files_are_rewritten_in_place(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("a long old text\n" * 10)
    inode = path.stat().st_ino
    write_in_place(path, "new\n")
    assert path.read_text() == "new\n" and path.stat().st_ino == inode
    # a container being removed has no hosts file any more: refreshing must not bring it back
    gone = tmp_path / "removed-container"
    gone.mkdir()
    write_in_place(gone / "hosts", "x\n")
    assert list(gone.iterdir()) == []


def test_a_hosts_file_that_holds_the_text_already_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("same\n")
    os.utime(path, (1_000_000, 1_000_000))
    write_in_place(path, "same\n")
    assert path.stat().st_mtime == 1_000_000
    write_in_place(path, "other\n")
    assert path.read_text() == "other\n" and path.stat().st_mtime != 1_000_000


# ------------------------------------------------------------------------------ nft table


def test_the_project_table_publishes_every_containers_ports(tmp_path: Path) -> None:
    layout = HostLayout(tmp_path / "data", tmp_path / "run")
    with Store(tmp_path / "stackd.db") as store:
        nets = Networks(store, layout, Naming("stkt", "stkt"))
        made = (("front", "demo_front", "10.90.0.0/24"), ("inner", "demo_inner", "10.90.1.0/24"))
        for key, name, text in made:
            net = IPv4Network(text)
            store.put_subnet(StoredSubnet.from_mapping(Subnet(name, net, next(net.hosts()), net).to_record()))
            store.put_resource(StoredResource("network", "demo", key, name, "h"))
        meta = layout.network_file("demo", "demo_inner")
        meta.parent.mkdir(parents=True)
        meta.write_text('{"internal": true}')
        web = info("demo-web-1", "web", Attachment("inner", "demo_inner", "10.90.1.2"),
                   Attachment("front", "demo_front", "10.90.0.2"), gateway="front",
                   ports=(PortInfo(80, 8080, host_ip="127.0.0.1"), PortInfo(53, 53, "udp", "::1")))
        side = info("demo-side-1", "side", network_mode="join", ports=(PortInfo(1, 1),))
        table = nets.table("demo", [web, side])
    assert table.name == "stkt-demo"
    wanted = (Bridge(nets.bridge("demo_front"), IPv4Network("10.90.0.0/24")),
              Bridge(nets.bridge("demo_inner"), IPv4Network("10.90.1.0/24"), True))
    assert table.bridges == tuple(sorted(wanted, key=lambda b: b.name))
    assert table.ports == (Publish("10.90.0.2", 80, 8080, "tcp", "127.0.0.1"),)  # IPv6 host address skipped
    assert nets.bridge("demo_front") == Naming("stkt", "stkt").bridge("", "demo_front")
