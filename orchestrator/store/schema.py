"""SQLite schema and its versioned migrations.

Each migration is a list of statements applied in one transaction; ``PRAGMA
user_version`` records how far a database has come. Never edit a released migration:
append a new one.
"""

from __future__ import annotations

from typing import Any

MIGRATIONS: list[list[str]] = [
    # 1: event journal with hash chain, and the projections the engine and reports read.
    [
        """CREATE TABLE events (
            seq        INTEGER PRIMARY KEY,
            run_id     TEXT,
            kind       TEXT NOT NULL,
            subject    TEXT,
            actor      TEXT NOT NULL,
            sim_time   REAL,
            wall_time  TEXT NOT NULL,
            payload    TEXT NOT NULL,
            prev_hash  TEXT NOT NULL,
            hash       TEXT NOT NULL
        )""",
        "CREATE INDEX events_run ON events(run_id, seq)",
        """CREATE TABLE runs (
            run_id        TEXT PRIMARY KEY,
            protocol      TEXT NOT NULL,
            version       TEXT NOT NULL,
            content_hash  TEXT NOT NULL,
            source        TEXT NOT NULL,
            parameters    TEXT NOT NULL,
            workcell      TEXT NOT NULL,
            seed          INTEGER NOT NULL,
            clock         TEXT NOT NULL,
            status        TEXT NOT NULL,
            operator      TEXT NOT NULL,
            created_wall  TEXT NOT NULL,
            origin        TEXT NOT NULL,
            sim_start     REAL,
            sim_end       REAL,
            campaign      TEXT,
            detail        TEXT
        )""",
        """CREATE TABLE steps (
            run_id         TEXT NOT NULL,
            key            TEXT NOT NULL,
            static_key     TEXT NOT NULL,
            kind           TEXT NOT NULL,
            status         TEXT NOT NULL,
            instrument     TEXT,
            action         TEXT,
            args           TEXT,
            attempt        INTEGER NOT NULL DEFAULT 0,
            idempotency    TEXT,
            recovery       TEXT,
            planned_start  REAL,
            start          REAL,
            end            REAL,
            result         TEXT,
            error          TEXT,
            seq            INTEGER NOT NULL,
            PRIMARY KEY (run_id, key)
        )""",
        """CREATE TABLE measurements (
            id        INTEGER PRIMARY KEY,
            run_id    TEXT NOT NULL,
            step_key  TEXT NOT NULL,
            name      TEXT NOT NULL,
            field     TEXT NOT NULL,
            value     REAL NOT NULL,
            unit      TEXT NOT NULL,
            sim_time  REAL NOT NULL
        )""",
        "CREATE INDEX measurements_run ON measurements(run_id, step_key)",
        """CREATE TABLE verdicts (
            id         INTEGER PRIMARY KEY,
            run_id     TEXT NOT NULL,
            step_key   TEXT NOT NULL,
            criterion  TEXT NOT NULL,
            value      REAL,
            passed     INTEGER NOT NULL,
            sim_time   REAL NOT NULL
        )""",
        """CREATE TABLE deviations (
            id        INTEGER PRIMARY KEY,
            run_id    TEXT NOT NULL,
            step_key  TEXT,
            kind      TEXT NOT NULL,
            detail    TEXT NOT NULL,
            sim_time  REAL NOT NULL
        )""",
        """CREATE TABLE locations (
            plate     TEXT PRIMARY KEY,
            run_id    TEXT,
            site      TEXT NOT NULL,
            sim_time  REAL NOT NULL
        )""",
    ],
    # 2: the chain head, updated with every append, so that deleting the newest events
    #    (which leaves a shorter but self-consistent chain) is detected.
    [
        "CREATE TABLE chain_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL)",
        "INSERT INTO chain_head(id, seq, hash) SELECT 1, COALESCE(MAX(seq), 0),"
        " COALESCE((SELECT hash FROM events ORDER BY seq DESC LIMIT 1), '" + "0" * 64 + "') FROM events",
        """CREATE TABLE operator_actions (
            id        INTEGER PRIMARY KEY,
            run_id    TEXT,
            step_key  TEXT,
            action    TEXT NOT NULL,
            operator  TEXT NOT NULL,
            reason    TEXT NOT NULL,
            wall_time TEXT NOT NULL,
            consumed  INTEGER NOT NULL DEFAULT 0
        )""",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


def expected_tables(version: int) -> dict[str, list[str]]:
    """Tables (name → column names) a database at schema ``version`` has."""
    if version not in _EXPECTED:
        import sqlite3

        conn = sqlite3.connect(":memory:")
        try:
            for migration in MIGRATIONS[:version]:
                for statement in migration:
                    conn.execute(statement)
            _EXPECTED[version] = _tables(conn)
        finally:
            conn.close()
    return _EXPECTED[version]


_EXPECTED: dict[int, dict[str, list[str]]] = {}


def _tables(conn: Any) -> dict[str, list[str]]:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()]
    return {n: [c[1] for c in conn.execute(f"PRAGMA table_info({n})").fetchall()] for n in names}


def schema_damage(conn: Any) -> list[tuple[str, str]]:
    """What the database's tables lack against the schema its ``user_version`` claims,
    as ``(kind, message)``: ``deleted`` (a dropped or renamed table) or ``modified``
    (changed columns, a reset version); empty when nothing is missing. Extra tables
    are not damage.

    Raises:
        sqlite3.DatabaseError: the file cannot be read.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    have = _tables(conn)
    if version == 0:
        return [("modified", "the schema version (PRAGMA user_version) is 0 although the database has cellwright "
                             "tables")] if "events" in have else []
    if version > SCHEMA_VERSION:
        return []  # a newer cellwright's database: the caller refuses it by version
    problems = []
    expected = expected_tables(version)
    for table in sorted(expected_tables(SCHEMA_VERSION).keys() - expected.keys()):
        if table in have:  # a later migration's table in an older database: the version was set back
            problems.append(("modified", f"the schema version (PRAGMA user_version) is {version}, but table "
                                         f"{table} of a later version is there: the version was changed"))
    for table, columns in expected.items():
        if table not in have:
            problems.append(("deleted", f"table {table} is missing (schema version {version} has it): dropped or "
                                        f"renamed"))
        elif have[table] != columns:
            problems.append(("modified", f"table {table} has columns ({', '.join(have[table])}) but schema "
                                         f"version {version} has ({', '.join(columns)})"))
    return problems
