"""Read-only access to a cellwright database for the audit: opening, tables, events."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from orchestrator.store.files import open_readonly
from orchestrator.store.sqlite import Store


class Event(NamedTuple):
    """One ``events`` row as stored (columns may hold anything after tampering)."""

    seq: int
    run_id: Any
    kind: Any
    subject: Any
    actor: Any
    sim_time: Any
    wall_time: Any
    payload: Any
    prev_hash: Any
    hash: Any


EVENT_COLS = "seq, run_id, kind, subject, actor, sim_time, wall_time, payload, prev_hash, hash"


@contextmanager
def connection(
    source: Store | str | os.PathLike[str] | sqlite3.Connection,
) -> Iterator[tuple[sqlite3.Connection, str | None]]:
    """``(connection, path or None)`` for a store, a connection or a file (opened read-only, closed after)."""
    if isinstance(source, Store):
        yield source.conn, (None if source.path == ":memory:" else source.path)
    elif isinstance(source, sqlite3.Connection):
        yield source, None
    else:
        conn = open_readonly(source)
        try:
            yield conn, os.path.realpath(source)  # its redo log is beside the file, not a symlink
        finally:
            conn.close()


def table_names(conn: sqlite3.Connection) -> set[str]:
    """Names of the tables in the database."""
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}


def table_rows(conn: sqlite3.Connection, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """``(column names, rows)`` of one of our tables."""
    cur = conn.execute(f"SELECT * FROM {table}")  # table names are ours, never input
    cols = [d[0] for d in cur.description]
    return cols, [tuple(r) for r in cur.fetchall()]
