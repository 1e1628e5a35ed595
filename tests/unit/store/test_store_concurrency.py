"""Concurrent use: threads sharing one store, several stores on one file (as several processes
would), worker threads through anyio, transactions all-or-nothing, a busy writer."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from stackd.store import Store, StoreBusyError, StoredContainer
from tests.unit.store.support import T0

THREADS = 8
EACH = 25


def _run_threads(work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_threads_sharing_one_store_get_distinct_contiguous_revisions(store: Store) -> None:
    def work(i: int) -> None:
        for k in range(EACH):
            store.add_stack_revision("demo", files=[f"t{i}"], stack_json=f'{{"k":{k}}}')
            store.add_event("demo", f"thread:{i}", "tick", str(k))

    _run_threads(work)
    revisions = [r.revision for r in store.stack_revisions("demo")]
    assert revisions == list(range(1, THREADS * EACH + 1))
    assert len(store.events_since(0)) == THREADS * EACH


def test_separate_stores_on_one_file_serialise_their_writers(db_path: Path) -> None:
    Store(db_path).close()  # create it once, as the daemon would

    def work(i: int) -> None:
        with Store(db_path) as own:
            for k in range(EACH):
                with own.transaction():  # a read-modify-write that must not interleave
                    table = own.leases("net")
                    table[f"c{i}-{k}"] = f"10.0.{len(table) // 250}.{len(table) % 250 + 2}"
                    own.set_leases("net", table)

    with Store(db_path) as s:
        from stackd.store import StoredSubnet

        s.put_subnet(StoredSubnet("net", "10.0.0.0/16", "10.0.0.1", "10.0.0.0/16"))
    _run_threads(work)
    with Store(db_path) as s:
        table = s.leases("net")
    assert len(table) == THREADS * EACH
    assert len(set(table.values())) == THREADS * EACH


def test_worker_threads_through_anyio(store: Store) -> None:
    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for n in range(1, 21):
                c = StoredContainer(f"demo-web-{n}", "demo", "web", n, f"h{n}", T0)
                tg.start_soon(anyio.to_thread.run_sync, store.put_container, c)
        got = await anyio.to_thread.run_sync(store.containers, "demo")
        assert [c.number for c in got] == list(range(1, 21))

    anyio.run(main)


def test_a_failed_transaction_changes_nothing(store: Store) -> None:
    store.put_container(StoredContainer("demo-web-1", "demo", "web", 1, "h", T0))
    with pytest.raises(RuntimeError), store.transaction():
        store.remove_container("demo-web-1")
        store.add_event("demo", "service:web:1", "removed", "gone")
        raise RuntimeError("boom")
    assert store.container("demo-web-1") is not None
    assert store.events_since(0) == []


def test_a_nested_transaction_fails_alone(store: Store) -> None:
    with store.transaction():
        store.add_event("demo", "stack", "outer", "kept")
        with pytest.raises(RuntimeError), store.transaction():
            store.add_event("demo", "stack", "inner", "dropped")
            raise RuntimeError("inner")
        store.add_event("demo", "stack", "outer", "kept too")
    assert [e.message for e in store.events_since(0)] == ["kept", "kept too"]


def test_no_thread_sees_half_a_transaction(store: Store) -> None:
    written = threading.Event()
    proceed = threading.Event()
    seen: list[int] = []

    def writer() -> None:
        with store.transaction():
            store.put_container(StoredContainer("a-x-1", "a", "x", 1, "h", T0))
            written.set()
            proceed.wait(10)
            store.put_container(StoredContainer("a-x-2", "a", "x", 2, "h", T0))

    def reader() -> None:
        seen.append(len(store.containers()))

    w = threading.Thread(target=writer)
    w.start()
    assert written.wait(10)
    r = threading.Thread(target=reader)
    r.start()
    time.sleep(0.05)  # give the reader a chance to run into the open transaction
    proceed.set()
    w.join()
    r.join()
    assert seen == [2]


def test_another_connection_sees_only_committed_state(db_path: Path, store: Store) -> None:
    with Store(db_path) as other, store.transaction():
        store.put_container(StoredContainer("a-x-1", "a", "x", 1, "h", T0))
        assert other.containers() == []  # WAL: readers go on, and see the last commit
    with Store(db_path) as other:
        assert [c.name for c in other.containers()] == ["a-x-1"]


def test_a_writer_blocked_past_the_timeout_gets_a_transient_error(db_path: Path) -> None:
    with Store(db_path, timeout=0.05) as s:
        holder = sqlite3.connect(db_path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreBusyError, match="busy"):
                s.add_event("demo", "stack", "k", "m")
            assert s.events_since(0) == []  # reads still work under WAL
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        assert s.add_event("demo", "stack", "k", "m").id == 1  # and the store recovers
