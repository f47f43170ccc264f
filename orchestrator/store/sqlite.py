"""The embedded store: one SQLite file in WAL mode.

Every write appends an event to the SHA-256 hash chain and applies its change to the
projection tables (runs, steps, measurements ...) that the engine and reports read, in
one unit: both or neither. The chain is the record; the tables are a function of it
(:mod:`orchestrator.store.projector`).

Outside a running engine each write is its own transaction. A running engine groups
them (:mod:`orchestrator.store.grouping`): writes collect in one transaction, are made
durable through the redo log before every instrument action, and are committed every
few tens of milliseconds.

Durability: ``full`` (``synchronous=FULL`` and an fsync of the redo log: an
acknowledged write survives a power cut; the default for wall-clock runs on hardware)
or ``normal`` (survives a crash of the process, not of the machine; the default for
virtual-time runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orchestrator.store import redo, sessions
from orchestrator.store.canonical import canonical
from orchestrator.store.crash import crash_point
from orchestrator.store.errors import StoreError
from orchestrator.store.files import open_readonly
from orchestrator.store.grouping import CommitGroup, knocking
from orchestrator.store.projector import apply_event
from orchestrator.store.reads import StoreReads
from orchestrator.store.schema import MIGRATIONS, SCHEMA_VERSION, schema_damage

GENESIS = "0" * 64


def event_hash(prev_hash: str, seq: int, run_id: str | None, kind: str, subject: str | None, actor: str,
               sim_time: float | None, wall_time: str, payload: str) -> str:
    """SHA-256 (hex) of one event chained to the previous event's hash."""
    body = canonical([prev_hash, seq, run_id, kind, subject, actor, sim_time, wall_time, payload])
    return hashlib.sha256(body.encode()).hexdigest()


class Store(StoreReads):
    """SQLite journal and projections.

    Args:
        path: database file, or ``":memory:"``.
        durability: ``full`` or ``normal`` (see module doc).
        readonly: open an existing file for reading only (nothing is written or created,
            works on a read-only file system; a crashed engine's redo log is not replayed);
            every write raises :class:`StoreError`.

    Raises:
        StoreError: the file cannot be opened, is not a cellwright database, was written
            by a newer version, is damaged, or its redo log cannot be replayed.
    """

    def __init__(self, path: str | Path, durability: str = "normal", *, readonly: bool = False) -> None:
        # the file itself, not a symlink to it: its redo log and side files are beside it
        self.path = str(path) if str(path) == ":memory:" else os.path.realpath(path)
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.durability = durability
        self._depth = 0
        self._head: tuple[int, str] | None = None
        self._pending: list[tuple[str, str | None]] = []
        """(kind, subject) of events written but not yet durable: their crash points."""
        self.group: CommitGroup | None = None
        self.broken: str | None = None
        """Why writing stopped (a failed commit or redo write), or None."""
        self.recovered = 0
        """Events replayed from a crashed engine's redo log when this store opened."""
        self.claimed: redo.RedoLog | None = None
        """The locked redo log while this store is an engine's (see :meth:`claim`)."""
        try:
            if readonly:
                self.conn = open_readonly(self.path)
                self.conn.row_factory = sqlite3.Row
                self.broken = f"{self.path} is open for reading only"
                self._refuse_foreign()
                if self.conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                    raise StoreError(f"{self.path} is not a cellwright database (no cellwright schema version)")
                self._refuse_damaged()
                self._migrate()  # only checks the version: a read-only store never migrates
                return
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
            self.conn.row_factory = sqlite3.Row
            self._refuse_foreign()
            self.conn.execute("PRAGMA page_size=1024")  # new files: small WAL frames per commit
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA cache_size=-32768")  # 32 MiB: a campaign's hot pages stay in memory
            self._refuse_damaged()  # before a migration could build over the damage
            self._migrate()
            if self.path != ":memory:":
                self._recover()
        except sqlite3.DatabaseError as exc:
            self._abandon()
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        except BaseException:
            self._abandon()
            raise

    def _refuse_damaged(self) -> None:
        damage = schema_damage(self.conn)
        if damage:
            raise StoreError(f"{self.path} is damaged: {'; '.join(m for _, m in damage)} (`cellwright audit verify "
                             f"--db {self.path}` checks the rest); nothing was written")

    def _abandon(self) -> None:
        """Close the connection of a store that failed to open."""
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()

    # -- schema ------------------------------------------------------------------
    def _refuse_foreign(self) -> None:
        """Before anything is set or written: a database with tables but no cellwright
        schema version, or without an ``events`` table, belongs to something else."""
        tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and ("events" not in tables or self.conn.execute("PRAGMA user_version").fetchone()[0] == 0):
            raise StoreError(f"{self.path} is not a cellwright database (it has tables but no cellwright journal "
                             f"or schema version); nothing was written")

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}; this cellwright knows up to {SCHEMA_VERSION}: upgrade cellwright"
            )
        for number in range(version, SCHEMA_VERSION):
            if self.broken is not None:
                raise StoreError(f"{self.path} has schema version {version}; open it for writing once to migrate it")
            with self._transaction():
                for statement in MIGRATIONS[number]:
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={number + 1}")

    # -- recovery ------------------------------------------------------------------
    @property
    def redo_path(self) -> str:
        """The redo log beside the database (see :mod:`orchestrator.store.redo`)."""
        return self.path + "-redo"

    def _recover(self) -> None:
        """At open: replay a crashed engine's redo log into the database, then empty it.

        Raises:
            StoreError: a whole record does not continue the chain (nothing is changed).
        """
        if not self._redo_waiting():
            return
        try:
            redo.RedoLog(self.redo_path).close()  # is its engine gone?
        except OSError:
            return  # a live engine's: nothing to recover (and its write lock would keep us waiting)
        with self._transaction():  # adopts the log (see _adopt_orphan_log)
            pass

    def _redo_waiting(self) -> bool:
        try:
            return os.path.getsize(self.redo_path) > 0
        except OSError:
            return False

    def _adopt_orphan_log(self) -> redo.RedoLog | None:
        """Inside a write transaction of a store that is not an engine: replay a redo log
        whose engine is gone (its lock is free), so no write ever forks the chain from
        events that were durable. A live engine's log is left alone: while we hold the
        write lock it holds only events it has committed.

        Returns:
            The adopted log, still locked: the caller empties it once the transaction has
            committed, and closes it in any case.
        """
        if self.path == ":memory:" or self.claimed is not None or not self._redo_waiting():
            return None
        try:
            log = redo.RedoLog(self.redo_path)
        except OSError:
            return None
        try:
            self._replay(log)
        except BaseException:
            log.close()
            raise
        return log

    def _replay(self, log: redo.RedoLog) -> None:
        """Apply ``log``'s events the database lacks, inside the current write transaction.
        The caller empties the log only after that transaction has committed: a commit that
        fails (disk full) must leave the events where they are.

        Raises:
            StoreError: a whole record contradicts the chain (edited, corrupt, or the
                database and the log have parted); the transaction is then rolled back.
        """
        try:
            events, torn = redo.read(log.path)
            row = self.conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
            seq, prev = row["seq"], row["hash"]
            todo = [e for e in events if e.seq > seq]
            for e in events[:len(events) - len(todo)]:  # already committed: must be the same events
                have = self.conn.execute("SELECT hash FROM events WHERE seq = ?", (e.seq,)).fetchone()
                if have is None or have["hash"] != e.hash:
                    raise redo.RedoLogDamaged(f"{log.path}: event seq {e.seq} ({e.kind}) differs from the "
                                              f"database's record at that seq (the log and the database parted)")
            for e in todo:
                digest = event_hash(prev, seq + 1, e.run_id, e.kind, e.subject, e.actor, e.sim_time, e.wall_time,
                                    e.payload)
                if e.seq != seq + 1 or e.prev_hash != prev or e.hash != digest:
                    raise redo.RedoLogDamaged(f"{log.path}: the record of event seq {e.seq} ({e.kind}) does "
                                              f"not continue the chain at seq {seq} (edited or corrupt)")
                seq, prev = e.seq, digest
        except redo.RedoLogDamaged as exc:
            raise StoreError(f"cannot recover {self.path}: {exc}; the database was not changed. Move the file "
                             f"aside to open the database without those events") from None
        for e in todo:
            self._insert(e.seq, e.run_id, e.kind, e.subject, e.actor, e.sim_time, e.wall_time,
                         e.payload, json.loads(e.payload), e.prev_hash, e.hash)
        self._head = None
        # The recovery itself is part of the record, and ends the dead engine's session
        # (see orchestrator.store.sessions): its log may be emptied and removed from now on.
        self.append("journal.recovered", {"events": len(todo), "from_seq": todo[0].seq if todo else None,
                                          "torn_bytes": torn, "log": log.path}, actor="cellwright")
        self.recovered += len(todo)

    # -- units of writes -------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One unit of writes: all of it is written, or none of it.

        Outside a commit group a unit is its own transaction. Inside an open group it is a
        savepoint, so a failed unit undoes only itself. Nested units join their parent.
        """
        if self.broken is not None:
            raise StoreError(self.broken)
        if not self._depth and self.group is not None:
            self.group.open()
        if self._depth:
            savepoint = self._depth == 1 and self.group is not None
            head, pending = self._head, len(self._pending)
            logged = self.group.mark() if savepoint and self.group is not None else 0
            if savepoint:
                self.conn.execute("SAVEPOINT unit")
            self._depth += 1
            try:
                yield
            except BaseException:
                if savepoint and self.group is not None:
                    self.conn.execute("ROLLBACK TO unit")
                    self.conn.execute("RELEASE unit")
                    self._head = head
                    del self._pending[pending:]
                    self.group.undo(logged)
                raise
            else:
                if savepoint:
                    self.conn.execute("RELEASE unit")
            finally:
                self._depth -= 1
            return
        with contextlib.ExitStack() as knock:
            if self.path != ":memory:":
                knock.enter_context(knocking(self.path))  # an engine grouping its commits lets us in
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            adopted: redo.RedoLog | None = None
            try:
                adopted = self._adopt_orphan_log()
                yield
                self.conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            else:
                if adopted is not None:
                    _empty(adopted)  # only now: its events are in the database
                self.durable()
            finally:
                self._depth = 0
                if adopted is not None:
                    adopted.close()

    def _rollback(self) -> None:
        """Undo the open transaction (also after a COMMIT that failed, e.g. disk full)."""
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self._head = None
        self._pending = []

    def durable(self) -> None:
        """Note that every event written so far survives a crash (fires crash points)."""
        pending, self._pending = self._pending, []
        for kind, subject in pending:
            crash_point("after", kind, subject)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Group several appends into one unit: all of them are written, or none.

        Raises:
            StoreError: the unit could not be written.
        """
        try:
            with self._transaction():
                yield
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to {self.path}: {exc}") from None

    # -- engine ownership ----------------------------------------------------------------
    def claim(self) -> None:
        """Make this store the only engine on its database until it is closed (an
        exclusive lock on the redo log; a no-op for ``:memory:`` or when claimed already).

        Raises:
            StoreError: another process runs an engine on this database.
        """
        if self.path == ":memory:" or self.claimed is not None:
            return
        if self.broken is not None:
            raise StoreError(self.broken)
        lost = sessions.lost_redo_log(self.conn, self.redo_path)
        if lost is not None:
            raise StoreError(f"{lost[1]}. Check the plates of the unfinished runs (`cellwright status`), then "
                             f"accept the loss: `cellwright audit accept-loss --operator NAME --reason TEXT`")
        try:
            log = redo.RedoLog(self.redo_path, sync=self.durability == "full")
        except BlockingIOError:
            raise self.busy_error() from None
        except OSError as exc:
            raise StoreError(f"cannot lock {self.redo_path}: {exc}") from None
        if self._redo_waiting():  # an engine died since this store opened: its events first
            try:
                with self._transaction():
                    self._replay(log)
                _empty(log)  # committed: the events are in the database
            except BaseException:
                log.close()
                raise
        self.claimed = log
        self.append(sessions.STARTED, sessions.started_payload(), actor="cellwright")

    def busy_error(self) -> StoreError:
        """The error for a database another engine holds (see :meth:`claim`)."""
        return StoreError(f"another cellwright engine is running on {self.path}: wait for it to finish "
                          f"(`cellwright status`), or use another --db")

    def set_durability(self, durability: str) -> None:
        """Switch between ``normal`` and ``full`` (see module doc) before an engine starts."""
        if durability not in ("full", "normal"):
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.durability = durability
        self.conn.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        if self.claimed is not None:
            self.claimed.sync = durability == "full"

    # -- commit groups ---------------------------------------------------------------
    def group_commits(self, on: bool) -> None:
        """Start or end group commit (see :class:`~orchestrator.store.grouping.CommitGroup`).

        While on, the owner calls :meth:`flush` before every instrument action and
        :meth:`on_idle` whenever its event loop falls idle. Ending it commits.

        Raises:
            StoreError: the final commit failed.
        """
        if on and self.group is None:
            self.group = CommitGroup(self)
        elif not on and self.group is not None:
            group, self.group = self.group, None
            group.end()

    def flush(self) -> None:
        """Make every event written so far durable before an instrument action.

        Raises:
            StoreError: the write failed; every later write raises too, so no run acts
                on an unrecorded outcome. Resume once the storage is fixed.
        """
        if self.broken is not None:
            raise StoreError(self.broken)
        if self.group is not None:
            self.group.flush()

    def on_idle(self, real_wait: bool) -> None:
        """The event loop has nothing ready: make writes durable, commit when due."""
        if self.group is not None and self.broken is None:
            self.group.idle(real_wait)

    def close(self) -> None:
        """Commit an open group and close the connection (idempotent)."""
        try:
            self.group_commits(False)
        except (StoreError, sqlite3.Error):
            pass  # already reported to the writer that could act on it
        if self.claimed is not None:
            if self.broken is None and self.group is None and self._stopped():
                self.claimed.remove_if_empty()  # everything is committed: leave no empty log behind
            self.claimed.close()
            self.claimed = None
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    def _stopped(self) -> bool:
        """Record a clean end of this engine session (see :mod:`orchestrator.store.sessions`)."""
        try:
            self.append(sessions.STOPPED, {}, actor="cellwright")
        except StoreError:
            return False
        return True

    @property
    def head(self) -> str:
        """Hash of the newest event (the chain head)."""
        row = self.conn.execute("SELECT hash FROM chain_head WHERE id = 1").fetchone()
        return str(row["hash"]) if row else GENESIS

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
    ) -> int:
        """Append one event to the chain and apply its projection, as one unit.

        Returns:
            The event's sequence number.
        Raises:
            StoreError: the write failed (disk full, read-only file, a payload its
                projection cannot take ...); nothing was written.
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
                self._insert(seq, run_id, kind, subject, actor, sim_time, wall, body, payload, prev, digest,
                             head_moved=True)
                if self.group is not None and self.group.redo is not None:
                    self.group.log(redo.encode(seq, run_id, kind, subject, actor, sim_time, wall, prev, digest, body))
                crash_point("before", kind, subject)
        except sqlite3.Error as exc:
            self._head = None
            raise StoreError(f"cannot write to {self.path}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            self._head = None
            raise StoreError(f"event {kind} cannot be recorded: {type(exc).__name__}: {exc}") from None
        except BaseException:
            self._head = None
            raise
        self._head = (seq, digest)
        self._pending.append((kind, subject))
        if not self._depth:
            self.durable()
        return seq

    def _insert(self, seq: int, run_id: str | None, kind: str, subject: str | None, actor: str,
                sim_time: float | None, wall: str, body: str, payload: Mapping[str, Any], prev: str, digest: str,
                *, head_moved: bool = False) -> None:
        """Insert one event row and apply its projection (inside a unit)."""
        if not head_moved:
            self.conn.execute("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))
        self.conn.execute(
            "INSERT INTO events(seq, run_id, kind, subject, actor, sim_time, wall_time, payload, prev_hash, hash)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (seq, run_id, kind, subject, actor, sim_time, wall, body, prev, digest),
        )
        apply_event(self.conn, seq, run_id, kind, subject, actor, sim_time, wall, payload)


def _empty(log: redo.RedoLog) -> None:
    """Empty a replayed log; failing is harmless (a replay skips what the database holds)."""
    try:
        log.clear()
    except OSError:
        pass
