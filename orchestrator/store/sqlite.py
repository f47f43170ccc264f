"""The embedded store: one SQLite file in WAL mode.

Every write is one transaction that appends an event to the SHA-256 hash chain and
updates the projection tables (runs, steps, measurements ...) the engine and reports
read. The chain is the record; projections can be rebuilt from it.

Durability: ``full`` (``synchronous=FULL``: an acknowledged write survives a power cut;
the default for wall-clock runs on hardware) or ``normal`` (survives a crash of the
process, not of the machine; the default for virtual-time runs).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from drivers.errors import CellwrightError
from orchestrator.store.schema import MIGRATIONS, SCHEMA_VERSION

GENESIS = "0" * 64


class StoreError(CellwrightError):
    """The database cannot be opened or written (disk full, read-only, corrupt)."""


def canonical(obj: Any) -> str:
    """Deterministic JSON used for payloads and hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, seq: int, run_id: str | None, kind: str, subject: str | None, actor: str,
               sim_time: float | None, wall_time: str, payload: str) -> str:
    """SHA-256 (hex) of one event chained to the previous event's hash."""
    body = canonical([prev_hash, seq, run_id, kind, subject, actor, sim_time, wall_time, payload])
    return hashlib.sha256(body.encode()).hexdigest()


Projection = Callable[[sqlite3.Connection], None]

_CRASH_COUNTS: dict[str, int] = {}


def _crash_point(when: str, kind: str, subject: str | None) -> None:
    """Fault injection for crash tests: ``CELLWRIGHT_CRASH_AFTER=step.running:3`` kills the
    process (exit 137, like kill -9) right after the 3rd ``step.running`` event commits;
    ``CELLWRIGHT_CRASH_BEFORE=measurement:2`` kills it inside the 2nd ``measurement``
    write, before its commit; ``step.running@feed:1`` counts only events whose subject
    contains ``feed``. Unset in normal use."""
    spec = os.environ.get(f"CELLWRIGHT_CRASH_{when.upper()}")
    if not spec:
        return
    target, _, count = spec.rpartition(":")
    target, _, contains = target.partition("@")
    if target != kind or (contains and contains not in (subject or "")):
        return
    key = f"{when}:{kind}"
    _CRASH_COUNTS[key] = _CRASH_COUNTS.get(key, 0) + 1
    if _CRASH_COUNTS[key] == int(count):
        os._exit(137)


class Store:
    """SQLite journal and projections.

    Args:
        path: database file, or ``":memory:"``.
        durability: ``full`` or ``normal`` (see module doc).

    Raises:
        StoreError: the file cannot be opened, is not a cellwright database, or was
            written by a newer version.
    """

    def __init__(self, path: str | Path, durability: str = "normal") -> None:
        self.path = str(path)
        self._depth = 0
        self._head: tuple[int, str] | None = None
        self._committed: list[tuple[str, str | None]] = []
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA page_size=1024")  # new files: small WAL frames per commit
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        self._pending_seq = 0

    # -- schema ------------------------------------------------------------------
    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}; this cellwright knows up to {SCHEMA_VERSION}: upgrade cellwright"
            )
        for number in range(version, SCHEMA_VERSION):
            with self._transaction():
                for statement in MIGRATIONS[number]:
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={number + 1}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self._depth:  # inside atomic(): one outer transaction
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._head = None
            raise
        else:
            self.conn.execute("COMMIT")
            committed, self._committed = self._committed, []
            for kind, subject in committed:
                _crash_point("after", kind, subject)
        finally:
            self._depth = 0
            self._committed = []

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Group several appends into one transaction: all of them are written, or none.

        Raises:
            StoreError: the transaction could not be written.
        """
        try:
            with self._transaction():
                yield
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to {self.path}: {exc}") from None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    @property
    def head(self) -> str:
        """Hash of the newest event (the chain head)."""
        row = self.conn.execute("SELECT hash FROM chain_head WHERE id = 1").fetchone()
        return str(row["hash"]) if row else GENESIS

    @property
    def pending_seq(self) -> int:
        """Sequence number of the event being written (valid inside a projection)."""
        return self._pending_seq

    # -- the one write path ------------------------------------------------------
    def append(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        actor: str,
        run_id: str | None = None,
        subject: str | None = None,
        sim_time: float | None = None,
        project: Projection | None = None,
    ) -> int:
        """Append one event to the chain and apply its projection, atomically.

        Returns:
            The event's sequence number.
        Raises:
            StoreError: the write failed (disk full, read-only file ...); nothing was
                written.
        """
        body = canonical(payload)
        try:
            with self._transaction():
                wall = datetime.now(timezone.utc).isoformat(timespec="microseconds")
                # Compare-and-swap on the chain head, inside the write lock: another process
                # (an operator's `cellwright pause`) may have appended since our last write.
                while True:
                    if self._head is None:
                        row = self.conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
                        self._head = (row["seq"], row["hash"])
                    prev_seq, prev = self._head
                    seq = prev_seq + 1
                    digest = event_hash(prev, seq, run_id, kind, subject, actor, sim_time, wall, body)
                    moved = self.conn.execute("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1 AND seq = ?",
                                              (seq, digest, prev_seq)).rowcount
                    if moved:
                        break
                    self._head = None
                self.conn.execute(
                    "INSERT INTO events(seq, run_id, kind, subject, actor, sim_time, wall_time, payload, prev_hash, hash)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (seq, run_id, kind, subject, actor, sim_time, wall, body, prev, digest),
                )
                self._pending_seq = seq
                if project is not None:
                    project(self.conn)
                _crash_point("before", kind, subject)
        except sqlite3.Error as exc:
            self._head = None
            raise StoreError(f"cannot write to {self.path}: {exc}") from None
        except BaseException:
            self._head = None
            raise
        self._head = (seq, digest)
        if self._depth:
            self._committed.append((kind, subject))  # its crash point fires after the outer commit
        else:
            _crash_point("after", kind, subject)
        return self._pending_seq

    # -- reads -------------------------------------------------------------------
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query as dicts."""
        try:
            return [dict(r) for r in self.conn.execute(sql, params).fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The run's row, or None."""
        rows = self.query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def runs(self, status: str | None = None) -> list[dict[str, Any]]:
        """All runs (optionally with one status), oldest first."""
        if status:
            return self.query("SELECT * FROM runs WHERE status = ? ORDER BY created_wall", (status,))
        return self.query("SELECT * FROM runs ORDER BY created_wall")

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        """The run's steps in the order they were first recorded."""
        return self.query("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", (run_id,))

    def measurements(self, run_id: str) -> list[dict[str, Any]]:
        """The run's measurements in time order."""
        return self.query("SELECT * FROM measurements WHERE run_id = ? ORDER BY sim_time, id", (run_id,))

    def verdicts(self, run_id: str) -> list[dict[str, Any]]:
        """The run's QC verdicts."""
        return self.query("SELECT * FROM verdicts WHERE run_id = ? ORDER BY id", (run_id,))

    def deviations(self, run_id: str) -> list[dict[str, Any]]:
        """The run's deviations."""
        return self.query("SELECT * FROM deviations WHERE run_id = ? ORDER BY id", (run_id,))

    def events(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Events of the chain (all, or one run's), in order."""
        if run_id is None:
            return self.query("SELECT * FROM events ORDER BY seq")
        return self.query("SELECT * FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
