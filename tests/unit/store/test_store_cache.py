"""The rows the daemon asks for on every pass are read once per version of the file: again after
a commit through the same store, and after one through another connection (another process)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stackd.store import Store, StoredContainer, StoredResource, StoredSubnet


def _container(name: str) -> StoredContainer:
    return StoredContainer(name=name, project="demo", service="web", number=1, config_hash="h",
                           created_at=datetime(2026, 1, 1, tzinfo=UTC))


def _count_reads(store: Store, monkeypatch: pytest.MonkeyPatch, only: str = "") -> list[str]:
    """The queries ``store`` reads from now on (those containing ``only``)."""
    reads: list[str] = []
    real = store._read

    def counting(sql: str, params: Sequence[Any] = ()) -> Any:
        if only in sql:
            reads.append(sql)
        return real(sql, params)

    monkeypatch.setattr(store, "_read", counting)
    return reads


def test_container_rows_are_read_again_only_after_a_commit(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store, other = Store(tmp_path / "s.db"), Store(tmp_path / "s.db")
    reads = _count_reads(store, monkeypatch, only="ORDER BY project")  # the listing, not a single row
    try:
        store.put_container(_container("demo-web-1"))
        assert [c.name for c in store.containers("demo")] == ["demo-web-1"]
        assert [c.name for c in store.containers("demo")] == ["demo-web-1"]
        assert len(reads) == 1
        store.set_restart_state("demo-web-1", restarts=2, backoff_until=None)  # a commit here
        assert store.containers("demo")[0].restarts == 2 and len(reads) == 2
        other.put_container(dataclasses.replace(_container("demo-web-2"), number=2))  # another connection
        assert [c.name for c in store.containers("demo")] == ["demo-web-1", "demo-web-2"]
        assert len(reads) == 3
        assert store.containers(None) and len(reads) == 4  # another question, read once
        store.containers(None)
        assert len(reads) == 4
    finally:
        store.close()
        other.close()


def test_resources_and_subnets_are_kept_until_a_commit(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store, other = Store(tmp_path / "s.db"), Store(tmp_path / "s.db")
    try:
        store.put_resource(StoredResource("network", "demo", "default", "demo_default", "h1"))
        store.put_subnet(StoredSubnet("demo_default", "10.89.0.0/24", "10.89.0.1", "10.89.0.0/24"))
        reads = _count_reads(store, monkeypatch)
        for _ in range(3):
            assert [r.name for r in store.resources("demo", "network")] == ["demo_default"]
            assert store.subnet("demo_default") is not None
        assert len(reads) == 2
        other.put_resource(StoredResource("network", "demo", "back", "demo_back", "h2"))
        assert [r.key for r in store.resources("demo", "network")] == ["back", "default"]
        other.remove_subnet("demo_default")
        assert store.subnet("demo_default") is None
    finally:
        store.close()
        other.close()


def test_a_transaction_reads_its_own_writes(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    try:
        assert store.resources("demo") == [] and store.subnet("demo_default") is None  # kept: empty
        with store.transaction():
            store.put_resource(StoredResource("volume", "demo", "data", "demo_data"))
            store.put_subnet(StoredSubnet("demo_default", "10.89.0.0/24", "10.89.0.1", "10.89.0.0/24"))
            assert [r.name for r in store.resources("demo")] == ["demo_data"]
            assert store.subnet("demo_default") is not None
        assert [r.name for r in store.resources("demo")] == ["demo_data"]
    finally:
        store.close()
