"""Fixture of the network host tests: a ``Lab`` under the test prefix ``stkt`` that is torn down
after every test, also when it fails, and a check that links, namespaces and nft tables are back
to what they were before the test (and ``net.ipv4.ip_forward`` to the value found).

Outside CI, a host without pyroute2 skips these tests; in CI (``CI`` set) the import fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

if not os.environ.get("CI"):
    pytest.importorskip("pyroute2", reason="pyroute2 is not installed (pip install pyroute2)")

from tests.host.network.lab import Lab, Snapshot, require_host

FORWARD = "/proc/sys/net/ipv4/ip_forward"


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_host()
    before = Snapshot.take()
    with open(FORWARD) as f:
        forward = f.read().strip()
    the_lab = Lab()
    try:
        yield the_lab
    finally:
        problems = the_lab.cleanup(before)
        with open(FORWARD, "w") as f:
            f.write(f"{forward}\n")
        after = Snapshot.take()
        assert not problems, f"cleanup failed: {problems}"
        assert after.ours() == before.ours(), f"left behind: {sorted(set(after.ours()) - set(before.ours()))}"
        assert before.links <= after.links and before.netns <= after.netns and before.tables <= after.tables
