"""The projection tables as a function of the events: one place that says how each
event kind changes ``runs``, ``steps``, ``measurements``, ``verdicts``, ``deviations``,
``locations`` and ``operator_actions``.

The store applies it to every event it appends, recovery applies it to events replayed
from the redo log, and ``audit verify`` applies it to a copy to check the tables against
the chain — so the tables can always be rebuilt from the record.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from orchestrator.store.canonical import canonical

RUN_COLUMNS = ("run_id", "protocol", "version", "content_hash", "source", "parameters", "workcell", "seed",
               "clock", "status", "operator", "created_wall", "origin", "campaign")
STEP_META = ("from", "to", "static_key", "kind", "reason")
"""Keys of a ``step.*`` payload that describe the transition; the others are columns."""
STEP_COLUMNS = frozenset({"instrument", "action", "args", "attempt", "idempotency", "recovery", "planned_start",
                          "start", "end", "result", "error"})
OPERATOR_REQUEST_KINDS = ("operator.pause", "operator.resume", "operator.abort", "operator.confirm.done",
                          "operator.confirm.redo", "operator.confirm.skip")
"""Events that add an ``operator_actions`` row (see ``orchestrator.engine.control``)."""
UNLOADED = "(unloaded)"
"""The ``locations.site`` of a plate a person took off the workcell (``operator.unload``)."""


def apply_event(conn: sqlite3.Connection, seq: int, run_id: str | None, kind: str, subject: str | None, actor: str,
                sim_time: float | None, wall_time: str, payload: Mapping[str, Any]) -> None:
    """Apply one event's change to the projection tables (kinds without one: nothing).

    Raises:
        KeyError, TypeError: the payload lacks what its kind needs.
        sqlite3.Error: the change violates the schema.
    """
    if kind.startswith("step."):
        _step(conn, seq, run_id, subject, kind[len("step."):], payload)
    elif kind == "run.created":
        row = {**payload, "parameters": canonical(payload["parameters"]), "status": "created", "operator": actor}
        conn.execute(f"INSERT INTO runs({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                     tuple(row.get(c) for c in RUN_COLUMNS))
    elif kind == "run.transition":
        dest, extra = payload["to"], ""
        if dest == "running":
            extra = ", sim_start = COALESCE(sim_start, ?)"
        elif dest in ("completed", "failed", "aborted"):
            extra = ", sim_end = ?"
        params: tuple[Any, ...] = (dest, payload.get("reason") or None) + ((sim_time,) if extra else ()) + (run_id,)
        conn.execute(f"UPDATE runs SET status = ?, detail = ?{extra} WHERE run_id = ?", params)
    elif kind == "measurement":
        conn.executemany(
            "INSERT INTO measurements(run_id, step_key, name, field, value, unit, sim_time) VALUES (?,?,?,?,?,?,?)",
            [(run_id, subject, payload["name"], f, v, u, sim_time) for f, (v, u) in payload["values"].items()])
    elif kind == "qc.verdict":
        conn.execute("INSERT INTO verdicts(run_id, step_key, criterion, value, passed, sim_time) VALUES (?,?,?,?,?,?)",
                     (run_id, subject, payload["criterion"], payload["value"], int(payload["passed"]), sim_time))
    elif kind == "deviation":
        conn.execute("INSERT INTO deviations(run_id, step_key, kind, detail, sim_time) VALUES (?,?,?,?,?)",
                     (run_id, subject, payload["kind"], payload["detail"], sim_time))
    elif kind == "labware.location":
        conn.execute("INSERT INTO locations(plate, run_id, site, sim_time) VALUES (?,?,?,?)"
                     " ON CONFLICT(plate) DO UPDATE SET site = excluded.site, sim_time = excluded.sim_time",
                     (payload["plate"], run_id, payload["site"], sim_time))
    elif kind in OPERATOR_REQUEST_KINDS:
        conn.execute("INSERT INTO operator_actions(run_id, step_key, action, operator, reason, wall_time)"
                     " VALUES (?,?,?,?,?,?)",
                     (run_id, payload.get("step"), kind[len("operator."):].replace(".", ":"), actor,
                      payload["reason"], wall_time))
    elif kind == "operator.unload":  # a person took a plate off the workcell: done, nothing to act on
        conn.execute("INSERT INTO operator_actions(run_id, step_key, action, operator, reason, wall_time, consumed)"
                     " VALUES (?,?,?,?,?,?,1)", (run_id, None, f"unload:{payload['plate']}", actor,
                                                  payload["reason"], wall_time))
        conn.execute("UPDATE locations SET site = ? WHERE plate = ?", (UNLOADED, payload["plate"]))
    elif kind == "operator.request.applied":
        conn.execute("UPDATE operator_actions SET consumed = 1 WHERE id = ?", (payload["request"],))


def _step(conn: sqlite3.Connection, seq: int, run_id: str | None, key: str | None, dest: str,
          payload: Mapping[str, Any]) -> None:
    """Upsert the step's row: created on first sight, later events change what they carry."""
    values = {k: v for k, v in payload.items() if k not in STEP_META}
    unknown = set(values) - STEP_COLUMNS
    if unknown:
        raise KeyError(f"step event with unknown field(s) {', '.join(sorted(unknown))}")
    for name in ("args", "result"):
        if name in values and values[name] is not None and not isinstance(values[name], str):
            values[name] = canonical(values[name])
    cols = "".join(f", {k}" for k in values)
    marks = "".join(", ?" for _ in values)
    sets = "".join(f", {k} = excluded.{k}" for k in values)
    conn.execute(
        f"INSERT INTO steps(run_id, key, static_key, kind, status, seq{cols}) VALUES (?, ?, ?, ?, ?, ?{marks})"
        f" ON CONFLICT(run_id, key) DO UPDATE SET status = excluded.status{sets}",
        (run_id, key, payload.get("static_key") or key, payload.get("kind") or "action", dest, seq, *values.values()),
    )
