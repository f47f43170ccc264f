"""Resolving in-doubt steps after a crash: never repeat a physical step silently.

An in-doubt step is resolved by its action's recovery class:

* ``repeatable`` — done again (a read, an image);
* ``query`` — the instrument is asked whether it took effect (an incubator knows
  whether the plate is on its transfer station); yes → done, no → done again,
  cannot tell → an operator decides;
* ``operator`` — a person decides with ``cellwright confirm RUN STEP
  --done|--redo|--skip --reason TEXT``; until then the run stays paused.

Every resolution is recorded as a deviation naming how it was resolved.
"""

from __future__ import annotations

from typing import Any

from orchestrator.engine.cell import Cell
from orchestrator.engine.control import consume
from orchestrator.engine.dispatch import OperatorNeeded
from orchestrator.engine.history import History, StepRecord
from orchestrator.store import Journal


async def resolve(cell: Cell, journal: Journal, history: History, run_id: str, record: StepRecord,
                  args: dict[str, Any]) -> str:
    """Decide what to do with one in-doubt step: ``done``, ``redo`` or ``skip``.

    Args:
        args: the driver arguments (with plate handles) the step was called with.
    Raises:
        OperatorNeeded: the step needs a person's decision that is not recorded yet.
    """
    now = cell.clock.now()
    how: str
    if record.recovery == "repeatable":
        choice, how = "redo", "repeatable action: done again"
    elif record.recovery == "query":
        happened = await cell.outcome(record.instrument or "", record.action or "", args)
        if happened is True:
            choice, how = "done", f"{record.instrument} confirms it took effect"
        elif happened is False:
            choice, how = "redo", f"{record.instrument} confirms it did not take effect: done again"
        else:
            choice, how = _operator(journal, history, run_id, record, now)
    else:
        choice, how = _operator(journal, history, run_id, record, now)
    journal.deviation(run_id, record.key, "in-doubt", f"{record.action} on {record.instrument} "
                      f"(attempt {record.attempt}, status {record.status}) resolved: {choice} — {how}", now)
    if choice == "done":
        journal.step_transition(run_id, record.key, record.status, "done", now, static_key=record.static_key,
                                kind=record.kind, reason=f"in doubt, resolved: {how}")
    elif choice == "skip":
        journal.step_transition(run_id, record.key, record.status, "skipped", now, static_key=record.static_key,
                                kind=record.kind, reason=f"in doubt, resolved: {how}")
    return choice


def _operator(journal: Journal, history: History, run_id: str, record: StepRecord, now: float) -> tuple[str, str]:
    decision = history.decisions.pop(record.key, None)
    if decision is None:
        raise OperatorNeeded(
            f"step {record.key} ({record.action} on {record.instrument}) was interrupted and may or may not have "
            f"happened; a person must check and run: cellwright confirm {run_id} '{record.key}' --done|--redo|--skip "
            f"--reason TEXT")
    consume(journal.store, run_id, decision.id, now)
    return decision.choice, f"operator {decision.operator}: {decision.reason}"
