"""The engine: runs many protocol runs at once on one workcell.

One :class:`Engine` owns the live cell (instruments), the journal and the clock; each
run is a :class:`~orchestrator.engine.executor.RunExecutor` task. Every run and step
state change is journaled before its side effect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import structlog

from drivers.clock import Clock
from drivers.errors import CellwrightError, InstrumentError, StorageFault
from drivers.labware import Plate, labware_model
from orchestrator import logs
from orchestrator.engine.cell import Cell, SiteBlocked
from orchestrator.engine.control import FINAL, RunAborted, RunPaused
from orchestrator.engine.dispatch import Dispatcher, OperatorDesk, OperatorNeeded, RunFailed
from orchestrator.engine.executor import RunExecutor
from orchestrator.engine.history import load_history
from orchestrator.engine.states import RunState
from orchestrator.protocol.graph import ProtocolGraph
from orchestrator.store import Journal, Store
from orchestrator.workcell import Workcell

log = structlog.get_logger("cellwright.engine")

EventListener = Callable[[str, str, str], None]


@dataclass
class RunHandle:
    """A run the engine knows: its record, state machine and executor."""

    run_id: str
    graph: ProtocolGraph
    state: RunState
    executor: RunExecutor
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Engine:
    """Executes runs on one workcell.

    Args:
        workcell: validated workcell.
        store: the journal's database.
        clock: engine clock (virtual or wall).
        seed: simulator seed.
        operator: identity recorded for run creation.
        desk: where operator decisions are asked.
        on_event: progress listener ``(run_id, kind, detail)``; kinds: ``run``, ``step``,
            ``iteration``, ``deviation``, ``instrument``.
    """

    def __init__(self, workcell: Workcell, store: Store, clock: Clock, *, seed: int = 0,
                 operator: str = "engine", desk: OperatorDesk | None = None,
                 on_event: EventListener | None = None, sim_state: str | None = None,
                 shared: dict[str, Any] | None = None) -> None:
        logs.ensure_configured()
        self.workcell = workcell
        self.store = store
        self.clock = clock
        self.seed = seed
        self.operator = operator
        self.journal = Journal(store, actor="engine")
        self.on_event = on_event
        self.sim_state = sim_state
        self.cell = Cell(workcell, clock, seed, on_instrument=self._instrument_changed, shared=shared,
                         sim_state=sim_state)
        self.dispatcher = Dispatcher(self.cell, self.journal, desk or OperatorDesk(), on_step=self._step_changed)
        self.runs: dict[str, RunHandle] = {}

    # -- listeners -------------------------------------------------------------------
    def _emit(self, run_id: str, kind: str, detail: str) -> None:
        if self.on_event is not None:
            self.on_event(run_id, kind, detail)

    def _instrument_changed(self, name: str, source: str, dest: str, reason: str) -> None:
        if dest == "error" or source == "error":
            self.journal.note("instrument.transition", {"from": source, "to": dest, "reason": reason},
                              subject=name, sim_time=self.clock.now())
        self._emit("", "instrument", f"{name}: {dest}")

    def _step_changed(self, run_id: str, key: str, dest: str, reason: str) -> None:
        if dest == "failed":
            self._emit(run_id, "step-failed", f"{key}: {reason}")

    def _run_changed(self, model: RunState, source: str, dest: str, reason: str) -> None:
        self.journal.run_transition(model.run_id, source, dest, self.clock.now(), reason=reason)
        log.info("run " + dest, run_id=model.run_id, sim_time=self.clock.now(), reason=reason)
        self._emit(model.run_id, "run", dest)

    # -- runs ------------------------------------------------------------------------
    def _next_run_id(self) -> str:
        count = self.store.query("SELECT COUNT(*) AS n FROM runs")[0]["n"]
        return f"R{count + 1:04d}"

    def add_run(self, graph: ProtocolGraph, *, campaign: str | None = None, plate_prefix: str | None = None,
                release_s: float = 0.0, priority: int = 0, plan: Mapping[str, float] | None = None,
                plan_note: str = "") -> str:
        """Record a new run of ``graph`` (validated and planned) and prepare its executor.

        Args:
            release_s: earliest clock time of its first step.
            priority: higher wins when runs contend for an instrument.
            plan: planned start (clock s) per step key, from the planner.
            plan_note: how the plan was made (journaled with the run's ``planned`` transition).

        Returns:
            The new run id.
        """
        run_id = self._next_run_id()
        self.journal.run_created({
            "run_id": run_id, "protocol": graph.name, "version": graph.version, "content_hash": graph.content_hash,
            "source": str(Path(graph.source).resolve()), "parameters": dict(graph.parameters),
            "workcell": self.workcell.name, "workcell_source": str(Path(self.workcell.source).resolve()),
            "sim_state": self.sim_state,
            "seed": self.seed, "clock": "virtual" if self.clock.virtual else "wall",
            "created_wall": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "origin": self.clock.datetime_at(0.0).isoformat(), "campaign": campaign,
            "release_s": release_s, "priority": priority,
        }, actor=self.operator)
        handle = self._attach(run_id, graph, "created", plate_prefix, release_s=release_s, priority=priority,
                              plan=plan)
        handle.state.validate(reason="protocol and workcell validated")
        if plan:
            self.journal.note("run.plan", {"starts": dict(plan)}, run_id=run_id, sim_time=self.clock.now())
        handle.state.plan(reason=plan_note or "no planner: each step at its earliest allowed time")
        return run_id

    def _attach(self, run_id: str, graph: ProtocolGraph, status: str, plate_prefix: str | None = None,
                resume: bool = False, release_s: float = 0.0, priority: int = 0,
                plan: Mapping[str, float] | None = None) -> RunHandle:
        plates = {
            name: Plate(id=f"{plate_prefix or run_id}.{name}", model=labware_model(decl.model),
                        cell_line=decl.cell_line, cell_type=decl.cell_type,
                        home=self.workcell.incubator if decl.home == "incubator" else decl.home)
            for name, decl in graph.labware.items()
        }
        history = load_history(self.store, run_id) if resume else None
        state = RunState(run_id, self._run_changed, initial=status)
        executor = RunExecutor(run_id, graph, plates, self.cell, self.journal, self.dispatcher, self._emit, history,
                               release_s=release_s, plan=plan)
        for plate in plates.values():
            for site in (*self.cell.sites.values(), self.cell.plates_out):
                site.priority[plate.id] = priority
        handle = RunHandle(run_id, graph, state, executor)
        self.runs[run_id] = handle
        return handle

    def resume_run(self, run_id: str, graph: ProtocolGraph, plan: Mapping[str, float] | None = None) -> str:
        """Take over an unfinished run recorded in the store (after a crash, a pause or
        a pending operator decision); its steps are replayed from the journal.

        Args:
            plan: planned start (clock s) per step key still to do (a re-plan at resume).

        Raises:
            CellwrightError: the run is unknown, finished, or its protocol changed.
        """
        row = self.store.run(run_id)
        if row is None:
            raise CellwrightError(f"no run {run_id!r} in {self.store.path}")
        if row["status"] in ("completed", "failed", "aborted"):
            raise CellwrightError(f"run {run_id} is {row['status']}; nothing to resume")
        if row["content_hash"] != graph.content_hash:
            raise CellwrightError(f"run {run_id}: protocol {row['source']} changed since the run started "
                                  f"(sha256 {row['content_hash'][:12]} recorded, {graph.content_hash[:12]} now); "
                                  f"restore the original files to resume")
        created = self.store.query("SELECT payload FROM events WHERE run_id = ? AND kind = 'run.created'", (run_id,))
        extra = _json(created[0]["payload"]) if created else {}
        handle = self._attach(run_id, graph, row["status"], resume=True, release_s=extra.get("release_s", 0.0),
                              priority=extra.get("priority", 0), plan=plan)
        crashed = row["status"] in ("created", "validated", "planned", "running")
        self.journal.note("run.resumed", {"after": "crash" if crashed else row["status"],
                                          "in_doubt": [s.key for s in handle.executor.history.in_doubt()]},
                          run_id=run_id, sim_time=self.clock.now(), actor=self.operator)
        if crashed:
            self.journal.deviation(run_id, None, "resumed-after-crash",
                                   "the engine stopped without closing the run; resumed from the journal",
                                   self.clock.now(), actor=self.operator)
        return run_id

    async def _execute(self, handle: RunHandle) -> None:
        state = handle.state
        if state.state == "created":  # a crash before the run was validated: the resume has validated it
            state.validate(reason="protocol and workcell validated at resume")
        if state.state == "validated":
            state.plan(reason="planned at resume: each step at its earliest allowed time")
        if state.state == "planned":
            state.start(reason="started")
        elif state.state == "paused":
            state.resume(reason="resumed")
        try:
            await self._execute_run(handle)
        finally:
            self._strand_leftovers(handle)

    def _strand_leftovers(self, handle: RunHandle) -> None:
        """Plates a stopped run could not take home block their place for the other runs:
        mark them, so runs waiting there pause with a message instead of waiting for ever."""
        if not handle.state.final and handle.state.state != "paused" and handle.extra.get("status") != "paused":
            return
        for plate in handle.executor.transport.out_plates():
            for site in (*self.cell.sites.values(), self.cell.plates_out):
                if site.holds(plate.id):
                    site.strand(plate.id, left_behind(plate.id, handle.run_id,
                                                      f"{handle.state.state}: {handle.error or 'stopped'}", site.name))
                    if site is not self.cell.plates_out:
                        log.error("plate left on an instrument", run_id=handle.run_id, plate=plate.id, site=site.name)

    def _hold_places_of_other_runs(self) -> None:
        """Plates of runs this engine does not run that the record puts on an instrument (a
        stopped run left them there, or an unfinished run is not resumed now) keep their
        place: runs that need it pause naming the plate instead of running into it."""
        for row in self.store.query("SELECT l.plate, l.run_id, l.site, r.status FROM locations l"
                                    " JOIN runs r ON r.run_id = l.run_id ORDER BY l.plate"):
            site = self.cell.sites.get(row["site"])
            if row["run_id"] in self.runs or site is None:  # ours, in an incubator slot, or unloaded
                continue
            if row["status"] in FINAL:
                why = left_behind(row["plate"], row["run_id"], row["status"], site.name)
            else:
                why = (f"plate {row['plate']} of unfinished run {row['run_id']} is at {site.name}: continue that run "
                       f"first (`cellwright resume {row['run_id']}`; a `cellwright pause {row['run_id']}` before it "
                       f"sends its plates home at once) or abort it")
            for place in (site, self.cell.plates_out):
                if place.try_take(row["plate"]):
                    place.strand(row["plate"], why)

    async def _execute_run(self, handle: RunHandle) -> None:
        state = handle.state
        try:
            await handle.executor.execute()
        except (RunPaused, OperatorNeeded, SiteBlocked) as exc:
            handle.error = str(exc)
            await self._park(handle)
            state.pause(reason=str(exc))
            return
        except RunAborted as exc:
            handle.error = str(exc)
            state.abort(reason=str(exc))
            return
        except RunFailed as exc:
            handle.error = str(exc)
            handle.state.fail(reason=str(exc))
            return
        except StorageFault as exc:  # the journal's (StoreError) or a simulated world's
            # Nothing more may happen physically without a record: stop issuing actions.
            handle.error = (f"storage fault: {exc} — the run is paused (no further instrument actions were "
                            f"issued); fix the storage, then `cellwright resume {handle.run_id}`")
            log.error("storage fault; run paused", run_id=handle.run_id, error=str(exc))
            self._pause_for_storage(handle)
            return
        except (InstrumentError, CellwrightError) as exc:
            handle.error = str(exc)
            handle.state.fail(reason=str(exc))
            return
        except Exception as exc:  # a defect must stop this run, not every run of the workcell
            log.exception("internal error; run failed", run_id=handle.run_id)
            handle.error = f"internal error: {type(exc).__name__}: {exc}"
            await self._park(handle)
            handle.state.fail(reason=handle.error)
            return
        handle.state.complete(reason="all steps finished")

    async def _park(self, handle: RunHandle) -> None:
        """Bring a stopping run's plates home if the instruments allow it."""
        try:
            await handle.executor.transport.home_all()
        except CellwrightError as exc:
            log.error("could not bring plates home", run_id=handle.run_id, error=str(exc))

    def _pause_for_storage(self, handle: RunHandle) -> None:
        """Record the pause when the journal still works (a simulated world's file failed);
        otherwise the run is paused in memory only and a resume sees a crash."""
        handle.extra["status"] = "paused"
        if self.store.broken is None and not handle.state.final and handle.state.state != "paused":
            try:
                handle.state.pause(reason=handle.error or "storage fault")
            except StorageFault:
                pass

    async def execute(self, run_ids: list[str] | None = None) -> None:
        """Connect the instruments, run the given runs (default: all added) at once, disconnect.

        A storage fault at the final commit pauses the runs still open (what was durable
        is replayed from the redo log at the next open); it is not raised."""
        ids = run_ids or list(self.runs)
        # Group commit (orchestrator.store.grouping): the dispatcher flushes before every
        # instrument action; the clock's idle hook makes writes durable and commits them.
        grouped = self.clock.add_idle_hook(self.store.on_idle)
        self.store.group_commits(grouped)
        try:
            await self._connect_and_run(ids)
        finally:
            self.clock.remove_idle_hook(self.store.on_idle)
            try:
                self.store.group_commits(False)
            except StorageFault as exc:
                log.error("storage fault at the final commit", error=str(exc))
                for run_id in ids:
                    handle = self.runs[run_id]
                    if handle.state.final:  # its end is in the redo log (or the run resumes from before it)
                        handle.error = (f"{handle.error or handle.state.state}; storage fault at the final commit: "
                                        f"{exc}")
                        handle.extra["status"] = handle.state.state
                    elif handle.extra.get("status") != "paused":
                        handle.error = (f"storage fault: {exc} — the run is paused; fix the storage, then "
                                        f"`cellwright resume {run_id}`")
                        handle.extra["status"] = "paused"

    async def _connect_and_run(self, ids: list[str]) -> None:
        self._hold_places_of_other_runs()
        await self.cell.connect()
        for name, instrument in self.cell.instruments.items():
            ident = await instrument.identify()
            self.journal.note("instrument.identity", {
                "instrument": name, "class": self.workcell.instruments[name].instrument_class,
                "driver": self.workcell.instruments[name].driver.name, "mode": self.workcell.instruments[name].mode,
                "vendor": ident.vendor, "model": ident.model, "serial": ident.serial, "firmware": ident.firmware,
            }, subject=name, sim_time=self.clock.now())
        try:
            await asyncio.gather(*(self._execute(self.runs[r]) for r in ids))
        finally:
            await self.cell.disconnect()

    # -- plans -------------------------------------------------------------------------
    def follow_plan(self, campaign_plan: Any, run_ids: list[str], state: tuple[Any, Any] | None = None) -> None:
        """Re-plan ``campaign_plan`` (an ``orchestrator.planning.CampaignPlan`` whose run
        ``i`` is ``run_ids[i]``) whenever a run leaves it: a branch the planner could not
        foresee, or an overrun. Started and finished work stays frozen. ``state`` is the
        (schedule, expansion) being executed when it is not the plan's own (a resume)."""
        self._plan = campaign_plan
        self._plan_index = {run_id: i for i, run_id in enumerate(run_ids)}
        self._plan_state: tuple[Any, Any] | None = state
        for run_id in run_ids:
            self.runs[run_id].executor.replanner = self._replan

    def _replan(self, executor: RunExecutor, reason: str) -> None:
        """Re-plan the campaign around what ``executor`` just found, and hand every run its
        new starts. A re-plan that fails or finds no feasible plan changes no plan: it is
        journaled (``plan.revised``, feasible false, with the reason) and the step that
        left the plan runs at its earliest time; runs are never failed by the planner."""
        from orchestrator.planning.replan import replan_during_run

        index = self._plan_index
        runs = {index[r]: h.executor for r, h in self.runs.items() if r in index}
        previous, expansion = self._plan_state or (None, None)
        now = self.clock.now()
        try:
            answer = replan_during_run(self._plan, now,
                                       actual={i: dict(x.actual) for i, x in runs.items()},
                                       decisions={i: dict(x.decisions) for i, x in runs.items() if x.decisions},
                                       previous=previous, expansion=expansion, affected={index[executor.run_id]})
        except Exception as exc:  # a planner defect must not fail runs: fall back to unplanned
            log.warning("re-plan failed; the step runs at its earliest time", run_id=executor.run_id,
                        reason=reason, error=f"{type(exc).__name__}: {exc}", sim_time=now, exc_info=True)
            self.journal.note("plan.revised", {"reason": reason, "feasible": False, "latency_s": None,
                                               "steps_moved": 0,
                                               "error": f"re-plan failed: {type(exc).__name__}: {exc}",
                                               "fallback": "affected steps run at their earliest time"},
                              run_id=executor.run_id, sim_time=now)
            return
        payload: dict[str, Any] = {"reason": reason, "feasible": answer.feasible,
                                   "latency_s": round(answer.seconds, 4), "steps_moved": 0,
                                   "violations": answer.violations[:10]}
        # the best effort places the steps just decided: later re-plans start from it
        self._plan_state = (answer.schedule, answer.expansion)
        if answer.feasible:
            for i, starts in answer.starts.items():
                runs[i].plan.update(starts)
            payload["steps_moved"] = sum(len(s) for s in answer.starts.values())
        else:
            payload["fallback"] = "no feasible plan: plans unchanged, affected steps run at their earliest time"
            log.warning("re-plan infeasible; the step runs at its earliest time", run_id=executor.run_id,
                        reason=reason, violations=answer.violations[:3], sim_time=now)
        self.journal.note("plan.revised", payload, run_id=executor.run_id, sim_time=now)
        log.info("re-planned", run_id=executor.run_id, reason=reason, latency_s=round(answer.seconds, 4),
                 feasible=answer.feasible, sim_time=now)

    # -- results ---------------------------------------------------------------------
    def summary(self, run_id: str, wall_seconds: float) -> dict[str, Any]:
        """Machine-readable summary of a run, read back from the store."""
        return summarize(self.store, run_id, wall_seconds, self.runs.get(run_id))


def left_behind(plate: str, run_id: str, status: str, site: str) -> str:
    """What to do about a plate a stopped run left on an instrument."""
    return (f"plate {plate} of run {run_id} ({status}) was left at {site} and could not be taken home: a person "
            f"must remove it and record that with `cellwright unload {plate} --reason TEXT`, then "
            f"`cellwright resume`")


def summarize(store: Store, run_id: str, wall_seconds: float | None = None,
              handle: RunHandle | None = None) -> dict[str, Any]:
    """Summary of a run from the store: status, counts, QC, measurements, deviations."""
    run = store.run(run_id)
    if run is None:
        raise KeyError(run_id)
    steps = store.steps(run_id)
    protocol_steps = [s for s in steps if s["kind"] == "action"]
    done = [s for s in protocol_steps if s["status"] == "done"]
    actions: dict[str, int] = {}
    for s in done:
        actions[s["action"]] = actions.get(s["action"], 0) + 1
    verdicts = store.verdicts(run_id)
    measurements = store.measurements(run_id)
    primary = _primary_measurements(measurements, store, run_id)
    qc_status = "pass"
    if any(not v["passed"] for v in verdicts):
        qc_status = "fail" if run["status"] == "failed" else "hold"
    sim_end = run["sim_end"]
    if sim_end is None:  # not finished: how far it came
        sim_end = store.query("SELECT MAX(sim_time) AS t FROM events WHERE run_id = ?", (run_id,))[0]["t"]
    sim_seconds = (sim_end - (run["sim_start"] or 0.0)) if sim_end is not None else None
    return {
        "run_id": run_id,
        "protocol": run["protocol"],
        "version": run["version"],
        "content_hash": run["content_hash"],
        "status": handle.extra.get("status", run["status"]) if handle else run["status"],
        "error": handle.error if handle else run["detail"] if run["status"] in ("failed", "paused") else None,
        "steps_done": len(done),
        "steps_failed": sum(1 for s in protocol_steps if s["status"] == "failed"),
        "steps_skipped": sum(1 for s in steps if s["status"] == "skipped"),
        "transport_moves": sum(1 for s in steps if s["kind"] == "transport" and s["status"] == "done"),
        "actions": actions,
        "passages": actions.get("reseed", 0),
        "sim_seconds": sim_seconds,
        "sim_days": round(sim_seconds / 86400, 3) if sim_seconds is not None else None,
        "wall_seconds": round(wall_seconds, 3) if wall_seconds is not None else None,
        "qc_status": qc_status,
        "qc": [{"step": v["step_key"], "criterion": v["criterion"], "value": v["value"], "passed": bool(v["passed"])}
               for v in verdicts],
        "measurements": primary,
        "deviations": [{"step": d["step_key"], "kind": d["kind"], "detail": d["detail"], "sim_time": d["sim_time"]}
                       for d in store.deviations(run_id)],
        "parameters": _json(run["parameters"]),
        "audit_head": store.head,
    }


def _json(text: str) -> Any:
    import json

    return json.loads(text)


def _primary_measurements(rows: Sequence[Mapping[str, Any]], store: Store, run_id: str) -> list[dict[str, Any]]:
    """One entry per measurement: its name, step, sim time, and every field."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        entry = out.setdefault((r["step_key"], r["name"]), {
            "step": r["step_key"], "name": r["name"], "sim_time": r["sim_time"],
            "day": round(r["sim_time"] / 86400, 2), "values": {}})
        entry["values"][r["field"]] = r["value"]
    return list(out.values())
