"""Executes one run: walks its compiled protocol graph in time.

Timing rules (all seconds of the engine clock):

* an action starts no earlier than every lag's ``end(after) + min``; when it starts
  after ``end(after) + max`` the missed window is recorded as a deviation;
* iteration ``k`` of a repeat ideally starts at ``anchor + k * every`` where the anchor
  is the actual start of iteration 0 (no drift); starting more than ``window`` away
  from that is a deviation;
* the plate is brought to the instrument *before* the target time (the expected
  transport time is the lead), and taken home before any wait longer than the
  workcell's ``keep_out``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from drivers.actions import ActionInfo
from drivers.errors import CellwrightError, StorageFault
from drivers.labware import Plate
from orchestrator.engine.cell import Cell
from orchestrator.engine.control import RunAborted, RunPaused, consume, pending
from orchestrator.engine.dispatch import Dispatcher, OperatorNeeded, RunFailed
from orchestrator.engine.history import IN_DOUBT, History, StepRecord, restore_result
from orchestrator.engine.recovery import resolve
from orchestrator.engine.transport import Transport
from orchestrator.protocol.graph import (
    ActionNode,
    Expr,
    Node,
    OperatorNode,
    ProtocolGraph,
    RepeatNode,
    WaitNode,
)
from orchestrator.store import Journal

log = structlog.get_logger("cellwright.run")


OVERRUN_S = 60.0
"""A planned step ending this much later than planned triggers a re-plan (s)."""


class Saved(float):
    """A saved measurement: compares as its primary value, fields as attributes."""

    fields: dict[str, float]

    def __new__(cls, primary: float, fields: Mapping[str, float]) -> "Saved":
        obj = super().__new__(cls, primary)
        obj.fields = dict(fields)
        return obj

    def __getattr__(self, name: str) -> float:
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class _IterationTarget:
    ideal: float
    window: float
    key: str


@dataclass
class RunCounters:
    """What the progress view and the summary show."""

    steps_done: int = 0
    steps_failed: int = 0
    steps_skipped: int = 0
    moves: int = 0
    current: str = ""
    deviations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class RunExecutor:
    """Interprets one run's graph on a shared cell.

    Args:
        plates: labware name -> plate handle.
        on_event: progress listener ``(run_id, kind, detail)``.
        history: what the run already did (resume).
        release_s: earliest clock time of the first step.
        plan: planned start (clock s) per step key; a planned step starts then (or as
            soon after as its lags allow), an unplanned one at its earliest time.
    """

    def __init__(self, run_id: str, graph: ProtocolGraph, plates: Mapping[str, Plate], cell: Cell,
                 journal: Journal, dispatcher: Dispatcher,
                 on_event: Callable[[str, str, str], None] | None = None,
                 history: History | None = None, release_s: float = 0.0,
                 plan: Mapping[str, float] | None = None) -> None:
        self.run_id = run_id
        self.graph = graph
        self.plates = dict(plates)
        self.cell = cell
        self.clock = cell.clock
        self.journal = journal
        self.dispatcher = dispatcher
        self.on_event = on_event
        self.env: dict[str, Any] = dict(graph.parameters)
        self.last_end: dict[str, float] = {}
        self.counters = RunCounters()
        self._target: _IterationTarget | None = None
        self._iteration_start: float | None = None
        self._rejected: dict[str, list[str]] = {}
        self.history = history or History()
        self.release_s = release_s
        self.plan: dict[str, float] = dict(plan or {})
        self.decisions: dict[str, bool] = {}
        """Branches on measurements decided so far (dynamic key -> taken), for re-planning."""
        self.actual: dict[str, tuple[float, float]] = {}
        """Started actions: dynamic key -> (start, duration so far), for re-planning."""
        self.replanner: Callable[[RunExecutor, str], None] | None = None
        """Called when reality leaves the plan (an unplanned step, an overrun); it updates
        :attr:`plan` of every run."""
        self.counters.moves = self.history.moves
        self.transport = Transport(cell, dispatcher, journal, run_id, self._move_key)

    def _move_key(self, action: str) -> str:
        self.counters.moves += 1
        return f"move{self.counters.moves:04d}.{action}"

    def _emit(self, kind: str, detail: str) -> None:
        if self.on_event is not None:
            self.on_event(self.run_id, kind, detail)

    # -- entry ---------------------------------------------------------------------
    async def execute(self) -> None:
        """Check plates in, run every step, take plates home.

        Raises:
            RunFailed: a step failed for good, or a QC rejection with ``on_reject: fail``.
        """
        await self.transport.restore(self.plates.values(), self.history)
        self._emit("restored", self.run_id)
        await self.clock.sleep_until(self.release_s)
        try:
            await self._block(self.graph.steps, "")
        except StorageFault:
            raise  # nothing physical without a record: the plates stay where they are
        except BaseException:
            # The run stops: take the plates home if possible, but report why it stopped,
            # not a failure of the way home (the engine marks plates left behind).
            try:
                await self.transport.home_all()
            except CellwrightError as exc:
                log.error("could not take plates home", run_id=self.run_id, error=str(exc))
            raise
        await self.transport.home_all()

    async def checkpoint(self) -> None:
        """A safe point: act on a pending operator pause or abort (plates go home first).

        Raises:
            RunPaused, RunAborted: as requested.
        """
        request = pending(self.journal.store, self.run_id)
        if request is None or request.action == "resume":
            return
        await self.transport.home_all()
        consume(self.journal.store, self.run_id, request.id, self.clock.now())
        reason = f"{request.action} by {request.operator}: {request.reason}"
        if request.action == "pause":
            raise RunPaused(reason)
        raise RunAborted(reason)

    # -- nodes ---------------------------------------------------------------------
    async def _block(self, nodes: tuple[Node, ...], prefix: str) -> None:
        for node in nodes:
            key = f"{prefix}{node.id}"
            await self.checkpoint()
            past = self.history.steps.get(key)
            if past is not None and past.kind == "branch":
                self.counters.steps_skipped += 1
                continue
            if node.when is not None:
                decided = self._true(node.when)
                if node.when.names - {"iteration"}:  # a branch on a measurement: known only now
                    self.decisions[key] = decided
                if not decided:
                    self._skip(key, node, f"condition false: {node.when.source}")
                    continue
            if isinstance(node, ActionNode):
                await self._action(node, key)
            elif isinstance(node, WaitNode):
                await self._wait_node(node, key)
            elif isinstance(node, OperatorNode):
                await self._operator_task(node, key)
            elif isinstance(node, RepeatNode):
                await self._repeat(node, key)
            else:
                await self._block(node.steps, key + ".")

    def _true(self, expr: Expr) -> bool:
        return bool(expr.evaluate(self._scope()))

    def _scope(self) -> dict[str, Any]:
        return self.env

    def _skip(self, key: str, node: Node, reason: str) -> None:
        self.journal.step_transition(self.run_id, key, "pending", "skipped", self.clock.now(), static_key=node.key,
                                     kind="branch", reason=reason)
        self.counters.steps_skipped += 1

    async def _repeat(self, node: RepeatNode, key: str) -> None:
        anchor: float | None = None
        k = 0
        while True:
            if node.times is not None and k >= node.times:
                break
            if k >= node.max_times:
                self.journal.deviation(self.run_id, key, "repeat-limit", f"stopped after max_times={node.max_times}",
                                       self.clock.now())
                break
            self.env["iteration"] = k
            if node.every_s is not None:
                ideal = self.clock.now() if anchor is None else anchor + k * node.every_s
                self._target = _IterationTarget(ideal, node.window_s, f"{key}[{k}]")
            self._emit("iteration", f"{key}[{k}]")
            await self._block(node.steps, f"{key}[{k}].")
            if anchor is None and node.every_s is not None:
                anchor = self._iteration_start
            self._target = None
            self._iteration_start = None
            k += 1
            if node.until is not None and self._true(node.until):
                break
        self.env.pop("iteration", None)

    async def _wait_node(self, node: WaitNode, key: str) -> None:
        past = self.history.steps.get(key)
        if past is not None and past.status == "done":
            self.last_end[node.key] = past.end if past.end is not None else self.clock.now()
            return
        start = past.start if past is not None and past.start is not None else self.clock.now()
        if past is None:
            self.journal.step_transition(self.run_id, key, "pending", "running", start, static_key=node.key,
                                         kind="wait", fields={"start": start, "planned_start": start})
        await self._wait_until(start + node.seconds)
        end = self.clock.now()
        self.journal.step_transition(self.run_id, key, "running", "done", end, static_key=node.key, kind="wait",
                                     fields={"end": end})
        self.last_end[node.key] = end

    async def _operator_task(self, node: OperatorNode, key: str) -> None:
        """A task for a person: done once `cellwright confirm RUN STEP --done|--skip` says so."""
        past = self.history.steps.get(key)
        if past is not None and past.status in ("done", "skipped"):
            self.last_end[node.key] = past.end if past.end is not None else self.clock.now()
            return
        now = self.clock.now()
        if past is None:
            self.journal.step_transition(self.run_id, key, "pending", "awaiting_operator", now, static_key=node.key,
                                         kind="operator", fields={"start": now, "args": {"task": node.message}},
                                         reason=node.message)
        decision = self.history.decisions.pop(key, None)
        if decision is None:
            await self.transport.home_all()
            raise OperatorNeeded(f"step {key} is a task for a person: {node.message} — when it is done: "
                                 f"cellwright confirm {self.run_id} '{key}' --done --reason TEXT, then resume")
        consume(self.journal.store, self.run_id, decision.id, now)
        dest = "skipped" if decision.choice == "skip" else "done"
        self.journal.step_transition(self.run_id, key, "awaiting_operator", dest, now, static_key=node.key,
                                     kind="operator", fields={"end": now},
                                     reason=f"operator {decision.operator}: {decision.reason}",
                                     actor=decision.operator)
        self.last_end[node.key] = now

    async def _wait_until(self, when: float, plate: Plate | None = None, instrument: str | None = None) -> None:
        """Sleep until ``when`` less the time to bring ``plate`` to ``instrument``; plates go
        home first if the wait is long (and the lead is then re-estimated from home)."""
        lead = self.transport.estimate_bring(plate, instrument) if plate is not None and instrument else 0.0
        if when - lead - self.clock.now() > self.cell.workcell.keep_out_s and self.transport.out_plates():
            await self.transport.home_all()
            if plate is not None and instrument:
                lead = self.transport.estimate_bring(plate, instrument)
        await self.clock.sleep_until(when - lead)

    # -- actions -------------------------------------------------------------------
    def _window(self, node: ActionNode) -> tuple[float, float | None, str | None]:
        earliest, deadline, which = self.clock.now(), None, None
        for lag in node.lags:
            end = self.last_end.get(lag.after)
            if end is None:
                continue
            earliest = max(earliest, end + lag.min_s)
            if lag.max_s is not None and (deadline is None or end + lag.max_s < deadline):
                deadline, which = end + lag.max_s, lag.after
        return earliest, deadline, which

    def _arguments(self, node: ActionNode, info: ActionInfo) -> tuple[dict[str, Any], dict[str, Any], Plate | None]:
        args: dict[str, Any] = {}
        record: dict[str, Any] = {}
        plate: Plate | None = None
        for name, value in node.args.items():
            if isinstance(value, Expr):
                value = value.evaluate(self._scope())
            param = info.param(name)
            if param is not None and param.kind == "plate":
                plate = self.plates[value]
                args[name], record[name] = plate, plate.id
            else:
                args[name] = record[name] = value
        return args, record, plate

    def _instrument_for(self, node: ActionNode, plate: Plate | None) -> str:
        if node.instrument:
            return node.instrument
        names = [n for n in self.cell.workcell.of_class(node.instrument_class) if self.cell.workcell.can(n, node.action)]
        if not names:
            raise RunFailed(f"step {node.key}: no {node.instrument_class} in the workcell can {node.action}")
        if plate is not None:
            for name in names:
                if self.cell.sites[name].holds(plate.id):
                    return name
        sites = self.cell.sites
        return min(names, key=lambda n: (len(sites[n].holders) + sites[n].queue) / sites[n].capacity)

    async def _action(self, node: ActionNode, key: str) -> None:
        info = self.cell.actions[f"{node.instrument_class}.{node.action}"]
        args, record, plate = self._arguments(node, info)
        past = self.history.steps.get(key)
        first_attempt = 1
        if past is not None and past.status in IN_DOUBT:
            choice = await resolve(self.cell, self.journal, self.history, self.run_id, past, args)
            if choice == "redo":
                first_attempt = past.attempt + 1
            else:
                past = replace(past, status="done" if choice == "done" else "skipped")
        if past is not None and past.status in ("done", "skipped"):
            self._replay(node, key, past)
            return
        instrument = past.instrument if past is not None and past.instrument else self._instrument_for(node, plate)
        lag_earliest, deadline, which = self._window(node)
        target = self._target
        if self.plan and key not in self.plan and self.replanner is not None:
            self.replanner(self, f"{key} was not in the plan (a branch the planner could not foresee)")
        while True:  # a re-plan may move this step while it waits
            planned = self.plan.get(key)
            earliest = lag_earliest
            if planned is not None:  # the planner chose this start (within every window)
                earliest = max(earliest, planned)
            elif target is not None:
                earliest = max(earliest, target.ideal)
            await self._wait_until(earliest, plate, instrument)
            if self.plan.get(key) == planned:
                break
        if plate is not None:
            await self._to_site(plate, instrument)
        await self.clock.sleep_until(earliest)
        self.counters.current = key
        self._emit("step", key)
        outcome = await self.dispatcher.run(self.run_id, key, node.key, instrument, node.action, args,
                                            timeout=node.timeout_s, rules=node.on_error or None,
                                            planned_start=earliest, journal_args=record,
                                            first_attempt=first_attempt,
                                            on_done=lambda result: self._record_result(node, key, result))
        start = outcome.start if outcome.start is not None else self.clock.now()
        end = outcome.end if outcome.end is not None else self.clock.now()
        self.actual[key] = (start, end - start)
        if planned is not None and self.replanner is not None:
            late = end - (planned + self.cell.estimate(instrument, node.action, args))
            if late > OVERRUN_S:
                self.replanner(self, f"{key} ended {late:.0f} s later than planned")
        if target is not None:
            self._target = None
            self._iteration_start = start
            if abs(start - target.ideal) > target.window:
                self._deviation(key, "window-missed",
                                f"{target.key} started {start - target.ideal:+.0f} s from its ideal time "
                                f"(window ±{target.window:.0f} s)")
        if deadline is not None and start > deadline:
            self._deviation(key, "window-missed", f"started {start - deadline:.0f} s after the latest allowed "
                                                  f"start relative to {which}")
        if outcome.status == "skipped":
            self.counters.steps_skipped += 1
            return
        self.counters.steps_done += 1
        self.last_end[node.key] = outcome.end if outcome.end is not None else self.clock.now()
        self._judge(node, key)

    def _replay(self, node: ActionNode, key: str, past: StepRecord) -> None:
        """Account for a step the history shows finished: restore its result, do not run it."""
        if self._target is not None and past.start is not None:
            self._target = None
            self._iteration_start = past.start
        if past.status == "skipped":
            self.counters.steps_skipped += 1
            return
        self.counters.steps_done += 1
        self.last_end[node.key] = past.end if past.end is not None else self.clock.now()
        restored = restore_result(past)
        if restored is None:
            return
        # The outcome was journaled but the process may have died before the
        # measurement or verdicts were: record what is missing, so no result is lost.
        self._record_result(node, key, restored, measurement=key not in self.history.measured,
                            verdicts=key not in self.history.judged)
        if key in self.history.judged:
            self._rejected.pop(key, None)  # judged before the crash: deviations already recorded

    async def _to_site(self, plate: Plate, instrument: str) -> None:
        site = self.cell.sites[instrument]
        if site.holds(plate.id):
            return
        if not site.try_take(plate.id):
            if not self.transport.at_home(plate):
                await self.transport.home(plate)
            await site.take(plate.id)
        await self.transport.bring(plate, instrument)

    def _record_result(self, node: ActionNode, key: str, result: Any, measurement: bool = True,
                       verdicts: bool = True) -> None:
        """Record a result's measurement and QC verdicts; rejections are acted on by :meth:`_judge`."""
        if result is None or not hasattr(result, "fields"):
            return
        now = self.clock.now()
        fields: dict[str, float] = result.fields()
        name = node.save or node.id
        if measurement:
            self.journal.measurement(self.run_id, key, name, {f: (v, result.unit(f)) for f, v in fields.items()}, now)
        if node.save:
            self.env[node.save] = Saved(result.primary, fields)
        rejected = []
        for criterion in node.accept:
            value = fields.get(criterion.field)
            passed = value is not None and criterion.check(value)
            if verdicts:
                self.journal.verdict(self.run_id, key, f"{criterion.field} {criterion.op} {criterion.value:g}",
                                     value, passed, now)
            if not passed:
                rejected.append(f"{criterion.field} = {value} fails {criterion.source}")
        self._rejected[key] = rejected

    def _judge(self, node: ActionNode, key: str) -> None:
        """Deviations for rejected QC criteria, and what ``on_reject`` says to do."""
        for detail in self._rejected.pop(key, []):
            self._deviation(key, "qc-rejected", detail)
            if node.on_reject == "fail":
                raise RunFailed(f"step {key}: QC rejected ({detail})")
            if node.on_reject == "hold":
                self.counters.extra["hold"] = True

    def _deviation(self, key: str, kind: str, detail: str) -> None:
        self.counters.deviations += 1
        self.journal.deviation(self.run_id, key, kind, detail, self.clock.now())
        self._emit("deviation", f"{key}: {detail}")
