"""Opening the store: file creation, WAL, migrations from empty, reopen, refusing newer or damaged files."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from stackd.store import MIGRATIONS, Store, StoreError, migrate, schema_version
from stackd.store.schema import statements
from tests.unit.store.support import T0


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_new_store_creates_the_file_private_in_wal_mode_at_the_latest_version(db_path: Path) -> None:
    with Store(db_path):
        pass
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    conn = _raw(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert schema_version(conn) == len(MIGRATIONS)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        wanted = {"stacks", "containers", "subnets", "leases", "resources", "events", "schema_version"}
        assert wanted <= tables
    finally:
        conn.close()


def test_an_empty_existing_file_is_migrated(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"")
    with Store(db_path) as s:
        s.add_stack_revision("demo", files=["stack.yaml"], stack_json="{}", applied_at=T0)
    with Store(db_path) as s:
        latest = s.latest_stack("demo")
    assert latest is not None and latest.revision == 1


def test_reopen_keeps_every_kind_of_data(db_path: Path) -> None:
    from stackd.store import StoredContainer, StoredResource, StoredSubnet

    with Store(db_path) as s:
        s.add_stack_revision("demo", files=["a.yaml"], stack_json='{"x":1}', applied_at=T0)
        s.put_container(StoredContainer("demo-web-1", "demo", "web", 1, "h1", T0))
        s.put_subnet(StoredSubnet("demo_default", "10.90.0.0/24", "10.90.0.1", "10.90.0.0/24"))
        s.put_lease("demo_default", "demo-web-1", "10.90.0.2")
        s.put_resource(StoredResource("network", "demo", "default", "demo_default", "nh"))
        s.add_event("demo", "service:web:1", "created", "made", ts=T0)
    with Store(db_path) as s:
        assert [r.stack_json for r in s.stack_revisions("demo")] == ['{"x":1}']
        assert [c.name for c in s.containers()] == ["demo-web-1"]
        assert s.leases("demo_default") == {"demo-web-1": "10.90.0.2"}
        assert [r.name for r in s.resources("demo")] == ["demo_default"]
        assert [e.kind for e in s.events_since(0)] == ["created"]
        # and the revision counter continues
        assert s.add_stack_revision("demo", files=["a.yaml"], stack_json="{}").revision == 2


def test_migrations_apply_in_order_and_keep_data(tmp_path: Path) -> None:
    first = "CREATE TABLE t (a INTEGER);"
    second = "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'x';\nUPDATE t SET b = 'y' WHERE a = 1;"
    conn = _raw(tmp_path / "m.db")
    try:
        assert migrate(conn, [first]) == 1
        conn.execute("INSERT INTO t (a) VALUES (1)")
        assert migrate(conn, [first, second]) == 2
        assert conn.execute("SELECT a, b FROM t").fetchall() == [(1, "y")]
        assert schema_version(conn) == 2
        assert migrate(conn, [first, second]) == 2  # nothing left to do
    finally:
        conn.close()


def test_a_failing_migration_leaves_the_old_schema(tmp_path: Path) -> None:
    conn = _raw(tmp_path / "m.db")
    try:
        migrate(conn, ["CREATE TABLE t (a INTEGER);"])
        with pytest.raises(StoreError, match="schema version 2"):
            migrate(conn, ["CREATE TABLE t (a INTEGER);", "CREATE TABLE u (a);\nCREATE TABLE t (b);"])
        assert schema_version(conn) == 1
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "u" not in names
    finally:
        conn.close()


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    with Store(db_path):
        pass
    conn = _raw(db_path)
    conn.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS) + 1,))
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        Store(db_path)


def test_a_file_that_is_no_database_is_a_store_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite at all, just some text that is long enough" * 20)
    with pytest.raises(StoreError, match="not a"):
        Store(db_path)


def test_a_closed_store_refuses_work(db_path: Path) -> None:
    s = Store(db_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.latest_stack("demo")


def test_statements_split_on_complete_statements_only() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE a (x TEXT DEFAULT 'semi;colon');
    CREATE TRIGGER tr AFTER INSERT ON a BEGIN
        UPDATE a SET x = 'y;z';
    END;
    """
    got = list(statements(script))
    assert len(got) == 2
    assert got[0].endswith("DEFAULT 'semi;colon');")
    assert got[1].startswith("CREATE TRIGGER") and got[1].endswith("END;")


def test_an_unfinished_statement_in_a_migration_is_an_error() -> None:
    with pytest.raises(StoreError, match="unfinished"):
        list(statements("CREATE TABLE a (x);\nCREATE TABLE b (y)\n-- trailing comment\n"))


def test_the_real_migrations_split_cleanly() -> None:
    for script in MIGRATIONS:
        parts = list(statements(script))
        assert parts and all(sqlite3.complete_statement(p) for p in parts)
