"""Background WAL checkpoints for a database the engine writes to at a high rate.

SQLite's automatic checkpoint copies the write-ahead log back into the database file
inside whichever commit crosses the threshold, so one commit in a few hundred stalls
for milliseconds. While the engine runs, :class:`Checkpointer` does that copy from a
thread with its own connection instead (a ``PASSIVE`` checkpoint never blocks the
writer), and a ``RESTART`` checkpoint keeps the log from growing past ``limit_bytes``.
"""

from __future__ import annotations

import os
import sqlite3
import threading

import structlog

log = structlog.get_logger("cellwright.store")


class Checkpointer:
    """Checkpoints ``path`` every ``interval_s`` real seconds until :meth:`stop`.

    Args:
        path: the database file (WAL mode).
        interval_s: real seconds between checkpoints.
        limit_bytes: log size above which the checkpoint also restarts the log.
    """

    def __init__(self, path: str, interval_s: float = 0.2, limit_bytes: int = 64 << 20) -> None:
        self.path = path
        self.interval_s = interval_s
        self.limit_bytes = limit_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cellwright-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
        except sqlite3.Error as exc:
            log.warning("no background checkpoints", db=self.path, error=str(exc))
            return
        try:
            while not self._stop.wait(self.interval_s):
                self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            size = os.path.getsize(self.path + "-wal")
        except OSError:
            return
        mode = "RESTART" if size > self.limit_bytes else "PASSIVE"
        try:
            conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        except sqlite3.Error as exc:  # the writer meets the same fault and stops its runs
            log.warning("checkpoint failed", db=self.path, error=str(exc))

    def stop(self) -> None:
        """Stop the thread and wait for it (idempotent)."""
        self._stop.set()
        self._thread.join()
