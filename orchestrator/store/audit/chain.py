"""The hash chain: one pass over the events classifying the first break precisely
(modified, deleted, inserted, reordered, truncated), then the chain end and an
externally kept head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrator.store.audit.readonly import Event
from orchestrator.store.audit.report import MAX_PROBLEMS, AuditProblem
from orchestrator.store.sqlite import GENESIS, event_hash


def _digest(e: Event, seq: int | None = None, prev: Any = None) -> str:
    try:
        return event_hash(e.prev_hash if prev is None else prev, e.seq if seq is None else seq, e.run_id, e.kind,
                          e.subject, e.actor, e.sim_time, e.wall_time, e.payload)
    except (TypeError, ValueError):
        return ""


def _describe(e: Event) -> str:
    what = f"{e.kind}"
    if e.subject:
        what += f" {e.subject}"
    if e.run_id:
        what += f" of run {e.run_id}"
    return f"({what}, written {e.wall_time})"


def _short(h: Any) -> str:
    return str(h)[:16] + "…" if isinstance(h, str) and len(h) > 16 else repr(h)


class Chain:
    """One pass over the events with precise classification of each break."""

    def __init__(self, rows: list[Event], recorded: tuple[int, str] | None) -> None:
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

    def report_beyond_head(self, r: Event, self_ok: bool) -> None:
        assert self.recorded is not None
        self.add(r.seq, "inserted",
                 f"record seq {r.seq} {_describe(r)} comes after the recorded chain head (seq {self.recorded[0]}, "
                 f"hash {_short(self.recorded[1])}): it was added outside the journal"
                 + ("" if self_ok else " and its hash does not match its content"))

    def classify_content(self, i: int, r: Event, true: int, nxt: Event | None, expected_prev: str) -> None:
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


def check_expected_head(chain: Chain, expect: str, notes: list[str]) -> None:
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
