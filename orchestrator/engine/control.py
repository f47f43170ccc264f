"""Operator requests that reach a running engine through the store.

``cellwright pause|resume|abort RUN`` and ``cellwright confirm RUN STEP`` may run in
another process than the engine: they write an ``operator_actions`` row and an
audit event; the engine reads pending rows at its safe points (between steps).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import CellwrightError
from orchestrator.store import Store

ACTIONS = ("pause", "resume", "abort", "confirm:done", "confirm:redo", "confirm:skip")


class RunPaused(CellwrightError):
    """The run stopped at a safe point (plates home) and can be resumed."""


class RunAborted(CellwrightError):
    """The run was aborted by an operator (plates home)."""


class AnonymousOperator(CellwrightError):
    """A change to a run was attempted without an operator identity."""


@dataclass(frozen=True)
class Request:
    """One pending operator request."""

    id: int
    action: str
    operator: str
    reason: str
    step_key: str | None


def record_request(store: Store, run_id: str, action: str, operator: str, reason: str,
                   step_key: str | None = None) -> int:
    """Record an operator request (and its audit event) for the engine to act on.

    Raises:
        AnonymousOperator: ``operator`` is empty.
        ValueError: unknown action.
    """
    if not operator or not operator.strip():
        raise AnonymousOperator("refusing an anonymous change: give --operator NAME or set CELLWRIGHT_OPERATOR")
    if action not in ACTIONS:
        raise ValueError(f"unknown operator action {action!r}; expected one of {', '.join(ACTIONS)}")
    store.append("operator." + action.replace(":", "."), {"reason": reason, "step": step_key},
                 actor=operator, run_id=run_id, subject=step_key or run_id)
    # The request's row was the last insert of this connection (see store.projector).
    return int(store.query("SELECT id FROM operator_actions WHERE rowid = last_insert_rowid()")[0]["id"])


def pending(store: Store, run_id: str) -> Request | None:
    """The oldest unconsumed pause/abort/resume request for a run, if any."""
    rows = store.query("SELECT * FROM operator_actions WHERE run_id = ? AND consumed = 0"
                       " AND action IN ('pause', 'abort', 'resume') ORDER BY id LIMIT 1", (run_id,))
    if not rows:
        return None
    r = rows[0]
    return Request(r["id"], r["action"], r["operator"], r["reason"], r["step_key"])


def consume(store: Store, run_id: str, request_id: int, sim_time: float) -> None:
    """Mark a request as acted upon (an audit event of its own)."""
    store.append("operator.request.applied", {"request": request_id}, actor="engine", run_id=run_id,
                 sim_time=sim_time)
