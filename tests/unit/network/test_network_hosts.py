"""/etc/hosts of a container: own names, peers on shared networks only, replicas, aliases."""

from __future__ import annotations

from stackd.drivers.network.hosts import Member, render_hosts

LOCAL = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)

MEMBERS = [
    Member("shop_back", "10.90.1.3", "shop-db-1", "db", ("database",)),
    Member("shop_front", "10.90.0.4", "shop-web-2", "web"),
    Member("shop_front", "10.90.0.3", "shop-web-1", "web", ("www",)),
    Member("shop_back", "10.90.1.2", "shop-web-1", "web"),
    Member("shop_front", "10.90.0.2", "shop-proxy-1", "proxy"),
]


def test_a_container_sees_itself_and_every_peer_on_its_networks() -> None:
    text = render_hosts("shop-web-1", MEMBERS, hostname="a1b2c3")
    assert text == LOCAL + (
        "10.90.1.2\ta1b2c3 shop-web-1 web\n"
        "10.90.0.3\ta1b2c3 shop-web-1 web www\n"
        "10.90.1.3\tdb shop-db-1 database\n"
        "10.90.0.2\tproxy shop-proxy-1\n"
        "10.90.0.4\tweb shop-web-2\n"
    )


def test_peers_on_networks_the_container_is_not_on_are_not_listed() -> None:
    text = render_hosts("shop-proxy-1", MEMBERS)
    assert "shop-db-1" not in text and "10.90.1." not in text
    assert text.endswith("10.90.0.3\tweb shop-web-1 www\n10.90.0.4\tweb shop-web-2\n")


def test_replicas_of_a_service_each_get_a_line_in_name_order() -> None:
    text = render_hosts("shop-proxy-1", list(reversed(MEMBERS)))
    assert text.index("shop-web-1") < text.index("shop-web-2")
    assert render_hosts("shop-proxy-1", MEMBERS) == text


def test_extra_hosts_come_last_and_invalid_names_are_left_out() -> None:
    members = [Member("n", "10.90.0.2", "c-1", "c", ("bad name", "good", "good"))]
    text = render_hosts("c-1", members, extra_hosts=[("gateway.local", "10.90.0.1"), ("-bad", "1.2.3.4")])
    assert text == LOCAL + "10.90.0.2\tc-1 c good\n10.90.0.1\tgateway.local\n"


def test_a_container_on_no_network_gets_only_the_local_lines() -> None:
    assert render_hosts("lonely-1", MEMBERS) == LOCAL
