"""Domain writes on top of :class:`~orchestrator.store.sqlite.Store`.

Each method appends exactly one event (so one hash-chain record) and updates the
projection it concerns in the same transaction. The engine calls these *before* the
side effect they describe (an intent before the driver call) and after (its outcome).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from orchestrator.store.sqlite import Store, canonical


class Journal:
    """What the engine writes, attributed to ``actor`` (an operator or ``engine``)."""

    def __init__(self, store: Store, actor: str = "engine") -> None:
        self.store = store
        self.actor = actor

    # -- runs --------------------------------------------------------------------
    def run_created(self, run: Mapping[str, Any], *, actor: str) -> None:
        """Record a new run (status ``created``)."""
        cols = ("run_id", "protocol", "version", "content_hash", "source", "parameters", "workcell", "seed",
                "clock", "status", "operator", "created_wall", "origin", "campaign")
        row = {**run, "parameters": canonical(run["parameters"]), "status": "created", "operator": actor}

        def project(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"INSERT INTO runs({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                tuple(row.get(c) for c in cols),
            )

        self.store.append("run.created", dict(run), actor=actor, run_id=run["run_id"], sim_time=0.0, project=project)

    def run_transition(self, run_id: str, source: str, dest: str, sim_time: float, *, reason: str = "",
                       actor: str | None = None) -> None:
        """Record a run state change."""

        def project(conn: sqlite3.Connection) -> None:
            extra = ""
            if dest == "running":
                extra = ", sim_start = COALESCE(sim_start, ?)"
            elif dest in ("completed", "failed", "aborted"):
                extra = ", sim_end = ?"
            params: tuple[Any, ...] = (dest, reason or None) + ((sim_time,) if extra else ()) + (run_id,)
            conn.execute(f"UPDATE runs SET status = ?, detail = ?{extra} WHERE run_id = ?", params)

        self.store.append("run.transition", {"from": source, "to": dest, "reason": reason},
                          actor=actor or self.actor, run_id=run_id, subject=run_id, sim_time=sim_time, project=project)

    # -- steps -------------------------------------------------------------------
    def step_transition(self, run_id: str, key: str, source: str, dest: str, sim_time: float, *,
                        static_key: str = "", kind: str = "action", fields: Mapping[str, Any] | None = None,
                        reason: str = "", actor: str | None = None) -> None:
        """Record a step state change and update its row (created on first sight)."""
        values = dict(fields or {})
        for name in ("args", "result"):
            if name in values and not isinstance(values[name], str) and values[name] is not None:
                values[name] = canonical(values[name])

        def project(conn: sqlite3.Connection) -> None:
            seq = self.store.pending_seq
            cols = ", ".join(values)
            marks = "".join(", ?" for _ in values)
            sets = "".join(f", {k} = excluded.{k}" for k in values)
            conn.execute(
                f"INSERT INTO steps(run_id, key, static_key, kind, status, seq{', ' + cols if cols else ''})"
                f" VALUES (?, ?, ?, ?, ?, ?{marks})"
                f" ON CONFLICT(run_id, key) DO UPDATE SET status = excluded.status{sets}",
                (run_id, key, static_key or key, kind, dest, seq, *values.values()),
            )

        payload = {"from": source, "to": dest, "static_key": static_key or key, "kind": kind,
                   **({"reason": reason} if reason else {}), **dict(fields or {})}
        self.store.append("step." + dest, payload, actor=actor or self.actor, run_id=run_id, subject=key,
                          sim_time=sim_time, project=project)

    # -- results -----------------------------------------------------------------
    def measurement(self, run_id: str, step_key: str, name: str, values: Mapping[str, tuple[float, str]],
                    sim_time: float) -> None:
        """Record a measurement's fields (``{field: (value, unit)}``) under ``name``."""

        def project(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO measurements(run_id, step_key, name, field, value, unit, sim_time) VALUES (?,?,?,?,?,?,?)",
                [(run_id, step_key, name, f, v, u, sim_time) for f, (v, u) in values.items()],
            )

        payload = {"name": name, "values": {f: [v, u] for f, (v, u) in values.items()}}
        self.store.append("measurement", payload, actor=self.actor, run_id=run_id, subject=step_key,
                          sim_time=sim_time, project=project)

    def verdict(self, run_id: str, step_key: str, criterion: str, value: float | None, passed: bool,
                sim_time: float) -> None:
        """Record a QC verdict against ``criterion`` (``viability >= 0.9``)."""

        def project(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO verdicts(run_id, step_key, criterion, value, passed, sim_time) VALUES (?,?,?,?,?,?)",
                (run_id, step_key, criterion, value, int(passed), sim_time),
            )

        self.store.append("qc.verdict", {"criterion": criterion, "value": value, "passed": passed},
                          actor=self.actor, run_id=run_id, subject=step_key, sim_time=sim_time, project=project)

    def deviation(self, run_id: str, step_key: str | None, kind: str, detail: str, sim_time: float,
                  *, actor: str | None = None) -> None:
        """Record a deviation (missed window, retry, rejected QC, operator decision ...)."""

        def project(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO deviations(run_id, step_key, kind, detail, sim_time) VALUES (?,?,?,?,?)",
                (run_id, step_key, kind, detail, sim_time),
            )

        self.store.append("deviation", {"kind": kind, "detail": detail}, actor=actor or self.actor, run_id=run_id,
                          subject=step_key, sim_time=sim_time, project=project)

    def location(self, plate: str, site: str, sim_time: float, run_id: str | None = None) -> None:
        """Record that ``plate`` is now at ``site``."""

        def project(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO locations(plate, run_id, site, sim_time) VALUES (?,?,?,?)"
                " ON CONFLICT(plate) DO UPDATE SET site = excluded.site, sim_time = excluded.sim_time",
                (plate, run_id, site, sim_time),
            )

        self.store.append("labware.location", {"plate": plate, "site": site}, actor=self.actor, run_id=run_id,
                          subject=plate, sim_time=sim_time, project=project)

    def note(self, kind: str, payload: Mapping[str, Any], *, run_id: str | None = None, subject: str | None = None,
             sim_time: float | None = None, actor: str | None = None) -> None:
        """Record any other event (operator action, configuration, plan) with no projection."""
        self.store.append(kind, payload, actor=actor or self.actor, run_id=run_id, subject=subject, sim_time=sim_time)
