"""SQLite schema and its versioned migrations.

Each migration is a list of statements applied in one transaction; ``PRAGMA
user_version`` records how far a database has come. Never edit a released migration:
append a new one.
"""

from __future__ import annotations

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
