"""What a run already did, read back from the store: the basis of resume.

On resume the executor walks the protocol again from the top. A step the history
shows ``done`` is not executed again: its result is restored. A step with an intent
and no final outcome is *in doubt* and is resolved by its action's recovery class
(see :mod:`orchestrator.engine.recovery`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drivers import results as result_types
from orchestrator.store import Store

IN_DOUBT = frozenset({"running", "failed", "recovering", "retrying", "awaiting_operator"})
"""Statuses that mean "an attempt was started (or failed) and no final outcome was recorded"."""


@dataclass(frozen=True)
class StepRecord:
    """One step row as the store has it."""

    key: str
    static_key: str
    kind: str
    status: str
    instrument: str | None
    action: str | None
    args: dict[str, Any]
    attempt: int
    recovery: str | None
    start: float | None
    end: float | None
    result: dict[str, Any] | None


@dataclass(frozen=True)
class Decision:
    """An operator's recorded decision about a step."""

    id: int
    choice: str
    operator: str
    reason: str


@dataclass
class History:
    """A run's recorded past."""

    steps: dict[str, StepRecord] = field(default_factory=dict)
    moves: int = 0
    measured: set[str] = field(default_factory=set)
    judged: set[str] = field(default_factory=set)
    decisions: dict[str, Decision] = field(default_factory=dict)

    def in_doubt(self) -> list[StepRecord]:
        """Steps whose last attempt has no final outcome, in record order."""
        return [s for s in self.steps.values() if s.status in IN_DOUBT]


def load_history(store: Store, run_id: str) -> History:
    """Read a run's steps, plate locations and pending operator decisions."""
    history = History()
    for row in store.steps(run_id):
        history.steps[row["key"]] = StepRecord(
            key=row["key"], static_key=row["static_key"], kind=row["kind"], status=row["status"],
            instrument=row["instrument"], action=row["action"], args=json.loads(row["args"] or "{}"),
            attempt=row["attempt"] or 0, recovery=row["recovery"], start=row["start"], end=row["end"],
            result=json.loads(row["result"]) if row["result"] and row["result"].startswith("{") else None,
        )
        if row["kind"] == "transport":
            history.moves += 1
    measured = {r["step_key"] for r in store.query("SELECT DISTINCT step_key FROM measurements WHERE run_id = ?",
                                                  (run_id,))}
    history.measured = measured
    history.judged = {r["step_key"] for r in store.query("SELECT DISTINCT step_key FROM verdicts WHERE run_id = ?",
                                                         (run_id,))}
    for row in store.query("SELECT * FROM operator_actions WHERE run_id = ? AND consumed = 0 AND action LIKE 'confirm:%'"
                           " ORDER BY id", (run_id,)):
        history.decisions[row["step_key"]] = Decision(row["id"], row["action"].split(":", 1)[1], row["operator"],
                                                      row["reason"])
    return history


@dataclass(frozen=True)
class RestoredResult:
    """A recorded result read back from a step row: same reading interface as a live one."""

    kind: type
    values: dict[str, float]

    @property
    def primary(self) -> float:
        return self.values[self.kind.primary_field]  # type: ignore[attr-defined]

    def fields(self) -> dict[str, float]:
        return dict(self.values)

    def unit(self, name: str) -> str:
        return str(self.kind.units.get(name, ""))  # type: ignore[attr-defined]


def restore_result(record: StepRecord) -> RestoredResult | None:
    """The recorded result of a step, or None when it had none."""
    if not record.result:
        return None
    kind = getattr(result_types, str(record.result.get("type")), None)
    fields = {k: float(v) for k, v in record.result.items() if k != "type" and isinstance(v, (int, float))}
    if kind is None or getattr(kind, "primary_field", "") not in fields:
        return None
    return RestoredResult(kind, fields)


def locations_from(history: History, home_slot: Callable[[str], str], station: Callable[[str], str]) -> dict[str, str]:
    """Where each plate is according to the transport steps that finished, in order.

    Derived from the steps themselves (not a separate record), so a crash between a
    move's outcome and any later write cannot leave a stale location.
    """
    where: dict[str, str] = {}
    for record in history.steps.values():
        if record.kind != "transport" or record.status != "done":
            continue
        plate = str(record.args.get("plate"))
        if record.action in ("check_in", "store"):
            where[plate] = home_slot(plate)
        elif record.action == "fetch":
            where[plate] = station(plate)
        elif record.action == "transfer":
            where[plate] = str(record.args["destination"])
    return where
