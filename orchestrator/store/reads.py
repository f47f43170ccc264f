"""The read side of a store: queries over the projection tables and the chain."""

from __future__ import annotations

import sqlite3
from typing import Any

from orchestrator.store.errors import StoreError


class StoreReads:
    """Reads shared by every store (``conn`` and ``path`` are the store's)."""

    conn: sqlite3.Connection
    path: str

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
            return self.query("SELECT * FROM runs WHERE status = ? ORDER BY created_wall, run_id", (status,))
        return self.query("SELECT * FROM runs ORDER BY created_wall, run_id")

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
