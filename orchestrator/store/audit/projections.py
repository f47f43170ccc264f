"""The projection tables against a replay of the events through the Journal's own code."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from typing import Any

from orchestrator.store.audit.readonly import Event, table_names, table_rows
from orchestrator.store.audit.report import MAX_PROBLEMS, AuditProblem
from orchestrator.store.projector import OPERATOR_REQUEST_KINDS, apply_event
from orchestrator.store.sqlite import Store



class _Expected:
    """Projection rows expected from a replay, with the event behind each."""

    def __init__(self) -> None:
        self.source: dict[tuple[str, Any], int] = {}
        self.step_first: dict[tuple[Any, Any], int] = {}
        self.step_known: set[tuple[Any, Any]] = set()
        self.counts: dict[str, int] = {"verdicts": 0, "deviations": 0, "operator_actions": 0}
        self.errors: list[AuditProblem] = []


def _replay(events: list[Event]) -> tuple[Store, _Expected]:
    """Apply every event's projection (the store's own code) to an in-memory store."""
    mem = Store(":memory:")
    exp = _Expected()
    for e in events:
        try:
            p = json.loads(e.payload) if isinstance(e.payload, str) else None
            if not isinstance(p, dict):
                raise TypeError("payload is not a JSON object")
            if not isinstance(e.kind, str):
                raise TypeError("kind is not text")
            apply_event(mem.conn, e.seq, e.run_id, e.kind, e.subject, e.actor, e.sim_time, e.wall_time, p)
            _note_source(e, p, exp)
        except Exception as exc:  # noqa: BLE001 - any failure is a finding, not a crash
            exp.errors.append(AuditProblem(e.seq, "projection-mismatch",
                                           f"event seq {e.seq} ({e.kind} {e.subject or ''}) cannot be replayed into "
                                           f"the projections: {type(exc).__name__}: {exc}"))
    return mem, exp


def _note_source(e: Event, p: dict[str, Any], exp: _Expected) -> None:
    """Remember which event produced which expected row (for the findings' wording)."""
    kind, run_id, subject = e.kind, e.run_id, e.subject
    if kind == "run.created":
        exp.source[("runs", p.get("run_id"))] = e.seq
    elif kind == "run.transition":
        exp.source[("runs", run_id)] = e.seq
    elif kind.startswith("step."):
        if "static_key" in p or "kind" in p:
            exp.step_known.add((run_id, subject))
        exp.step_first.setdefault((run_id, subject), e.seq)
        exp.source[("steps", (run_id, subject))] = e.seq
    elif kind == "measurement":
        for f in p["values"]:
            exp.source.setdefault(("measurements", (run_id, subject, p["name"], f, e.sim_time)), e.seq)
    elif kind in ("qc.verdict", "deviation") or kind in OPERATOR_REQUEST_KINDS:
        table = {"qc.verdict": "verdicts", "deviation": "deviations"}.get(kind, "operator_actions")
        exp.counts[table] += 1
        exp.source[(table, exp.counts[table])] = e.seq
    elif kind == "labware.location":
        exp.source[("locations", p["plate"])] = e.seq
    elif kind == "operator.request.applied":
        exp.source[("operator_actions", p["request"])] = e.seq
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


def _keyed(
    cols: list[str], rows: list[tuple[Any, ...]], key: tuple[str, ...]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    seen: dict[tuple[Any, ...], int] = {}
    for raw in rows:
        row = dict(zip(cols, raw, strict=True))
        k = tuple(row.get(c) for c in key)
        n = seen.get(k, 0)
        seen[k] = n + 1
        out[k + ((n,) if n else ())] = row
    return out


def compare_projections(conn: sqlite3.Connection, events: list[Event], notes: list[str]) -> list[AuditProblem]:
    """Projection mismatches (at most :data:`MAX_PROBLEMS`) between ``conn``'s tables and a replay
    of ``events``; what could not be compared is appended to ``notes``."""
    mem, exp = _replay(events)
    problems = list(exp.errors)
    try:
        have = table_names(conn)
        for table, (key, skip) in _PROJECTIONS.items():
            if table not in have:
                notes.append(f"table {table} is absent: not compared")
                continue
            cols, actual_rows = table_rows(conn, table)
            mcols, expected_rows = table_rows(mem.conn, table)
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
