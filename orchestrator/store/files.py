"""Opening a database file for reading only (audit, reports, status)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from orchestrator.store.errors import StoreError


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open a database file for reading only; nothing is ever written to it.

    A database without a ``-wal`` file (closed cleanly) is opened ``immutable`` so not
    even the ``-wal``/``-shm`` side files are created; one with a ``-wal`` (in use, or
    not closed cleanly) is opened ``mode=ro`` so the log's committed content is read.

    Raises:
        StoreError: the file does not exist or cannot be opened.
    """
    p = Path(os.path.realpath(path))  # a symlink's target: its -wal is beside it
    if not p.is_file():
        raise StoreError(f"cannot open database {p}: no such file")
    uri = p.resolve().as_uri()
    live = Path(str(p) + "-wal").exists()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro" if live else f"{uri}?mode=ro&immutable=1", uri=True,
                               check_same_thread=False)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open database {p}: {exc}") from None
    return conn
