"""The connection under the store: opening (WAL, pragmas, migrations), one lock, transactions,
and the translation of sqlite's exceptions. The table mixins build their methods on ``_read``,
``_write`` and ``transaction``.

Threads: one connection shared by every thread and guarded by a re-entrant lock. Every method
holds the lock for one short statement, ``transaction()`` for its whole body, so that no thread
ever sees another thread's uncommitted writes through the shared connection. Async callers use
the store through ``anyio.to_thread.run_sync``; a transaction must begin and end in the same
thread (do the whole read-modify-write in one function run in a worker thread). Other processes
(another stackd, a CLI reading the file) are kept apart by sqlite's own file locks: writers
take the write lock at ``BEGIN IMMEDIATE`` and wait up to ``timeout`` seconds for it, then fail
with ``StoreBusyError``.

Durability: WAL mode with ``synchronous=NORMAL``. A commit survives a crash of stackd; a power
loss may drop the last commits but never corrupts the file. That is the right trade here: the
store is a record of what stackd did, and after a power loss every container is gone anyway and
the reconciler re-observes the host; containers also carry their facts as labels.

This module must not know any table; it is the only place that talks to ``sqlite3`` directly.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar, cast

from stackd.store.errors import StoreError, translate
from stackd.store.schema import MIGRATIONS, migrate

DEFAULT_PATH = Path("/var/lib/stackd/stackd.db")
DEFAULT_TIMEOUT = 10.0

Param = str | int | float | None
Clock = Callable[[], datetime]
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Database:
    """An open store file. ``clock`` stamps times the caller does not give (tests inject one)."""

    def __init__(self, path: Path | str = DEFAULT_PATH, *, clock: Clock = utc_now,
                 timeout: float = DEFAULT_TIMEOUT, migrations: Sequence[str] = MIGRATIONS) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.RLock()
        self._depth = 0
        self._commits = 0  # transactions this object committed (see ``version``)
        self._kept: dict[object, object] = {}  # see ``_cached``
        self._kept_version: tuple[int, int] | None = None
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open(timeout, migrations)

    def _open(self, timeout: float, migrations: Sequence[str]) -> sqlite3.Connection:
        where = f"opening the store {self.path}"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Created 0600 before sqlite sees it: stack dumps hold environments (and secrets' names);
            # sqlite gives the -wal and -shm files the same permissions.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        except OSError as exc:
            raise StoreError(f"{where}: {exc.strerror or exc}") from exc
        conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"{where}: the file system does not support sqlite's WAL mode "
                                 f"(journal mode is {mode[0] if mode else '?'}); use a local file system")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.row_factory = sqlite3.Row
            migrate(conn, migrations)
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise translate(exc, where) from exc
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return conn

    # ---------------------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close the file (a checkpoint folds the WAL back into it). Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"the store {self.path} is closed")
        return self._conn

    def now(self) -> datetime:
        return self.clock()

    # ------------------------------------------------------------------------ transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Run the body as one transaction: all of its writes or none. The write lock is taken at
        the start (``BEGIN IMMEDIATE``), so reads in the body see a state no one else changes
        until the end. Nested use makes a savepoint: the inner block can fail alone."""
        with self._lock:
            conn = self._connection()
            depth = self._depth
            name = f"sp{depth}"
            self._exec(conn, "SAVEPOINT " + name if depth else "BEGIN IMMEDIATE", ())
            self._depth = depth + 1
            try:
                yield
            except BaseException:
                self._depth = depth
                self._undo(conn, name if depth else None)
                raise
            self._depth = depth
            if depth:
                self._exec(conn, f"RELEASE {name}", ())
            else:
                try:
                    self._exec(conn, "COMMIT", ())
                except StoreError:
                    self._undo(conn, None)
                    raise
                finally:
                    self._commits += 1

    def version(self) -> tuple[int, int]:
        """Changes when the file may have: a commit through this object, or sqlite's
        ``data_version`` (another connection's commit)."""
        with self._lock:
            row = self._exec(self._connection(), "PRAGMA data_version", ()).fetchone()
            return self._commits, int(row[0])

    def _cached(self, key: object, read: Callable[[], T]) -> T:
        """``read()``, kept under ``key`` until the file may have changed (``version``): the
        daemon asks for the same rows on every pass. The result is shared: keep it unchanged."""
        with self._lock:
            if self._depth:  # in a transaction: its own writes are not committed (nor counted) yet
                return read()
            version = self.version()
            if version != self._kept_version:  # what was kept may be stale: keep none of it
                self._kept.clear()
                self._kept_version = version
            if key in self._kept:
                return cast(T, self._kept[key])
            value = read()
            self._kept[key] = value
            return value

    def _undo(self, conn: sqlite3.Connection, savepoint: str | None) -> None:
        """Roll back to ``savepoint`` (or the whole transaction). A failure here must not hide the
        error that got us here, and sqlite may have rolled back on its own already."""
        with contextlib.suppress(StoreError):
            if savepoint:
                self._exec(conn, f"ROLLBACK TO {savepoint}", ())
                self._exec(conn, f"RELEASE {savepoint}", ())
            else:
                self._exec(conn, "ROLLBACK", ())

    @staticmethod
    def _exec(conn: sqlite3.Connection, sql: str, params: Sequence[Param]) -> sqlite3.Cursor:
        try:
            return conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise translate(exc, sql.split("(", maxsplit=1)[0].strip()[:60]) from exc

    # ----------------------------------------------------------------------- statements

    def _read(self, sql: str, params: Sequence[Param] = ()) -> list[sqlite3.Row]:
        """Every row of one query."""
        with self._lock:
            conn = self._connection()
            cur = self._exec(conn, sql, params)
            try:
                return list(cur.fetchall())
            except sqlite3.Error as exc:
                raise translate(exc, "reading") from exc

    def _read_one(self, sql: str, params: Sequence[Param] = ()) -> sqlite3.Row | None:
        rows = self._read(sql, params)
        return rows[0] if rows else None

    def _write(self, sql: str, params: Sequence[Param] = ()) -> int:
        """Run one changing statement (in the caller's transaction, or in its own); the number of
        rows it changed."""
        with self.transaction():
            return self._exec(self._connection(), sql, params).rowcount

    def _insert(self, sql: str, params: Sequence[Param] = ()) -> int:
        """Run one INSERT; the rowid of the new row."""
        with self.transaction():
            rowid = self._exec(self._connection(), sql, params).lastrowid
        if rowid is None:
            raise StoreError(f"insert gave no row id: {sql[:60]}")
        return rowid
