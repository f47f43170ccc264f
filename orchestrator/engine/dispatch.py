"""Journaled execution of one instrument action, with recovery.

Order of writes for one attempt (each is one hash-chained event):

1. ``step.running`` — the *intent*: instrument, action, arguments, attempt and an
   idempotency key ``run:step:attempt``; written before the driver is called;
2. the driver call;
3. ``step.done`` (with the result) or ``step.failed`` (with the error) — the *outcome*.

A step with an intent and no outcome is *in doubt* after a crash (see recovery).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from drivers.actions import ActionInfo
from drivers.errors import CellwrightError, InstrumentError, StateError
from orchestrator.engine.cell import Cell
from orchestrator.engine.states import StepState
from orchestrator.protocol.graph import RecoveryRule
from orchestrator.store import Journal

log = structlog.get_logger("cellwright.dispatch")


class RunFailed(CellwrightError):
    """The run cannot continue; ``str()`` says why."""


class OperatorNeeded(CellwrightError):
    """A decision needs a person and no operator desk can answer it."""


@dataclass(frozen=True)
class Decision:
    """An operator's answer about a step: ``done``, ``redo``, ``skip`` or ``fail``."""

    choice: str
    operator: str
    reason: str


class OperatorDesk:
    """Where questions for a person go. The base desk answers none of them."""

    async def decide(self, run_id: str, key: str, question: str) -> Decision:
        """Wait for a person's decision on step ``key``.

        Raises:
            OperatorNeeded: no person can be asked (the run then fails, saying why).
        """
        raise OperatorNeeded(f"run {run_id} step {key}: {question}")


DEFAULT_RULES: dict[str, RecoveryRule] = {
    # Safe to redo: retry with backoff, then ask.
    "repeatable": RecoveryRule("retry", retries=2, backoff_s=30.0, then="operator"),
    # The instrument can tell whether it happened: query, then retry if it did not.
    "query": RecoveryRule("retry", retries=2, backoff_s=30.0, then="operator"),
    # Never repeated silently.
    "operator": RecoveryRule("operator"),
}


@dataclass(frozen=True)
class Outcome:
    """What came of a step: ``done`` (with ``result``), ``skipped`` or ``failed``."""

    status: str
    result: Any = None
    start: float | None = None
    end: float | None = None


def action_info(cell: Cell, instrument: str, action: str) -> ActionInfo:
    """The catalogue entry of ``action`` on ``instrument``'s class."""
    return cell.actions[f"{cell.workcell.instruments[instrument].instrument_class}.{action}"]


class Dispatcher:
    """Runs single actions through the journal, the driver and the recovery rules."""

    def __init__(self, cell: Cell, journal: Journal, desk: OperatorDesk,
                 on_step: Callable[[str, str, str, str], None] | None = None) -> None:
        self.cell = cell
        self.journal = journal
        self.desk = desk
        self.on_step = on_step

    def _listener(self, run_id: str, static_key: str, kind: str, extra: dict[str, Any]) -> Callable[..., None]:
        def listen(model: StepState, source: str, dest: str, reason: str) -> None:
            fields = dict(extra)  # only what changed since the last transition
            extra.clear()
            self.journal.step_transition(run_id, model.key, source, dest, self.cell.clock.now(),
                                         static_key=static_key, kind=kind, fields=fields, reason=reason)
            if self.on_step is not None:
                self.on_step(run_id, model.key, dest, reason)

        return listen

    async def run(self, run_id: str, key: str, static_key: str, instrument: str, action: str,
                  args: Mapping[str, Any], *, kind: str = "action", timeout: float | None = None,
                  rules: Mapping[str, RecoveryRule] | None = None, planned_start: float | None = None,
                  journal_args: Mapping[str, Any] | None = None, first_attempt: int = 1,
                  on_done: Callable[[Any], None] | None = None) -> Outcome:
        """Execute one action with recovery.

        Args:
            args: driver arguments (plates as :class:`drivers.labware.Plate`).
            journal_args: JSON-able form of ``args`` for the record.
            rules: recovery rule per error kind (and ``default``); defaults by the
                action's recovery class.
            first_attempt: attempt number of the first call (> 1 when an in-doubt
                step is done again after a restart).
            on_done: called with the result inside the outcome's transaction, so what it
                records (measurements, verdicts, a new plate location) is written
                together with the outcome or not at all.
        Raises:
            RunFailed: the rules say fail, or an operator chose fail.
        """
        info = action_info(self.cell, instrument, action)
        fields: dict[str, Any] = {"instrument": instrument, "action": action,
                                  "args": dict(journal_args or {}), "recovery": info.recovery,
                                  "planned_start": planned_start}
        redo = first_attempt > 1
        step = StepState(key, self._listener(run_id, static_key, kind, fields), initial="retrying" if redo else "pending")
        try:
            return await self._attempts(run_id, key, step, fields, instrument, action, info, args, timeout, rules,
                                        first_attempt, on_done)
        finally:
            step.close()

    async def _attempts(self, run_id: str, key: str, step: StepState, fields: dict[str, Any], instrument: str,
                        action: str, info: ActionInfo, args: Mapping[str, Any], timeout: float | None,
                        rules: Mapping[str, RecoveryRule] | None, first_attempt: int,
                        on_done: Callable[[Any], None] | None) -> Outcome:
        clock = self.cell.clock
        attempt = first_attempt - 1
        retries_used = 0
        while True:
            attempt += 1
            start = clock.now()
            idempotency = f"{run_id}:{key}:{attempt}"
            fields.update(attempt=attempt, idempotency=idempotency, start=start)
            with self.journal.store.atomic():  # "ready" and the intent: one write
                if step.state == "pending":
                    step.ready()
                step.start()
            self.journal.store.flush()  # the intent is durable before the driver is called
            try:
                result = await self.cell.invoke(instrument, action, args, timeout, idempotency)
            except (InstrumentError, StateError) as exc:
                kind = exc.kind if isinstance(exc, InstrumentError) else "state"
                log.warning("step failed", run_id=run_id, step=key, device=instrument, action=action,
                            attempt=attempt, sim_time=clock.now(), error=str(exc), kind=kind)
                fields.update(error=f"{type(exc).__name__}: {exc}", end=clock.now())
                step.error(reason=kind)
                step.recover()
                rule = _rule_for(kind, info.recovery, rules)
                if info.recovery == "query" and isinstance(exc, InstrumentError):
                    happened = await self.cell.outcome(instrument, action, args)
                    if happened:
                        self.journal.deviation(run_id, key, "recovered-by-query",
                                               f"{action} reported {kind} but {instrument} confirms it took effect",
                                               clock.now())
                        fields.update(end=clock.now(), result=None)
                        step.confirm(reason="confirmed by instrument")
                        return Outcome("done", None, start, clock.now())
                policy = rule.policy
                if policy == "retry" and kind != "state" and retries_used < rule.retries:
                    wait = rule.backoff_s * (2**retries_used)
                    retries_used += 1
                    self.journal.deviation(run_id, key, "retry",
                                           f"{exc} — retry {retries_used}/{rule.retries} in {wait:.0f} s", clock.now())
                    if isinstance(exc, InstrumentError) and self.cell.states[instrument].state == "error":
                        self.journal.store.flush()
                        await self.cell.recover_instrument(instrument)
                    step.retry(reason=f"retry {retries_used}")
                    await clock.sleep(wait)
                    continue
                if policy == "retry":
                    policy = rule.then
                if policy == "skip":
                    self.journal.deviation(run_id, key, "skipped-after-error", str(exc), clock.now())
                    step.skip(reason=str(exc))
                    return Outcome("skipped", None, start, clock.now())
                if policy == "operator":
                    decision = await self._ask_person(run_id, key, step, f"{action} on {instrument} failed: {exc}")
                    if decision == "redo":
                        continue
                    if decision == "done":
                        return Outcome("done", None, start, clock.now())
                    if decision == "skip":
                        return Outcome("skipped", None, start, clock.now())
                step.give_up(reason=str(exc))
                raise RunFailed(f"step {key}: {exc}") from exc
            fields.update(end=clock.now(), result=_result_record(result), error=None)
            with self.journal.store.atomic():  # the outcome and what it produced: one write
                step.finish()
                if on_done is not None:
                    on_done(result)
            log.info("step done", run_id=run_id, step=key, device=instrument, action=action, attempt=attempt,
                     sim_time=clock.now(), seconds=clock.now() - start)
            return Outcome("done", result, start, clock.now())

    async def _ask_person(self, run_id: str, key: str, step: StepState, question: str) -> str:
        step.ask_operator(reason=question)
        try:
            decision = await self.desk.decide(run_id, key, question)
        except OperatorNeeded as exc:
            step.give_up(reason=str(exc))
            raise RunFailed(f"step {key} needs an operator: {question}") from None
        self.journal.note("operator.decision", {"step": key, "choice": decision.choice, "reason": decision.reason},
                          run_id=run_id, subject=key, sim_time=self.cell.clock.now(), actor=decision.operator)
        if decision.choice == "redo":
            return "redo"
        if decision.choice == "done":
            step.finish(reason=f"operator {decision.operator}: {decision.reason}")
            return "done"
        if decision.choice == "skip":
            step.skip(reason=f"operator {decision.operator}: {decision.reason}")
            return "skip"
        return "fail"


def _rule_for(kind: str, recovery: str, rules: Mapping[str, RecoveryRule] | None) -> RecoveryRule:
    if rules:
        if kind in rules:
            return rules[kind]
        if "default" in rules:
            return rules["default"]
    if kind == "state":
        return RecoveryRule("fail")
    return DEFAULT_RULES[recovery]


def _result_record(result: Any) -> Any:
    if result is None:
        return None
    fields = getattr(result, "fields", None)
    if callable(fields):
        return {"type": type(result).__name__, **fields()}
    if isinstance(result, (int, float, str, bool)):
        return result
    return repr(result)
