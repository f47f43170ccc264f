"""Domain writes on top of :class:`~orchestrator.store.sqlite.Store`.

Each method appends exactly one event (so one hash-chain record); the store applies its
change to the projection tables in the same unit (:mod:`orchestrator.store.projector`).
The engine calls these *before* the side effect they describe (an intent before the
driver call) and after (its outcome).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.store.sqlite import Store


class Journal:
    """What the engine writes, attributed to ``actor`` (an operator or ``engine``)."""

    def __init__(self, store: Store, actor: str = "engine") -> None:
        self.store = store
        self.actor = actor

    # -- runs --------------------------------------------------------------------
    def run_created(self, run: Mapping[str, Any], *, actor: str) -> None:
        """Record a new run (status ``created``, operator ``actor``)."""
        self.store.append("run.created", dict(run), actor=actor, run_id=run["run_id"], sim_time=0.0)

    def run_transition(self, run_id: str, source: str, dest: str, sim_time: float, *, reason: str = "",
                       actor: str | None = None) -> None:
        """Record a run state change."""
        self.store.append("run.transition", {"from": source, "to": dest, "reason": reason},
                          actor=actor or self.actor, run_id=run_id, subject=run_id, sim_time=sim_time)

    # -- steps -------------------------------------------------------------------
    def step_transition(self, run_id: str, key: str, source: str, dest: str, sim_time: float, *,
                        static_key: str = "", kind: str = "action", fields: Mapping[str, Any] | None = None,
                        reason: str = "", actor: str | None = None) -> None:
        """Record a step state change; ``fields`` (columns of ``steps``) are what changed."""
        payload = {"from": source, "to": dest, "static_key": static_key or key, "kind": kind,
                   **({"reason": reason} if reason else {}), **dict(fields or {})}
        self.store.append("step." + dest, payload, actor=actor or self.actor, run_id=run_id, subject=key,
                          sim_time=sim_time)

    # -- results -----------------------------------------------------------------
    def measurement(self, run_id: str, step_key: str, name: str, values: Mapping[str, tuple[float, str]],
                    sim_time: float) -> None:
        """Record a measurement's fields (``{field: (value, unit)}``) under ``name``."""
        payload = {"name": name, "values": {f: [v, u] for f, (v, u) in values.items()}}
        self.store.append("measurement", payload, actor=self.actor, run_id=run_id, subject=step_key,
                          sim_time=sim_time)

    def verdict(self, run_id: str, step_key: str, criterion: str, value: float | None, passed: bool,
                sim_time: float) -> None:
        """Record a QC verdict against ``criterion`` (``viability >= 0.9``)."""
        self.store.append("qc.verdict", {"criterion": criterion, "value": value, "passed": passed},
                          actor=self.actor, run_id=run_id, subject=step_key, sim_time=sim_time)

    def deviation(self, run_id: str, step_key: str | None, kind: str, detail: str, sim_time: float,
                  *, actor: str | None = None) -> None:
        """Record a deviation (missed window, retry, rejected QC, operator decision ...)."""
        self.store.append("deviation", {"kind": kind, "detail": detail}, actor=actor or self.actor, run_id=run_id,
                          subject=step_key, sim_time=sim_time)

    def location(self, plate: str, site: str, sim_time: float, run_id: str | None = None) -> None:
        """Record that ``plate`` is now at ``site``."""
        self.store.append("labware.location", {"plate": plate, "site": site}, actor=self.actor, run_id=run_id,
                          subject=plate, sim_time=sim_time)

    def note(self, kind: str, payload: Mapping[str, Any], *, run_id: str | None = None, subject: str | None = None,
             sim_time: float | None = None, actor: str | None = None) -> None:
        """Record any other event (operator action, configuration, plan) with no projection."""
        self.store.append(kind, payload, actor=actor or self.actor, run_id=run_id, subject=subject, sim_time=sim_time)
