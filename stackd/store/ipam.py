"""Table methods of the store for address management: the subnet each network got and the
address each container holds on it (the network driver's IPAM decides; the store remembers).

A lease needs its network's subnet to be recorded first, and goes with it (``remove_subnet``);
an address is leased at most once per network (``StoreConflictError`` otherwise). Lease tables
are ``container name → address`` mappings, the form the IPAM functions take and return. A
read-allocate-write cycle belongs in one ``transaction()`` so that two stacks never pick the
same subnet. Only the SQL of the ``subnets`` and ``leases`` tables lives here.
"""

from __future__ import annotations

from collections.abc import Mapping

from stackd.store.base import Database
from stackd.store.codec import dump_json, load_object
from stackd.store.errors import StoreError
from stackd.store.records import StoredSubnet


def _subnet(network: str, text: str) -> StoredSubnet:
    data = load_object(text, f"subnet of network {network}")
    try:
        return StoredSubnet.from_mapping(data)
    except (KeyError, ValueError) as exc:
        raise StoreError(f"stored subnet of network {network} is malformed: {exc}") from exc


class IpamMethods(Database):
    # ---------------------------------------------------------------------------- subnets

    def put_subnet(self, subnet: StoredSubnet) -> None:
        """Record (or replace) the subnet of ``subnet.network``; its leases stay."""
        self._write("INSERT INTO subnets (network, record) VALUES (?, ?) "
                    "ON CONFLICT (network) DO UPDATE SET record = excluded.record",
                    (subnet.network, dump_json(subnet.to_mapping())))

    def subnet(self, network: str) -> StoredSubnet | None:
        def read() -> StoredSubnet | None:
            row = self._read_one("SELECT network, record FROM subnets WHERE network = ?", (network,))
            return None if row is None else _subnet(row["network"], row["record"])

        return self._cached(("subnet", network), read)

    def subnets(self) -> dict[str, StoredSubnet]:
        """Every recorded subnet, of every project, by network name."""
        rows = self._read("SELECT network, record FROM subnets ORDER BY network")
        return {r["network"]: _subnet(r["network"], r["record"]) for r in rows}

    def remove_subnet(self, network: str) -> bool:
        """Free the subnet of ``network`` and every lease on it; whether it was recorded."""
        return self._write("DELETE FROM subnets WHERE network = ?", (network,)) > 0

    # ----------------------------------------------------------------------------- leases

    def leases(self, network: str) -> dict[str, str]:
        """The lease table of ``network``: container name → address."""
        rows = self._read("SELECT container, address FROM leases WHERE network = ? ORDER BY container",
                          (network,))
        return {r["container"]: r["address"] for r in rows}

    def set_leases(self, network: str, table: Mapping[str, str]) -> None:
        """Make ``table`` the whole lease table of ``network`` (what ``assign_leases`` returned)."""
        with self.transaction():
            self._write("DELETE FROM leases WHERE network = ?", (network,))
            for container, address in sorted(table.items()):
                self._write("INSERT INTO leases (network, container, address) VALUES (?, ?, ?)",
                            (network, container, address))

    def put_lease(self, network: str, container: str, address: str) -> None:
        """Give ``container`` the address ``address`` on ``network`` (replacing its old one)."""
        self._write("INSERT INTO leases (network, container, address) VALUES (?, ?, ?) "
                    "ON CONFLICT (network, container) DO UPDATE SET address = excluded.address",
                    (network, container, address))

    def release_lease(self, network: str, container: str) -> bool:
        """Free the address of ``container`` on ``network``; whether it held one."""
        return self._write("DELETE FROM leases WHERE network = ? AND container = ?", (network, container)) > 0

    def leases_of(self, container: str) -> dict[str, str]:
        """The addresses ``container`` holds: network name → address."""
        rows = self._read("SELECT network, address FROM leases WHERE container = ? ORDER BY network",
                          (container,))
        return {r["network"]: r["address"] for r in rows}

    def release_leases_of(self, container: str) -> int:
        """Free every address of ``container`` (it was removed); how many."""
        return self._write("DELETE FROM leases WHERE container = ?", (container,))
