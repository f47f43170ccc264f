"""Group commit for a running engine.

One database commit costs tens of microseconds even without an fsync (WAL frames,
locks), and a campaign writes thousands of intents. While the engine runs, its writes
therefore collect in one open transaction:

* before every instrument action (:meth:`CommitGroup.flush`) and whenever the event
  loop falls idle, the events written since the last such point are appended to the
  redo log with one ``write`` — from then on they survive a crash of the process, so an
  intent is durable before its driver is called;
* the transaction is committed when the loop is about to wait in real time, or every
  :data:`COMMIT_INTERVAL_S` of real time, and the redo log is emptied after each commit.

Another process that wants to write meanwhile (an operator's ``cellwright pause``)
knocks: it holds a shared lock on ``<database>-knock`` while it waits for the write lock,
and the engine, after each commit, waits until no one knocks (:func:`knocking`).

So a crash leaves, after replay of the redo log, exactly the events that were durable:
the state the database would have had, had the process died at that point without
grouping. In-memory databases commit at every flush instead. The redo log's lock also
makes the engine the only one on its database (:meth:`Store.claim`).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import structlog

from orchestrator.store.checkpoint import Checkpointer
from orchestrator.store.errors import StoreError

if TYPE_CHECKING:
    from orchestrator.store.redo import RedoLog
    from orchestrator.store.sqlite import Store

log = structlog.get_logger("cellwright.store")

COMMIT_INTERVAL_S = 0.05
"""Longest real time a durable write stays uncommitted while virtual time runs."""


@contextmanager
def knocking(db_path: str) -> Iterator[None]:
    """Hold a shared lock on ``<db_path>-knock`` while writing outside an engine, so an
    engine that groups its commits lets this writer in (see :meth:`CommitGroup.admit`)."""
    try:
        fd = os.open(db_path + "-knock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only directory: nobody can write anyway
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


class CommitGroup:
    """The open transaction of a running engine's store (see module doc)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.redo: RedoLog | None = None
        self.lines: list[str] = []
        self.is_open = False
        self.started = 0.0
        self.checkpointer: Checkpointer | None = None
        self.knock: int | None = None
        if store.path == ":memory:":
            return
        store.claim()  # one engine per database: raises StoreError when another runs
        self.redo = store.claimed
        store.conn.execute("PRAGMA wal_autocheckpoint=0")
        self.checkpointer = Checkpointer(store.path)
        try:
            self.knock = os.open(store.path + "-knock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            pass  # a read-only directory: the first write fails anyway

    # -- called by the store ---------------------------------------------------------
    def open(self) -> None:
        """Begin the group's transaction (the store's first write since a commit)."""
        try:
            self.store.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to {self.store.path}: {exc}") from None
        self.store._depth = 1
        self.is_open = True
        self.started = time.monotonic()

    def log(self, line: str) -> None:
        """Keep an event's redo record until the next flush."""
        self.lines.append(line)

    def mark(self) -> int:
        """Where a unit of writes begins (for :meth:`undo`)."""
        return len(self.lines)

    def undo(self, mark: int) -> None:
        """Forget the redo records of a unit that was rolled back."""
        del self.lines[mark:]

    # -- durability points -------------------------------------------------------------
    def flush(self) -> None:
        """Make what was written durable (an instrument action follows).

        Raises:
            StoreError: the redo log or the commit failed (the store is then broken).
        """
        if self.store._depth > 1:
            raise RuntimeError("flush inside a unit of writes: its intent would not be durable")
        if not self.is_open:
            return
        if self.redo is not None:
            self._write_redo()
        else:
            self._commit()

    def idle(self, real_wait: bool) -> None:
        """The loop has nothing ready: make writes durable; commit if the loop will wait in
        real time or the transaction is :data:`COMMIT_INTERVAL_S` old."""
        if not self.is_open or self.store._depth != 1:
            return
        try:
            if self.redo is not None:
                self._write_redo()
            if self.redo is None or real_wait or time.monotonic() - self.started >= COMMIT_INTERVAL_S:
                self._commit()
        except StoreError:
            pass  # recorded in store.broken: the next write or flush raises it where a run can stop

    def end(self) -> None:
        """Commit what is open and release the redo log and the checkpointer.

        Raises:
            StoreError: the final commit failed.
        """
        try:
            if self.is_open and self.store.broken is None:
                if self.redo is not None:
                    self._write_redo()
                self._commit()
        finally:
            if self.checkpointer is not None:
                self.checkpointer.stop()
                try:
                    self.store.conn.execute("PRAGMA wal_autocheckpoint=1000")
                except sqlite3.Error:
                    pass
            if self.knock is not None:
                os.close(self.knock)
                self.knock = None

    # -- internals -----------------------------------------------------------------------
    def _write_redo(self) -> None:
        assert self.redo is not None
        if self.lines:
            try:
                self.redo.append(self.lines)
            except OSError as exc:
                self._fail(f"cannot write the redo log {self.redo.path}: {exc}")
            self.lines = []
        self.store.durable()

    def _commit(self) -> None:
        try:
            self.store.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._fail(f"cannot write to {self.store.path}: {exc}")
        self.is_open = False
        self.store._depth = 0
        self.lines = []
        if self.redo is not None:
            try:
                self.redo.clear()
            except OSError as exc:  # harmless: a replay skips events the database already holds
                log.warning("cannot empty the redo log", path=self.redo.path, error=str(exc))
        self.store.durable()
        self.admit()

    def admit(self) -> None:
        """Between two transactions: if another process knocks, wait (in real time) until
        it has written; otherwise return at once."""
        if self.knock is None:
            return
        try:
            fcntl.flock(self.knock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(self.knock, fcntl.LOCK_EX)  # the knocking writer finishes first
        except OSError:
            return
        fcntl.flock(self.knock, fcntl.LOCK_UN)

    def _fail(self, why: str) -> None:
        """Stop writing: roll back what is not durable and raise for whoever can stop a run."""
        store = self.store
        if store.claimed is not None:  # let the next writer replay what was durable (we write no more)
            store.claimed.close()
            store.claimed = None
            self.redo = None
        store.broken = f"{why} (what was durable is kept: replayed from the redo log when the database is next opened)"
        try:
            store.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        self.is_open = False
        store._depth = 0
        store._head = None
        store._pending = []
        self.lines = []
        log.error("storage fault", db=store.path, error=why)
        raise StoreError(store.broken)
