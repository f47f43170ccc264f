"""Engine sessions in the record, so that a deleted redo log is noticed.

An engine writes ``engine.started`` once it holds the redo log (``Store.claim``) and
``engine.stopped`` when it closes cleanly (then the log is removed); a process that takes
over a dead engine's log writes ``journal.recovered``, which ends that session too. The log exists for
the whole session, and only a clean stop removes it, so a last session that never stopped
and has no log file lost the log to someone deleting it — with the events it held since
the last commit. Writing an engine is then refused until a person accepts the loss
(``journal.loss.accepted``, with identity and reason) after checking the plates.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from typing import Any

STARTED = "engine.started"
STOPPED = "engine.stopped"
LOSS_ACCEPTED = "journal.loss.accepted"
RECOVERED = "journal.recovered"
"""Written when another process took over a dead engine's log: that session is over."""


def started_payload() -> dict[str, Any]:
    """What identifies an engine session: process and host."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def lost_redo_log(conn: sqlite3.Connection, redo_path: str) -> tuple[int, str] | None:
    """``(seq, message)`` when the last engine session never stopped and its redo log is
    gone; None otherwise (also for a live engine: its log exists).

    Raises:
        sqlite3.Error: the events cannot be read.
    """
    row = conn.execute("SELECT seq, wall_time, kind FROM events WHERE kind IN (?, ?, ?, ?) ORDER BY seq DESC"
                       " LIMIT 1", (STARTED, STOPPED, LOSS_ACCEPTED, RECOVERED)).fetchone()
    if row is None or row[2] != STARTED or os.path.exists(redo_path):
        return None
    seq, wall_time = row[0], row[1]
    return seq, (f"the redo log {redo_path} of the engine that started at event seq {seq} ({wall_time}) is missing "
                 f"although that engine never recorded a clean stop: the log was deleted, and with it the events "
                 f"the engine had not committed yet (or the newest events, its engine.stopped among them, were), "
                 f"so a step may have happened without a record")


def accepted_losses(conn: sqlite3.Connection) -> list[str]:
    """One line per accepted loss, for the audit's notes."""
    return [f"event seq {seq}: {actor} accepted the loss of a deleted redo log ({wall}): {payload}"
            for seq, actor, wall, payload in conn.execute(
                "SELECT seq, actor, wall_time, payload FROM events WHERE kind = ? ORDER BY seq", (LOSS_ACCEPTED,))]
