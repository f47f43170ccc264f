"""Verification of the audit trail: the hash chain, its head and the projections.

:func:`verify` reads a cellwright database **read-only** and checks:

1. every event's hash: SHA-256 over ``[prev_hash, seq, run_id, kind, subject, actor,
   sim_time, wall_time, payload]`` (see :func:`orchestrator.store.sqlite.event_hash`);
2. that sequence numbers are contiguous from 1 and every ``prev_hash`` is the hash of
   the event before it;
3. the chain end against the ``chain_head`` table (written in the same transaction as
   every event), which catches deletion of the newest events and records appended
   after the last genuine write;
4. optionally the head against an externally kept hash (``expect_head``), the only
   defence against an attacker who rewrites the whole chain *and* ``chain_head``
   consistently;
5. the projection tables (runs, steps, measurements, verdicts, deviations, locations,
   operator_actions) against a replay of the events through the same
   :class:`~orchestrator.store.journal.Journal` code that wrote them, into an in-memory
   store, so an edit of a table row that leaves the events alone is found and named
   (table, row, column).

The *first* broken record is classified precisely:

``modified``
    the record's content no longer matches its hash (or it was re-hashed and no longer
    matches the ``prev_hash`` its successor recorded);
``deleted``
    a sequence number is missing, or the records after it were renumbered;
``inserted``
    a record whose hash does not fit between its neighbours (its successor links past
    it), or records after the recorded chain head;
``reordered``
    a record holds the content (and hash) of another position: records swapped or moved;
``truncated``
    the newest events are missing (the chain ends before the recorded chain head);
``projection-mismatch``
    a projection row differs from what the events say, has no event, or is missing.

Problems after the first are reported on a best-effort basis (the scan resynchronises
after each one), capped at :data:`MAX_PROBLEMS` per section.
"""

from __future__ import annotations

import os
import sqlite3

from orchestrator.store.audit.chain import Chain, check_expected_head
from orchestrator.store.audit.projections import compare_projections
from orchestrator.store.audit.readonly import EVENT_COLS, Event, connection, open_readonly, table_names
from orchestrator.store.audit.report import MAX_PROBLEMS, PROBLEM_KINDS, AuditProblem, AuditReport
from orchestrator.store import redo, sessions
from orchestrator.store.schema import SCHEMA_VERSION, schema_damage
from orchestrator.store.sqlite import GENESIS, Store, StoreError

__all__ = ["MAX_PROBLEMS", "PROBLEM_KINDS", "AuditProblem", "AuditReport", "open_readonly", "verify"]


def verify(store_or_path: Store | str | os.PathLike[str] | sqlite3.Connection,
           expect_head: str | None = None, *, projections: bool = True) -> AuditReport:
    """Check a database's audit trail without modifying it.

    Args:
        store_or_path: a database file (opened read-only), an open :class:`Store`, or
            a ``sqlite3`` connection (only read from).
        expect_head: a head hash kept outside the database (``HASH`` or ``SEQ:HASH``);
            a chain whose records do not include it was rewritten. A hash of an earlier
            record is accepted (with a note): events may have been appended since.
        projections: also compare the projection tables with a replay of the events.

    Returns:
        The report; ``ok`` is false when any problem was found.

    Raises:
        StoreError: the file does not exist, cannot be opened, or is not a cellwright
            database (no ``events`` table).
    """
    with connection(store_or_path) as (conn, path):
        try:
            tables = table_names(conn)
            if "events" not in tables:
                raise StoreError(f"{path or 'database'} is not a cellwright database (no events table)")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{path or 'database'} has schema version {version}; this cellwright knows up to "
                                 f"{SCHEMA_VERSION}: upgrade cellwright to verify it")
            damaged = [AuditProblem(None, kind, message) for kind, message in schema_damage(conn)]
            rows = [Event(*r) for r in conn.execute(f"SELECT {EVENT_COLS} FROM events ORDER BY seq").fetchall()]
            recorded: tuple[int, str] | None = None
            head_row_missing = False
            if "chain_head" in tables:
                hr = conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
                recorded = (int(hr[0]), str(hr[1])) if hr else None
                head_row_missing = hr is None
            notes: list[str] = []
            chain = Chain(rows, recorded)
            chain.scan()
            if head_row_missing:
                chain.add(None, "modified", "the chain_head row is missing (it is written with every event): it was "
                                            "deleted, so deletion of the newest events cannot be ruled out")
            else:
                chain.check_end(notes)
            if expect_head:
                check_expected_head(chain, expect_head, notes)
            if chain.truncated_listing:
                notes.append(f"more than {MAX_PROBLEMS} chain problems: the rest are not listed")
            problems = damaged + sorted(chain.problems, key=lambda p: (p.seq is None, p.seq or 0))
            if projections:
                problems += compare_projections(conn, rows, notes)
            _note_redo_log(path, notes)
            if path and rows:
                lost = sessions.lost_redo_log(conn, path + "-redo")
                if lost is not None:
                    problems.append(AuditProblem(lost[0], "deleted", lost[1]))
                notes.extend(sessions.accepted_losses(conn))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read {path or 'database'}: {exc}") from None
    last = rows[-1] if rows else None
    return AuditReport(ok=not problems, events=len(rows), head=str(last.hash) if last else GENESIS,
                       problems=problems, head_seq=last.seq if last else 0, recorded_head=recorded, path=path,
                       notes=notes)


def _note_redo_log(path: str | None, notes: list[str]) -> None:
    """Say so when a crashed (or running) engine's redo log holds events the database does not
    have yet: they are checked and applied when the database is next opened for writing."""
    if not path or not os.path.exists(path + "-redo") or os.path.getsize(path + "-redo") == 0:
        return
    try:
        events, torn = redo.read(path + "-redo")
    except (OSError, redo.RedoLogDamaged) as exc:
        notes.append(f"{path}-redo cannot be read ({exc}): opening the database for writing will refuse it")
        return
    notes.append(f"{len(events)} event(s) in {path}-redo are not in the database yet (an engine is running, or "
                 f"crashed: they are checked and applied when the database is next opened, e.g. by "
                 f"`cellwright resume`)" + (f"; {torn} byte(s) of a torn last record are ignored" if torn else ""))
