"""Operator requests that reach a running engine through the store.

``cellwright pause|resume|abort RUN`` and ``cellwright confirm RUN STEP`` may run in
another process than the engine: they write an ``operator_actions`` row and an
audit event; the engine reads pending rows at its safe points (between steps).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import CellwrightError
from orchestrator.store import Store, sessions
from orchestrator.store.projector import UNLOADED

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


def _require_identity(operator: str) -> None:
    """Raises AnonymousOperator for an empty or blank identity."""
    if not operator or not operator.strip():
        raise AnonymousOperator("refusing an anonymous change: give --operator NAME or set CELLWRIGHT_OPERATOR")


def record_request(store: Store, run_id: str, action: str, operator: str, reason: str,
                   step_key: str | None = None) -> int:
    """Record an operator request (and its audit event) for the engine to act on.

    Raises:
        AnonymousOperator: ``operator`` is empty.
        ValueError: unknown action.
    """
    _require_identity(operator)
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


FINAL = ("completed", "failed", "aborted")
"""Run statuses nothing changes any more."""


def record_unload(store: Store, plate: str, operator: str, reason: str) -> tuple[str, str]:
    """Record that a person took ``plate`` off the workcell (e.g. one a stopped run left on
    an instrument), so the next engine no longer keeps its place.

    Returns:
        ``(run_id, site)``: the plate's run and where the record had it.
    Raises:
        AnonymousOperator: no identity.
        CellwrightError: no reason, an unknown or already unloaded plate, or a plate of an
            unfinished run (resume or abort that run: it takes its plates home).
    """
    _require_identity(operator)
    if not reason.strip():
        raise CellwrightError("unload needs --reason TEXT (where the plate went)")
    rows = store.query("SELECT l.run_id, l.site, r.status FROM locations l JOIN runs r ON r.run_id = l.run_id"
                       " WHERE l.plate = ?", (plate,))
    if not rows:
        known = [r["plate"] for r in store.query("SELECT plate FROM locations ORDER BY plate LIMIT 8")]
        raise CellwrightError(f"no plate {plate!r} in the record (plates: {', '.join(known) or 'none'})")
    run_id, site, status = rows[0]["run_id"], rows[0]["site"], rows[0]["status"]
    if site == UNLOADED:
        (done,) = store.query("SELECT operator, reason, wall_time FROM operator_actions WHERE action = ?"
                              " ORDER BY id DESC LIMIT 1", (f"unload:{plate}",))
        raise CellwrightError(f"plate {plate} was already unloaded by {done['operator']} at {done['wall_time']} "
                              f"({done['reason']})")
    if status not in FINAL:
        raise CellwrightError(f"plate {plate} belongs to run {run_id}, which is {status}: `cellwright resume "
                              f"{run_id}` takes its plates home, or `cellwright abort {run_id} --reason TEXT`; "
                              f"unload is for plates of finished runs")
    store.append("operator.unload", {"plate": plate, "from": site, "reason": reason.strip()},
                 actor=operator.strip(), run_id=run_id, subject=plate)
    return run_id, site


def record_loss_accepted(store: Store, operator: str, reason: str) -> int:
    """Accept, after checking the plates, that a deleted redo log took events with it (see
    :mod:`orchestrator.store.sessions`); engines may then run on the database again.

    Returns:
        The seq of the engine session whose log was lost.
    Raises:
        AnonymousOperator: no identity.
        CellwrightError: no reason, or no lost log to accept.
    """
    _require_identity(operator)
    if not reason.strip():
        raise CellwrightError("accept-loss needs --reason TEXT (what you checked)")
    lost = sessions.lost_redo_log(store.conn, store.redo_path)
    if lost is None:
        raise CellwrightError(f"{store.path}: no redo log is missing; there is nothing to accept")
    store.append(sessions.LOSS_ACCEPTED, {"engine_started_seq": lost[0], "reason": reason.strip()},
                 actor=operator.strip())
    return lost[0]
