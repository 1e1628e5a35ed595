"""The schema of the store as an ordered list of migrations, and the function that applies them.

``MIGRATIONS[i]`` is the SQL script that takes the schema from version ``i`` to ``i + 1``; the
version is kept in the one-row table ``schema_version``. A migration, once released, is never
edited: a change is a new script at the end of the list. ``migrate`` applies every missing
script and the new version in one transaction (DDL is transactional in sqlite), so a failing
migration leaves the file as it was; a file with a newer version than this stackd knows is
refused rather than guessed at.

Nothing here knows about records or methods; ``store.py`` and its tables do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from stackd.store.errors import StoreError

V1 = """
CREATE TABLE stacks (
    project     TEXT    NOT NULL,
    revision    INTEGER NOT NULL CHECK (revision > 0),
    files       TEXT    NOT NULL,            -- JSON list of the stack files, in merge order
    envs        TEXT    NOT NULL,            -- JSON list of the --env overlays
    stack_json  TEXT    NOT NULL,            -- the model dump
    applied_at  TEXT    NOT NULL,
    PRIMARY KEY (project, revision)
);

-- The last revision handed out per project; kept when the revisions are forgotten, so that a
-- revision number is never given twice to a project.
CREATE TABLE revision_counters (
    project     TEXT    PRIMARY KEY,
    last        INTEGER NOT NULL
);

CREATE TABLE containers (
    name            TEXT    PRIMARY KEY,
    project         TEXT    NOT NULL,
    service         TEXT    NOT NULL,
    number          INTEGER NOT NULL,
    config_hash     TEXT    NOT NULL,
    config_parts    TEXT    NOT NULL DEFAULT '{}',
    image_id        TEXT,
    grp             TEXT,
    created_at      TEXT    NOT NULL,
    restarts        INTEGER NOT NULL DEFAULT 0,
    last_exit_code  INTEGER,
    stopped_by_user INTEGER NOT NULL DEFAULT 0 CHECK (stopped_by_user IN (0, 1)),
    backoff_until   TEXT
);
CREATE INDEX containers_by_project ON containers (project, service, number);

CREATE TABLE subnets (
    network     TEXT    PRIMARY KEY,
    record      TEXT    NOT NULL             -- JSON, the network driver's Subnet.to_record()
);

CREATE TABLE leases (
    network     TEXT    NOT NULL REFERENCES subnets (network) ON DELETE CASCADE,
    container   TEXT    NOT NULL,
    address     TEXT    NOT NULL,
    PRIMARY KEY (network, container),
    UNIQUE (network, address)
);
CREATE INDEX leases_by_container ON leases (container);

CREATE TABLE resources (
    kind        TEXT    NOT NULL CHECK (kind IN ('group', 'network', 'volume')),
    project     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    config_hash TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (kind, project, key)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused, also after pruning
    ts          TEXT    NOT NULL,
    project     TEXT    NOT NULL,
    resource    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    data        TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_project ON events (project, id);
"""

# The reconciler keeps the options of ``up`` that shape the desired state (targets, scale) with
# each revision; ``stopped_by_user`` is set by ``stack stop`` and cleared by ``start``/``up``.
V2 = """
ALTER TABLE stacks ADD COLUMN options TEXT NOT NULL DEFAULT '{}';   -- JSON object
"""

MIGRATIONS: tuple[str, ...] = (V1, V2)


def statements(script: str) -> Iterator[str]:
    """The statements of ``script`` one by one (a ``;`` inside a string literal or a trigger body
    does not end a statement: ``sqlite3.complete_statement`` decides)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            text = buf.strip()
            buf = ""
            if text.strip(";").strip():
                yield text
    rest = "\n".join(ln for ln in buf.splitlines() if not ln.strip().startswith("--")).strip()
    if rest:
        raise StoreError(f"migration script ends with an unfinished statement: {rest[:60]!r}")


def schema_version(conn: sqlite3.Connection) -> int:
    """The version recorded in the file (0 for a new, empty database)."""
    row = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
                       ).fetchone()
    if row is None:
        return 0
    found = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
    return int(found[0]) if found else 0


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the database of ``conn`` (autocommit mode) to ``len(migrations)``; the version it
    is at afterwards. All or nothing: on any failure the file keeps its old schema."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                     "id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
        current = schema_version(conn)
        if current > len(migrations):
            raise StoreError(f"the store has schema version {current}, newer than the {len(migrations)} "
                             "this stackd knows; run a newer stackd or move the database away")
        for number in range(current, len(migrations)):
            for statement in statements(migrations[number]):
                try:
                    conn.execute(statement)
                except sqlite3.Error as exc:
                    raise StoreError(f"migration to schema version {number + 1} failed: {exc}") from exc
        conn.execute("INSERT INTO schema_version (id, version) VALUES (1, ?) "
                     "ON CONFLICT (id) DO UPDATE SET version = excluded.version", (len(migrations),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(migrations)
