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

import json
import math
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from orchestrator.store.sqlite import GENESIS, Store, StoreError, event_hash

PROBLEM_KINDS = ("modified", "deleted", "inserted", "reordered", "truncated", "projection-mismatch")
"""The classifications :class:`AuditProblem.kind` takes."""

MAX_PROBLEMS = 50
"""At most this many chain problems and this many projection problems are listed."""

OPERATOR_REQUEST_KINDS = ("operator.pause", "operator.resume", "operator.abort", "operator.confirm.done",
                          "operator.confirm.redo", "operator.confirm.skip")
"""Events that add an ``operator_actions`` row (see ``orchestrator.engine.control``)."""


@dataclass(frozen=True)
class AuditProblem:
    """One finding.

    Attributes:
        seq: the event sequence number concerned (the first broken record, the first
            missing one, or the event behind a projection row); ``None`` if unknown.
        kind: one of :data:`PROBLEM_KINDS`.
        message: what is wrong, naming the record (and table, row, column for
            projections).
    """

    seq: int | None
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"seq": self.seq, "kind": self.kind, "message": self.message}


@dataclass
class AuditReport:
    """Result of :func:`verify`.

    Attributes:
        ok: no problem found.
        events: number of event records in the database.
        head: hash of the newest stored event (``GENESIS`` when empty).
        problems: chain problems in sequence order, then head, then projection problems.
        head_seq: sequence number of the newest stored event.
        recorded_head: ``(seq, hash)`` from the ``chain_head`` table, or ``None``.
        path: the database verified (``None`` for an in-memory connection).
        notes: what could not be checked and other remarks (not problems).
    """

    ok: bool
    events: int
    head: str
    problems: list[AuditProblem] = field(default_factory=list)
    head_seq: int = 0
    recorded_head: tuple[int, str] | None = None
    path: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def first_problem(self) -> AuditProblem | None:
        """The first problem found (the earliest broken record), or ``None``."""
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for ``--json`` output and batch records)."""
        return {
            "ok": self.ok, "events": self.events, "head": self.head, "head_seq": self.head_seq,
            "recorded_head": list(self.recorded_head) if self.recorded_head else None, "path": self.path,
            "first_problem": self.first_problem.to_dict() if self.first_problem else None,
            "problems": [p.to_dict() for p in self.problems], "notes": list(self.notes),
        }

    def text(self) -> str:
        """Human-readable summary, one finding per line."""
        where = f"{self.path}: " if self.path else ""
        if self.ok:
            lines = [(f"{where}OK — {self.events} events, hash chain intact, projections match; "
                      f"head {self.head_seq}:{self.head}")]
        else:
            lines = [(f"{where}FAILED — {len(self.problems)} problem(s) in {self.events} events; "
                      f"stored head {self.head_seq}:{self.head}")]
            for p in self.problems:
                lines.append(f"  [{p.kind}] " + (f"seq {p.seq}: " if p.seq is not None else "") + p.message)
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# -- reading --------------------------------------------------------------------------


class _Event(NamedTuple):
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


_EVENT_COLS = "seq, run_id, kind, subject, actor, sim_time, wall_time, payload, prev_hash, hash"


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open a database file for reading only; nothing is ever written to it.

    A database without a ``-wal`` file (closed cleanly) is opened ``immutable`` so not
    even the ``-wal``/``-shm`` side files are created; one with a ``-wal`` (in use, or
    not closed cleanly) is opened ``mode=ro`` so the log's committed content is read.

    Raises:
        StoreError: the file does not exist or cannot be opened.
    """
    p = Path(path)
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


@contextmanager
def _connection(source: Store | str | os.PathLike[str] | sqlite3.Connection) -> Iterator[tuple[sqlite3.Connection, str | None]]:
    if isinstance(source, Store):
        yield source.conn, (None if source.path == ":memory:" else source.path)
    elif isinstance(source, sqlite3.Connection):
        yield source, None
    else:
        conn = open_readonly(source)
        try:
            yield conn, str(source)
        finally:
            conn.close()


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()}


def _rows(conn: sqlite3.Connection, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cur = conn.execute(f"SELECT * FROM {table}")  # table names are ours, never input
    cols = [d[0] for d in cur.description]
    return cols, [tuple(r) for r in cur.fetchall()]


# -- the chain ------------------------------------------------------------------------


def _digest(e: _Event, seq: int | None = None, prev: Any = None) -> str:
    try:
        return event_hash(e.prev_hash if prev is None else prev, e.seq if seq is None else seq, e.run_id, e.kind,
                          e.subject, e.actor, e.sim_time, e.wall_time, e.payload)
    except (TypeError, ValueError):
        return ""


def _describe(e: _Event) -> str:
    what = f"{e.kind}"
    if e.subject:
        what += f" {e.subject}"
    if e.run_id:
        what += f" of run {e.run_id}"
    return f"({what}, written {e.wall_time})"


def _short(h: Any) -> str:
    return str(h)[:16] + "…" if isinstance(h, str) and len(h) > 16 else repr(h)


class _Chain:
    """One pass over the events with precise classification of each break."""

    def __init__(self, rows: list[_Event], recorded: tuple[int, str] | None) -> None:
        self.rows = rows
        self.recorded = recorded
        self.by_hash: dict[Any, int] = {}
        for i, r in enumerate(rows):
            self.by_hash.setdefault(r.hash, i)
        self.by_seq = {r.seq: i for i, r in enumerate(rows)}
        self.offset = 0  # true seq - stored seq, after renumbering was detected
        self.skip: set[int] = set()  # positions whose breakage an earlier problem explains
        self.problems: list[AuditProblem] = []
        self.truncated_listing = False

    def ok_at(self, i: int, true_seq: int) -> bool:
        r = self.rows[i]
        return _digest(r, true_seq) == str(r.hash)

    def add(self, seq: int | None, kind: str, message: str) -> None:
        if any(p.seq == seq and p.kind == kind for p in self.problems):
            return
        if len(self.problems) >= MAX_PROBLEMS:
            self.truncated_listing = True
            return
        self.problems.append(AuditProblem(seq, kind, message))

    def scan(self) -> None:
        expected_prev, expected_seq = GENESIS, 1
        for i, r in enumerate(self.rows):
            if i not in self.skip:
                self_ok = self.ok_at(i, r.seq + self.offset)
                if not (self_ok and r.prev_hash == expected_prev and r.seq == expected_seq):
                    self.classify(i, self_ok, expected_prev, expected_seq)
            expected_prev, expected_seq = r.hash, r.seq + 1

    # The first broken record at position i (all earlier positions are consistent or explained).
    def classify(self, i: int, self_ok: bool, expected_prev: str, expected_seq: int) -> None:
        rows, r = self.rows, self.rows[i]
        true = r.seq + self.offset
        nxt = rows[i + 1] if i + 1 < len(rows) else None
        if self_ok and self.beyond_head(i):
            self.report_beyond_head(r, self_ok)
            return
        if r.seq < expected_seq:  # only possible at the start: seq <= 0
            self.add(r.seq, "inserted", f"record seq {r.seq} {_describe(r)} precedes the first record (seq 1): forged")
            self.skip.add(i + 1)
            return
        if r.seq > expected_seq:
            if self.beyond_head(i):
                self.report_beyond_head(r, self_ok)
                return
            missing = f"seq {expected_seq}" if r.seq == expected_seq + 1 else f"seq {expected_seq}–{r.seq - 1}"
            j = self.by_hash.get(r.prev_hash)
            if j is not None and j != i - 1 and r.prev_hash != GENESIS:
                moved = rows[j]
                self.add(expected_seq, "reordered",
                         f"{missing} is missing from its place, but the record seq {r.seq} links to is stored as "
                         f"seq {moved.seq} {_describe(moved)}: its sequence number was changed (record moved)")
                self.skip.update({j, j + 1})
                return
            if self_ok and r.prev_hash == expected_prev:
                self.add(r.seq, "inserted",
                         f"record seq {r.seq} {_describe(r)} follows seq {expected_seq - 1} with a gap in numbering; "
                         f"the journal never skips numbers: it was forged with a recomputed hash")
                return
            self.add(expected_seq, "deleted",
                     f"{missing} missing: record seq {r.seq} {_describe(r)} links to prev_hash "
                     f"{_short(r.prev_hash)}, which no record in the chain has: "
                     f"{'it was' if r.seq == expected_seq + 1 else 'they were'} deleted")
            return
        # sequence number in place
        if not self_ok:
            self.classify_content(i, r, true, nxt, expected_prev)
            return
        # content matches its hash, but the link to the previous record is broken
        if i == 0:
            self.add(r.seq, "modified",
                     f"first record seq {r.seq} {_describe(r)} has prev_hash {_short(r.prev_hash)} instead of the "
                     f"genesis hash: rewritten with a recomputed hash")
            return
        p = rows[i - 1]
        self.add(p.seq, "modified",
                 f"record seq {p.seq} {_describe(p)} was altered and its hash recomputed: seq {r.seq} recorded "
                 f"prev_hash {_short(r.prev_hash)}, but seq {p.seq} now hashes to {_short(p.hash)}")

    def beyond_head(self, i: int) -> bool:
        """Record i is the first one numbered after the recorded chain head."""
        if self.recorded is None:
            return False
        hs = self.recorded[0]
        return self.rows[i].seq + self.offset > hs and (i == 0 or self.rows[i - 1].seq + self.offset <= hs)

    def report_beyond_head(self, r: _Event, self_ok: bool) -> None:
        assert self.recorded is not None
        self.add(r.seq, "inserted",
                 f"record seq {r.seq} {_describe(r)} comes after the recorded chain head (seq {self.recorded[0]}, "
                 f"hash {_short(self.recorded[1])}): it was added outside the journal"
                 + ("" if self_ok else " and its hash does not match its content"))

    def classify_content(self, i: int, r: _Event, true: int, nxt: _Event | None, expected_prev: str) -> None:
        rows = self.rows
        # (1) the content is a genuine record written under another sequence number.
        origin = self.origin_of(i, true)
        if origin is not None:
            if origin > true:
                j = self.by_seq.get(origin - self.offset)
                if j is not None and j != i and self.ok_at(j, true):
                    o = rows[j]
                    self.add(r.seq, "reordered",
                             f"records seq {r.seq} and seq {o.seq} were swapped: seq {r.seq} holds the record written "
                             f"as seq {origin} {_describe(r)} and seq {o.seq} the one written as seq {true}")
                    self.skip.update({i + 1, j, j + 1})
                    return
                n = origin - true
                self.add(true, "deleted",
                         f"seq {true}" + (f"–{origin - 1}" if n > 1 else "")
                         + f" deleted and the later records renumbered: seq {r.seq} holds the record written as "
                           f"seq {origin} {_describe(r)}")
                self.offset += n
                return
            n = true - origin
            first = rows[i - n] if i - n >= 0 else r
            self.add(first.seq, "inserted",
                     f"record seq {first.seq} {_describe(first)} was inserted (with a recomputed hash) and the later "
                     f"records renumbered: seq {r.seq} holds the record written as seq {origin}")
            self.offset -= n
            return
        # (2) the successor links past this record: it was put in between.
        if nxt is not None and nxt.prev_hash == expected_prev:
            shifted = self.ok_at(i + 1, true) and not self.ok_at(i + 1, true + 1)
            self.add(r.seq, "inserted",
                     f"record seq {r.seq} {_describe(r)} does not fit between its neighbours: its hash does not match "
                     f"its content and seq {nxt.seq} links past it to seq {rows[i - 1].seq if i else 0}"
                     + (" (the later records were renumbered to make room)" if shifted else ""))
            if shifted:
                self.offset -= 1
            self.skip.add(i + 1)
            return
        if self.beyond_head(i):
            self.report_beyond_head(r, False)
            return
        # (3) the content belongs to another position whose chain columns stayed in place.
        for j, o in enumerate(rows):
            if j != i and _digest(r, o.seq + self.offset, o.prev_hash) == o.hash:
                self.add(r.seq, "reordered",
                         f"the contents of records seq {r.seq} and seq {o.seq} were swapped: seq {r.seq} holds the "
                         f"content hashed as seq {o.seq} {_describe(r)}")
                self.skip.add(j)
                return
        # (4) plain modification.
        if nxt is not None and nxt.prev_hash != r.hash:
            self.skip.add(i + 1)
            if _digest(r, true) == nxt.prev_hash:
                self.add(r.seq, "modified", f"record seq {r.seq} {_describe(r)}: its stored hash was altered "
                                            f"({_short(r.hash)}; its content hashes to {_short(nxt.prev_hash)})")
                return
        self.add(r.seq, "modified",
                 f"record seq {r.seq} {_describe(r)} does not match its hash: its content (payload, times, actor, "
                 f"kind, subject or run) was altered after it was written")

    def origin_of(self, i: int, true: int) -> int | None:
        """The sequence number under which record i's content and hash were written, if any other."""
        r = self.rows[i]
        candidates = [true + 1, true - 1]
        j = self.by_hash.get(r.prev_hash)
        if j is not None:
            candidates.append(self.rows[j].seq + self.offset + 1)
        if r.prev_hash == GENESIS:
            candidates.append(1)
        for c in candidates:
            if c != true and _digest(r, c) == r.hash:
                return c
        lo = min(self.rows[0].seq, 1) + self.offset - 2
        hi = self.rows[-1].seq + self.offset + len(self.rows) + 2
        if hi - lo > 4 * len(self.rows) + 16:  # sparse numbering: only the stored numbers
            tries: Sequence[int] = sorted({x.seq + self.offset for x in self.rows} | {x.seq + self.offset + 1 for x in self.rows})
        else:
            tries = range(lo, hi)
        for c in tries:
            if c != true and _digest(r, c) == r.hash:
                return c
        return None

    def check_end(self, notes: list[str]) -> None:
        rows = self.rows
        if self.recorded is None:
            notes.append("no chain_head table (schema before version 2): deletion of the newest events cannot be "
                         "detected; use --expect-head with a head hash kept elsewhere")
            return
        hs, hh = self.recorded
        if not rows:
            if hs > 0:
                self.add(1, "truncated", f"the events table is empty but chain_head records seq {hs}, hash "
                                         f"{_short(hh)}: all events were deleted")
            return
        last = rows[-1]
        lt = last.seq + self.offset
        if lt == hs and last.hash == hh:
            return
        if lt < hs:
            first = last.seq + 1
            missing = f"seq {first}" if first == hs - self.offset else f"seq {first}–{hs - self.offset}"
            self.add(first, "truncated",
                     f"{missing} missing at the end: the chain stops at seq {last.seq} but chain_head records seq "
                     f"{hs} (hash {_short(hh)}): the newest events were deleted")
            return
        if lt > hs:
            j = self.by_hash.get(hh)
            if j is not None and j + 1 < len(rows):
                a = rows[j + 1]
                span = f"record seq {a.seq} comes" if a.seq == last.seq else f"records seq {a.seq}–{last.seq} come"
                self.add(a.seq, "inserted",
                         f"{span} after the recorded chain head (seq {hs}, hash "
                         f"{_short(hh)}): added outside the journal")
            else:
                self.add(None, "inserted",
                         f"the chain has {lt} records but chain_head records seq {hs}, whose hash {_short(hh)} no record "
                         f"has: the chain was rewritten with extra records (or chain_head was altered)")
            return
        if len(rows) - 1 in self.skip or any(p.seq == last.seq for p in self.problems):
            return
        self.add(last.seq, "modified",
                 f"newest record seq {last.seq} {_describe(last)} hashes to {_short(last.hash)} but chain_head records "
                 f"{_short(hh)}: it was altered and re-hashed (or chain_head was altered)")


def _expect_head(chain: _Chain, expect: str, notes: list[str]) -> None:
    """Compare against an externally kept head: ``HASH`` or ``SEQ:HASH``."""
    seq_text, sep, h = expect.strip().rpartition(":")
    h = h.strip().lower()
    want_seq = int(seq_text) if sep and seq_text.strip().isdigit() else None
    rows = chain.rows
    last = rows[-1] if rows else None
    if last is not None and last.hash == h and (want_seq is None or want_seq == last.seq):
        return
    idx = chain.by_hash.get(h)
    if idx is not None and (want_seq is None or rows[idx].seq == want_seq):
        notes.append(f"the expected head is record seq {rows[idx].seq}; {len(rows) - 1 - idx} event(s) were appended "
                     f"since it was recorded")
        return
    if want_seq is not None and (last is None or want_seq > last.seq):
        chain.add(want_seq, "truncated",
                  f"the externally recorded head is seq {want_seq} ({_short(h)}) but the chain ends at seq "
                  f"{last.seq if last else 0}: events were deleted (and chain_head rewritten to hide it)")
        return
    chain.add(want_seq, "modified",
              f"the externally recorded head {_short(h)}" + (f" (seq {want_seq})" if want_seq else "")
              + " is not the hash of any record in the chain: the chain was rewritten (or truncated) consistently")


# -- the projections ------------------------------------------------------------------


class _Expected:
    """Projection rows expected from a replay, with the event behind each."""

    def __init__(self) -> None:
        self.source: dict[tuple[str, Any], int] = {}
        self.step_first: dict[tuple[Any, Any], int] = {}
        self.step_known: set[tuple[Any, Any]] = set()
        self.counts: dict[str, int] = {"verdicts": 0, "deviations": 0, "operator_actions": 0}
        self.errors: list[AuditProblem] = []


def _replay(events: list[_Event]) -> tuple[Store, _Expected]:
    """Apply every event's projection, with the Journal's own code, to an in-memory store."""
    from orchestrator.store.journal import Journal

    mem = Store(":memory:")
    j = Journal(mem, actor="engine")
    exp = _Expected()
    for e in events:
        try:
            p = json.loads(e.payload) if isinstance(e.payload, str) else None
            if not isinstance(p, dict):
                raise TypeError("payload is not a JSON object")
            _apply(mem, j, e, p, exp)
        except Exception as exc:  # noqa: BLE001 - any failure is a finding, not a crash
            exp.errors.append(AuditProblem(e.seq, "projection-mismatch",
                                           f"event seq {e.seq} ({e.kind} {e.subject or ''}) cannot be replayed into "
                                           f"the projections: {type(exc).__name__}: {exc}"))
    return mem, exp


def _apply(mem: Store, j: Any, e: _Event, p: dict[str, Any], exp: _Expected) -> None:
    kind, run_id, subject, t = e.kind, e.run_id, e.subject, e.sim_time
    if kind == "run.created":
        j.run_created(p, actor=e.actor)
        exp.source[("runs", p.get("run_id"))] = e.seq
    elif kind == "run.transition":
        j.run_transition(run_id, p["from"], p["to"], t, reason=p.get("reason", ""), actor=e.actor)
        exp.source[("runs", run_id)] = e.seq
    elif isinstance(kind, str) and kind.startswith("step."):
        q = dict(p)
        source, dest, reason = q.pop("from"), q.pop("to"), q.pop("reason", "")
        static_key, step_kind = q.pop("static_key", None), q.pop("kind", None)
        if static_key is not None or step_kind is not None:
            exp.step_known.add((run_id, subject))
        j.step_transition(run_id, subject, source, dest, t, static_key=static_key or "", kind=step_kind or "action",
                          fields=q, reason=reason, actor=e.actor)
        exp.step_first.setdefault((run_id, subject), e.seq)
        exp.source[("steps", (run_id, subject))] = e.seq
    elif kind == "measurement":
        values = {f: (v[0], v[1]) for f, v in p["values"].items()}
        j.measurement(run_id, subject, p["name"], values, t)
        for f in values:
            exp.source.setdefault(("measurements", (run_id, subject, p["name"], f, t)), e.seq)
    elif kind == "qc.verdict":
        j.verdict(run_id, subject, p["criterion"], p["value"], p["passed"], t)
        exp.counts["verdicts"] += 1
        exp.source[("verdicts", exp.counts["verdicts"])] = e.seq
    elif kind == "deviation":
        j.deviation(run_id, subject, p["kind"], p["detail"], t)
        exp.counts["deviations"] += 1
        exp.source[("deviations", exp.counts["deviations"])] = e.seq
    elif kind == "labware.location":
        j.location(p["plate"], p["site"], t, run_id=run_id)
        exp.source[("locations", p["plate"])] = e.seq
    elif kind in OPERATOR_REQUEST_KINDS:
        action = kind[len("operator."):].replace(".", ":")
        row = (run_id, p.get("step"), action, e.actor, p["reason"], e.wall_time)

        def project(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO operator_actions(run_id, step_key, action, operator, reason, wall_time)"
                         " VALUES (?,?,?,?,?,?)", row)

        mem.append(kind, p, actor=e.actor, run_id=run_id, subject=subject, sim_time=t, project=project)
        exp.counts["operator_actions"] += 1
        exp.source[("operator_actions", exp.counts["operator_actions"])] = e.seq
    elif kind == "operator.request.applied":
        rid = p["request"]

        def applied(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE operator_actions SET consumed = 1 WHERE id = ?", (rid,))

        mem.append(kind, p, actor=e.actor, run_id=run_id, subject=subject, sim_time=t, project=applied)
        exp.source[("operator_actions", rid)] = e.seq
    # every other kind is a note without a projection


# table -> (key columns, columns not derivable from the events)
_PROJECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "runs": (("run_id",), ()),
    "steps": (("run_id", "key"), ()),  # static_key and kind: only where the events carry them
    "measurements": (("run_id", "step_key", "name", "field", "sim_time"), ("id",)),
    "verdicts": (("id",), ()),
    "deviations": (("id",), ()),
    "locations": (("plate",), ()),
    "operator_actions": (("id",), ("wall_time",)),
}


def _same(a: Any, b: Any) -> bool:
    def num(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool)

    if num(a) and num(b):
        return bool(a == b) or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and bool(a == b)


def _label(table: str, key: tuple[Any, ...], row: Mapping[str, Any] | None) -> str:
    if table == "measurements":
        run_id, step, name, fld, _t = key[:5]
        rid = f"id={row['id']} " if row and "id" in row else ""
        return f"measurements row {rid}(run {run_id}, step {step}, {name}.{fld})"
    if table == "steps":
        return f"steps row (run {key[0]}, step {key[1]})"
    if table in ("verdicts", "deviations", "operator_actions"):
        extra = ""
        if row:
            bits = [str(row[c]) for c in ("run_id", "step_key", "criterion", "kind", "action") if row.get(c)]
            extra = f" ({', '.join(bits)})" if bits else ""
        return f"{table} row id={key[0]}{extra}"
    return f"{table} row {key[0]}"


def _keyed(cols: list[str], rows: list[tuple[Any, ...]], key: tuple[str, ...]) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    seen: dict[tuple[Any, ...], int] = {}
    for raw in rows:
        row = dict(zip(cols, raw))
        k = tuple(row.get(c) for c in key)
        n = seen.get(k, 0)
        seen[k] = n + 1
        out[k + ((n,) if n else ())] = row
    return out


def _compare_projections(conn: sqlite3.Connection, events: list[_Event], notes: list[str]) -> list[AuditProblem]:
    mem, exp = _replay(events)
    problems = list(exp.errors)
    try:
        have = _tables(conn)
        for table, (key, skip) in _PROJECTIONS.items():
            if table not in have:
                notes.append(f"table {table} is absent: not compared")
                continue
            cols, actual_rows = _rows(conn, table)
            mcols, expected_rows = _rows(mem.conn, table)
            if table == "measurements":  # ids depend on insertion order within one event
                actual_rows.sort(key=lambda r: r[0])
            actual = _keyed(cols, actual_rows, key)
            expected = _keyed(mcols, expected_rows, key)
            if table == "steps":
                for k, row in expected.items():
                    row["seq"] = exp.step_first.get(k[:2], row["seq"])
            compare = [c for c in mcols if c not in skip and c in cols]
            for k, want in expected.items():
                src = exp.source.get((table, k[:5] if table == "measurements" else (k if len(key) > 1 else k[0])))
                got = actual.get(k)
                if got is None:
                    problems.append(AuditProblem(src, "projection-mismatch",
                                                 f"{_label(table, k, want)} is missing from the table although the "
                                                 f"journal records it (event seq {src})"))
                    continue
                for c in compare:
                    if table == "steps" and c in ("static_key", "kind") and k[:2] not in exp.step_known:
                        continue
                    if not _same(got.get(c), want.get(c)):
                        problems.append(AuditProblem(src, "projection-mismatch",
                                                     f"{_label(table, k, got)}: column {c} is {got.get(c)!r} in the "
                                                     f"table but {want.get(c)!r} according to the journal (event seq "
                                                     f"{src})"))
            for k, got in actual.items():
                if k not in expected:
                    problems.append(AuditProblem(None, "projection-mismatch",
                                                 f"{_label(table, k, got)} is in the table but no event in the journal "
                                                 f"records it"))
        if any(k not in exp.step_known for k in exp.step_first):
            notes.append("steps.static_key and steps.kind are not in the step events' payloads, so they cannot be "
                         "checked against the journal")
    finally:
        mem.close()
    if len(problems) > MAX_PROBLEMS:
        extra = len(problems) - MAX_PROBLEMS
        problems = problems[:MAX_PROBLEMS]
        notes.append(f"{extra} further projection mismatch(es) not listed")
    return problems


# -- entry point ----------------------------------------------------------------------


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
    with _connection(store_or_path) as (conn, path):
        try:
            tables = _tables(conn)
            if "events" not in tables:
                raise StoreError(f"{path or 'database'} is not a cellwright database (no events table)")
            rows = [_Event(*r) for r in conn.execute(f"SELECT {_EVENT_COLS} FROM events ORDER BY seq").fetchall()]
            recorded: tuple[int, str] | None = None
            head_row_missing = False
            if "chain_head" in tables:
                hr = conn.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
                recorded = (int(hr[0]), str(hr[1])) if hr else None
                head_row_missing = hr is None
            notes: list[str] = []
            chain = _Chain(rows, recorded)
            chain.scan()
            if head_row_missing:
                chain.add(None, "modified", "the chain_head row is missing (it is written with every event): it was "
                                            "deleted, so deletion of the newest events cannot be ruled out")
            else:
                chain.check_end(notes)
            if expect_head:
                _expect_head(chain, expect_head, notes)
            if chain.truncated_listing:
                notes.append(f"more than {MAX_PROBLEMS} chain problems: the rest are not listed")
            problems = sorted(chain.problems, key=lambda p: (p.seq is None, p.seq or 0))
            if projections:
                problems += _compare_projections(conn, rows, notes)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read {path or 'database'}: {exc}") from None
    last = rows[-1] if rows else None
    return AuditReport(ok=not problems, events=len(rows), head=str(last.hash) if last else GENESIS,
                       problems=problems, head_seq=last.seq if last else 0, recorded_head=recorded, path=path,
                       notes=notes)
