"""Gathering the batch record of one run from the store (see :mod:`orchestrator.report.batch`).

Everything is read back from the store (the projection tables and the event journal), and
the store's audit trail is verified (:func:`orchestrator.store.audit.verify`) while the
record is made, so the record states whether the data it shows can be trusted.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator import __version__
from orchestrator.store.audit import verify
from orchestrator.store.sqlite import Store

SCHEMA = "cellwright.batch-record/1"
"""Identifier (and version) of the JSON layout."""

RECORD_KEYS = ("schema", "generated", "generator", "run", "protocol", "parameters", "workcell", "operators",
               "steps", "measurements", "qc", "deviations", "step_failures", "interventions", "instrument_events", "summary", "audit")
"""Top-level keys of the JSON record."""


class _Reader:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, tuple(params))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def tables(self) -> set[str]:
        return {r["name"] for r in self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}


@contextmanager
def _open(store: Store | str | os.PathLike[str]) -> Iterator[tuple[_Reader, str | None]]:
    if isinstance(store, Store):
        yield _Reader(store.conn), (None if store.path == ":memory:" else store.path)
        return
    reader = Store(store, readonly=True)  # refuses a foreign, newer or damaged database
    try:
        yield _Reader(reader.conn), str(store)
    finally:
        reader.close()


def _loads(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _iso(origin: datetime | None, t: float | None) -> str | None:
    if origin is None or t is None:
        return None
    return (origin + timedelta(seconds=float(t))).isoformat()


def _origin(text: Any) -> datetime | None:
    try:
        dt = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


# -- gathering ------------------------------------------------------------------------


def batch_record(store: Store | str | os.PathLike[str], run_id: str) -> dict[str, Any]:
    """The batch record of ``run_id`` as a JSON-able dict (keys: :data:`RECORD_KEYS`).

    Args:
        store: an open :class:`Store` or a database file (opened read-only).

    Raises:
        KeyError: no such run.
        StoreError: the database cannot be read.
    """
    with _open(store) as (db, path):
        runs = db.rows("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not runs:
            raise KeyError(f"no run {run_id!r} in {path or 'the database'}")
        run = runs[0]
        events = db.rows("SELECT seq, kind, subject, actor, sim_time, wall_time, payload, hash FROM events"
                         " WHERE run_id = ? ORDER BY seq", (run_id,))
        first_seq = events[0]["seq"] if events else 0
        last_seq = events[-1]["seq"] if events else 0
        context = db.rows("SELECT seq, kind, subject, actor, sim_time, wall_time, payload FROM events"
                          " WHERE run_id IS NULL AND seq <= ? AND kind LIKE 'instrument.%' ORDER BY seq", (last_seq,))
        steps = db.rows("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", (run_id,))
        measurements = db.rows("SELECT * FROM measurements WHERE run_id = ? ORDER BY sim_time, id", (run_id,))
        verdicts = db.rows("SELECT * FROM verdicts WHERE run_id = ? ORDER BY id", (run_id,))
        deviations = db.rows("SELECT * FROM deviations WHERE run_id = ? ORDER BY id", (run_id,))
        audit = verify(db.conn)
    origin = _origin(run.get("origin"))
    created: dict[str, Any] = next((_loads(e["payload"]) for e in events if e["kind"] == "run.created"), {}) or {}

    # steps, with their transition history from the journal
    history: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["kind"].startswith("step."):
            p = _loads(e["payload"]) or {}
            history.setdefault(e["subject"], []).append({
                "seq": e["seq"], "to": p.get("to"), "sim_time": e["sim_time"], "actor": e["actor"],
                **({"reason": p["reason"]} if p.get("reason") else {}),
                **({"error": p["error"]} if p.get("error") else {})})
    step_list = []
    for s in steps:
        start, end, planned = s.get("start"), s.get("end"), s.get("planned_start")
        step_list.append({
            "key": s["key"], "static_key": s.get("static_key"), "kind": s.get("kind"), "status": s["status"],
            "instrument": s.get("instrument"), "action": s.get("action"), "args": _loads(s.get("args")),
            "attempt": s.get("attempt"), "recovery": s.get("recovery"), "idempotency": s.get("idempotency"),
            "planned_start": planned, "start": start, "end": end,
            "duration_s": (end - start) if start is not None and end is not None else None,
            "delay_s": (start - planned) if start is not None and planned is not None else None,
            "start_at": _iso(origin, start), "end_at": _iso(origin, end),
            "result": _loads(s.get("result")), "error": s.get("error"), "first_seq": s.get("seq"),
            "history": history.get(s["key"], []),
        })

    # measurements, grouped per step and name
    groups: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for m in measurements:
        g = groups.setdefault((m["step_key"], m["name"], m["sim_time"]), {
            "step": m["step_key"], "name": m["name"], "sim_time": m["sim_time"], "at": _iso(origin, m["sim_time"]),
            "values": []})
        g["values"].append({"field": m["field"], "value": m["value"], "unit": m["unit"]})
    units = {(m["step_key"], m["field"]): m["unit"] for m in measurements}
    qc = []
    for v in verdicts:
        fld = str(v["criterion"]).split(" ")[0]
        qc.append({"step": v["step_key"], "criterion": v["criterion"], "value": v["value"],
                   "unit": units.get((v["step_key"], fld), ""), "passed": bool(v["passed"]), "sim_time": v["sim_time"]})

    failures = []
    for s in step_list:
        for h in s["history"]:
            if h["to"] == "failed":
                failures.append({"seq": h["seq"], "step": s["key"], "instrument": s["instrument"], "action": s["action"],
                                 "sim_time": h["sim_time"], "error": h.get("error") or h.get("reason") or s["error"],
                                 "final_status": s["status"]})
    devs = [{"id": d["id"], "step": d["step_key"], "kind": d["kind"], "detail": d["detail"], "sim_time": d["sim_time"]}
            for d in deviations]
    interventions = []
    for e in events:
        if e["kind"].startswith("operator."):
            interventions.append({"seq": e["seq"], "kind": e["kind"], "operator": e["actor"], "subject": e["subject"],
                                  "payload": _loads(e["payload"]), "sim_time": e["sim_time"], "wall_time": e["wall_time"]})
    for s in step_list:
        for h in s["history"]:
            if h["to"] == "awaiting_operator":
                interventions.append({"seq": h["seq"], "kind": "step.awaiting_operator", "operator": None,
                                      "subject": s["key"], "payload": {"reason": h.get("reason", "")},
                                      "sim_time": h["sim_time"], "wall_time": None})
    interventions.sort(key=lambda i: i["seq"])

    # instruments: identity notes (latest before the run's end), else what the steps show
    identity: dict[str, dict[str, Any]] = {}
    incidents = []
    for e in context:
        p = _loads(e["payload"]) or {}
        if e["kind"] == "instrument.identity":
            identity[p.get("instrument") or e["subject"]] = {**p, "seq": e["seq"]}
        elif e["seq"] >= first_seq:
            incidents.append({"seq": e["seq"], "instrument": e["subject"], "kind": e["kind"], "payload": p,
                              "sim_time": e["sim_time"]})
    used: dict[str, dict[str, Any]] = {}
    for s in step_list:
        if s["instrument"]:
            u = used.setdefault(s["instrument"], {"steps": 0, "actions": []})
            u["steps"] += 1
            if s["action"] and s["action"] not in u["actions"]:
                u["actions"].append(s["action"])
    names = list(identity) + [n for n in used if n not in identity]
    instruments = []
    for name in names:
        ident = identity.get(name, {})
        instruments.append({
            "name": name, "class": ident.get("class") or _class_of(used.get(name, {}).get("actions", [])),
            "driver": ident.get("driver"), "mode": ident.get("mode"), "vendor": ident.get("vendor"),
            "model": ident.get("model"), "serial": ident.get("serial"), "firmware": ident.get("firmware"),
            "identity_recorded": bool(ident), "identity_seq": ident.get("seq"),
            "steps": used.get(name, {}).get("steps", 0), "actions": used.get(name, {}).get("actions", []),
        })

    roles: dict[str, list[str]] = {run["operator"]: ["started the run"]}
    for e in events[1:]:
        if e["actor"] != "engine":
            what = e["kind"] if e["kind"].startswith("operator.") else f"recorded {e['kind']}"
            if what not in roles.setdefault(e["actor"], []):
                roles[e["actor"]].append(what)
    operators = [{"name": name, "role": "; ".join(r)} for name, r in roles.items()]

    by_status: dict[str, int] = {}
    for s in step_list:
        k = f"{s['kind']}:{s['status']}"
        by_status[k] = by_status.get(k, 0) + 1
    dev_kinds: dict[str, int] = {}
    for d in devs:
        dev_kinds[d["kind"]] = dev_kinds.get(d["kind"], 0) + 1
    sim_start, sim_end = run.get("sim_start"), run.get("sim_end")
    summary = {
        "status": run["status"], "detail": run.get("detail"),
        "steps": len(step_list), "steps_by_kind_status": by_status,
        "steps_done": sum(1 for s in step_list if s["status"] == "done"),
        "protocol_steps_done": sum(1 for s in step_list if s["status"] == "done" and s["kind"] == "action"),
        "transport_moves": sum(1 for s in step_list if s["status"] == "done" and s["kind"] == "transport"),
        "steps_failed": sum(1 for s in step_list if s["status"] == "failed"),
        "steps_skipped": sum(1 for s in step_list if s["status"] == "skipped"),
        "retried_steps": sum(1 for s in step_list if (s["attempt"] or 0) > 1),
        "measurements": len(groups), "qc_passed": sum(1 for q in qc if q["passed"]),
        "qc_failed": sum(1 for q in qc if not q["passed"]), "deviations": len(devs), "deviations_by_kind": dev_kinds,
        "interventions": len(interventions), "step_failures": len(failures), "sim_start": sim_start, "sim_end": sim_end,
        "elapsed_s": (sim_end - (sim_start or 0.0)) if sim_end is not None else None,
    }
    return {
        "schema": SCHEMA,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "generator": f"cellwright {__version__}",
        "run": {"run_id": run_id, "status": run["status"], "detail": run.get("detail"), "seed": run.get("seed"),
                "clock": run.get("clock"), "origin": run.get("origin"), "created_wall": run.get("created_wall"),
                "campaign": run.get("campaign"), "sim_start": sim_start, "sim_end": sim_end,
                "database": path, "first_seq": first_seq, "last_seq": last_seq, "events": len(events)},
        "protocol": {"name": run["protocol"], "version": run["version"], "content_hash": run["content_hash"],
                     "source": run["source"]},
        "parameters": _loads(run["parameters"]),
        "workcell": {"name": run["workcell"], "source": created.get("workcell_source"), "instruments": instruments,
                     "identity_recorded": bool(identity)},
        "operators": operators,
        "steps": step_list,
        "measurements": list(groups.values()),
        "qc": qc,
        "deviations": devs,
        "step_failures": failures,
        "interventions": interventions,
        "instrument_events": incidents,
        "summary": summary,
        "audit": {**audit.to_dict(), "run_last_hash": events[-1]["hash"] if events else None},
    }


def _class_of(actions: Sequence[str]) -> str | None:
    try:
        from drivers.actions import catalogue
    except ImportError:  # pragma: no cover - drivers is part of the distribution
        return None
    classes = {q.split(".")[0] for q in catalogue() if q.split(".")[1] in actions}
    return next(iter(classes)) if len(classes) == 1 else None
