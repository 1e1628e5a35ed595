"""Stack networks and container attachments on the host, composed from the network driver and
the store: a network is a bridge with a subnet from the IPAM (kept in the store, so addresses
survive restarts); a container gets a network namespace and, on each of its networks, a veth
pair with an address leased from that subnet (also kept in the store), and its default route
through one of them; each project has one nft table publishing its containers' ports.

Bridges are named after the host network name alone (not the project), so that an ``external``
network declared by another stack is the same bridge. Subnets are chosen clear of every other
subnet on the host, including those of bridges another stackd (another data root) made.
``Networks`` carries out what it is told and reports what it finds; which networks and
containers should exist is decided above it.
Blocking (netlink, nft, sqlite): call from worker threads.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_address
from pathlib import Path
from typing import Any

from stackd.drivers.containers.info import Attachment, ContainerInfo
from stackd.drivers.containers.paths import HostLayout
from stackd.drivers.fsutil import write_atomic
from stackd.drivers.network import links, nftables, sysfs
from stackd.drivers.network.ipam import (
    DEFAULT_POOL,
    LeaseRequest,
    Subnet,
    SubnetRequest,
    allocate_subnets,
    assign_leases,
)
from stackd.drivers.network.names import Naming
from stackd.drivers.network.nft import Bridge, NatTable, Publish, render
from stackd.errors import PermanentDriverError
from stackd.store import Store, StoredResource, StoredSubnet


@dataclass(frozen=True)
class Wanted:
    """A container's wish on one network: its key, the host network name, a fixed address if
    any, its aliases."""

    key: str
    network: str
    address: str | None = None
    aliases: tuple[str, ...] = ()


def _subnet(stored: StoredSubnet) -> Subnet:
    return Subnet.from_record(stored.to_mapping())


class Networks:
    """The network side of one ``RealHost``."""

    def __init__(self, store: Store, layout: HostLayout, naming: Naming,
                 pool: IPv4Network = DEFAULT_POOL) -> None:
        self.store = store
        self.layout = layout
        self.naming = naming
        self.pool = pool

    def bridge(self, network: str) -> str:
        """The bridge of host network ``network``."""
        return self.naming.bridge("", network)

    def subnet(self, network: str) -> Subnet:
        stored = self.store.subnet(network)
        if stored is None:
            raise PermanentDriverError(f"network {network} does not exist (no subnet is recorded for it)")
        return _subnet(stored)

    # ------------------------------------------------------------------------------ networks

    def ensure(self, project: str, key: str, name: str, pools: Sequence[Mapping[str, Any]], *,
               internal: bool, config_hash: str) -> Subnet:
        """The network's subnet (allocated once, kept while it fits), its bridge up with the
        gateway address, forwarding on; recorded for ``project``."""
        request = SubnetRequest.from_pools(name, pools)
        host = links.host_subnets(self.naming) | self._strangers()
        with self.store.transaction():
            existing = {n: _subnet(s) for n, s in self.store.subnets().items()}
            chosen = allocate_subnets([request], existing=existing, host=host, pool=self.pool)[name]
            if existing.get(name) != chosen:
                self.store.put_subnet(StoredSubnet.from_mapping(chosen.to_record()))
        links.ensure_bridge(self.bridge(name), chosen.interface)
        self.enable_forwarding()
        meta = {"name": name, "key": key, "project": project, "bridge": self.bridge(name),
                "internal": internal, "subnet": str(chosen.subnet)}
        path = self.layout.network_file(project, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
        self.store.put_resource(StoredResource("network", project, key, name, config_hash))
        return chosen

    def _strangers(self) -> frozenset[IPv4Network]:
        """The subnets of bridges that look like stackd's but that this store did not make (another
        stackd with another data root, e.g. a test run): the IPAM must avoid them too, or two
        bridges would route the same subnet."""
        known = {self.bridge(n) for n in self.store.subnets()}
        return frozenset(a.network for s in links.list_links(self.naming)
                         if s.kind == "bridge" and s.name not in known for a in s.addresses)

    def remove(self, project: str, name: str) -> None:
        """Delete the bridge and forget the subnet; refused while a container holds an address."""
        leases = self.store.leases(name)
        if leases:
            raise PermanentDriverError(f"network {name} is still used by {', '.join(sorted(leases))}: remove "
                                       "those containers first")
        links.remove_bridge(self.bridge(name))
        self._restore_ip_forward()
        self.store.remove_subnet(name)
        for res in self.store.resources(project, "network"):
            if res.name == name:
                self.store.remove_resource("network", project, res.key)
        self.layout.network_file(project, name).unlink(missing_ok=True)

    def enable_forwarding(self) -> None:
        """Turn ``ip_forward`` on, noting first what it was (unless already noted: the first
        value found is what goes back when the last bridge goes, see ``_restore_ip_forward``)."""
        before = links.enable_ip_forward()
        saved = self.layout.ip_forward_file
        if not saved.exists():
            saved.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(saved, before.encode())

    def _restore_ip_forward(self) -> None:
        """When the last of stackd's bridges is gone, put ``ip_forward`` back as it was found, so
        that ``down`` leaves the host as it was before ``up``."""
        saved = self.layout.ip_forward_file
        if not saved.exists() or any(s.kind == "bridge" for s in links.list_links(self.naming)):
            return
        value = saved.read_text().strip()
        if value in ("0", "1"):
            links.write_sysctl("net.ipv4.ip_forward", value)
        saved.unlink(missing_ok=True)

    def internal(self, project: str, name: str) -> bool:
        try:
            meta = json.loads(self.layout.network_file(project, name).read_bytes())
        except (OSError, ValueError):
            return False
        return bool(isinstance(meta, dict) and meta.get("internal"))

    def records(self, project: str) -> list[tuple[StoredResource, bool]]:
        """The project's networks and whether each is on the host as made (bridge up with its
        gateway address)."""
        resources = self.store.resources(project, "network")
        states = sysfs.observe_links(self.bridge(res.name) for res in resources)
        out = []
        for res in resources:
            stored = self.store.subnet(res.name)
            state = states.get(self.bridge(res.name))
            intact = stored is not None and state is not None and state.kind == "bridge" and \
                _subnet(stored).interface in state.addresses
            out.append((res, intact))
        return out

    # ------------------------------------------------------------------------------ containers

    def lease(self, container: str, wanted: Wanted) -> str:
        """An address for ``container`` on ``wanted.network`` (its earlier one when it had one)."""
        subnet = self.subnet(wanted.network)
        with self.store.transaction():
            table = assign_leases(subnet, self.store.leases(wanted.network),
                                  [LeaseRequest(container, wanted.address)])
            self.store.set_leases(wanted.network, table)
        return table[container]

    def attach(self, container: str, netns: str, wanted: Sequence[Wanted], gateway: str | None
               ) -> tuple[Attachment, ...]:
        """Make ``netns`` (loopback up) and join it to every wanted network; the default route
        goes through network key ``gateway``. Returns the attachments with their addresses."""
        links.ensure_netns(netns)
        made = []
        for i, w in enumerate(wanted):
            address = self.lease(container, w)
            subnet = self.subnet(w.network)
            links.ensure_endpoint(links.Endpoint(
                netns=netns, host_ifname=self.naming.veth(container, w.network),
                bridge=self.bridge(w.network), address=subnet.interface_of(address),
                gateway=subnet.gateway if w.key == gateway else None,
                ifname=f"eth{i}"))
            made.append(Attachment(w.key, w.network, address, w.aliases))
        return tuple(made)

    def reattach(self, info: ContainerInfo) -> None:
        """Bring a container's namespace and endpoints back as recorded (after a reboot, or when
        someone deleted them); its addresses stay those of its leases."""
        if info.netns is None:
            return
        links.ensure_netns(info.netns)
        for i, a in enumerate(info.attachments):
            subnet = self.subnet(a.network)
            links.ensure_endpoint(links.Endpoint(
                netns=info.netns, host_ifname=self.naming.veth(info.name, a.network),
                bridge=self.bridge(a.network), address=subnet.interface_of(a.address),
                gateway=subnet.gateway if a.key == info.gateway else None, ifname=f"eth{i}"))

    def detach(self, container: str, netns: str | None) -> None:
        """Delete the container's namespace (and so its veth pairs) and free its addresses."""
        try:
            if netns is not None:
                left = links.remove_netns(netns)
                if left:
                    raise PermanentDriverError(f"container {container}: veths {', '.join(left)} stayed after "
                                               f"its network namespace {netns} was deleted")
        finally:
            self.store.release_leases_of(container)

    # ------------------------------------------------------------------------------ nft

    def table(self, project: str, infos: Iterable[ContainerInfo]) -> NatTable:
        """The project's nft table: its bridges and every published port of its containers."""
        bridges = []
        for res in self.store.resources(project, "network"):
            stored = self.store.subnet(res.name)
            if stored is not None:
                bridges.append(Bridge(self.bridge(res.name), IPv4Network(stored.subnet),
                                      self.internal(project, res.name)))
        ports = []
        for info in infos:
            address = info.publish_address()
            if address is None or info.network_mode != "networks":
                continue
            for p in info.ports:
                host_ip = p.host_ip if p.host_ip and ip_address(p.host_ip).version == 4 else None
                if p.host_ip and host_ip is None:
                    continue  # an IPv6 host address: this table is IPv4 only
                ports.append(Publish(container_ip=address, target=p.target, published=p.published,
                                     protocol="udp" if p.protocol == "udp" else "tcp", host_ip=host_ip,
                                     published_end=p.published_end))
        ordered = tuple(sorted(bridges, key=lambda b: b.name))
        return NatTable(self.naming.table(project), ordered, tuple(ports))

    def apply_table(self, project: str, infos: Iterable[ContainerInfo]) -> None:
        """Replace the project's table on the host (one transaction); delete it when the project
        has neither networks nor published ports."""
        table = self.table(project, infos)
        if not table.bridges and not table.ports:
            nftables.delete_table(table.name)
        else:
            nftables.apply(render(table))


def write_in_place(path: Path, text: str) -> None:
    """Rewrite ``path`` keeping its inode (it is bind-mounted into a running container), unless
    it holds ``text`` already. A file that is not there is left alone: its container is being
    removed (or not made yet, and its creation writes the file), and creating it would put it
    back into a directory that the removal is deleting."""
    with contextlib.suppress(FileNotFoundError), open(path, "r+", encoding="utf-8") as f:
        if f.read() == text:
            return
        f.seek(0)
        f.write(text)
        f.truncate()
