"""One entry point for running and resuming protocols: the CLI, tests and benchmarks use it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.clock import Clock, VirtualDeadlock, make_clock
from drivers.errors import CellwrightError
from orchestrator.campaign import Campaign, load_campaign
from orchestrator.engine.dispatch import OperatorDesk
from orchestrator.engine.engine import Engine
from orchestrator.protocol import load_protocol
from orchestrator.protocol.graph import ProtocolGraph
from orchestrator.store import Store
from orchestrator.store.projector import UNLOADED
from orchestrator.workcell import Workcell, load_workcell
from simulators.culture import CultureModel

UNFINISHED = ("created", "validated", "planned", "running", "paused")


@dataclass
class RunResult:
    """What a run or resume returns: the summary and where things were written."""

    run_id: str
    summary: dict[str, Any]
    db: str


def _execute(clock: Clock, engine: Engine, run_ids: list[str]) -> None:
    """Run the engine on its clock; a simulated deadlock stops the runs that were still
    going (they stay resumable) instead of hanging."""
    _unload_in_simulation(engine)
    try:
        clock.run(engine.execute(run_ids))
    except VirtualDeadlock as exc:
        for run_id in run_ids:
            handle = engine.runs[run_id]
            if not handle.state.final and handle.state.state != "paused":
                handle.error = f"stopped: {exc}"
                handle.extra["status"] = "paused"


def _unload_in_simulation(engine: Engine) -> None:
    """In a simulated workcell, do what the person did: plates recorded as unloaded
    (`cellwright unload`) leave the simulated world too."""
    world = engine.cell.shared.get("culture")
    if not isinstance(world, CultureModel):
        return
    for row in engine.store.query("SELECT plate FROM locations WHERE site = ?", (UNLOADED,)):
        if world.locations.site_of(row["plate"]) is not None:
            world.unload(row["plate"])


def sim_state_for(db: str | Path, label: str) -> str | None:
    """Where the simulated world of a session is persisted: beside the database."""
    if str(db) == ":memory:":
        return None
    path = Path(db).resolve()  # absolute: a resume may run from another directory
    return str(path.with_name(f"{path.stem}.sim-{label}.pkl"))


def run_protocol(
    protocol: str | Path | ProtocolGraph,
    *,
    workcell: str | Path | Workcell | None = None,
    overrides: Mapping[str, Any] | None = None,
    clock: str = "virtual",
    seed: int = 0,
    db: str | Path = ":memory:",
    operator: str = "engine",
    desk: OperatorDesk | None = None,
    on_event: Callable[[str, str, str], None] | None = None,
    on_start: Callable[[Engine, str], None] | None = None,
    shared: dict[str, Any] | None = None,
) -> RunResult:
    """Validate, then execute one protocol run until it completes, fails or pauses.

    Args:
        protocol: protocol file, or an already compiled graph.
        workcell: workcell file or object (default: the bundled simulated workcell).
        overrides: parameter overrides (strings as from ``-p``, or typed values).
        clock: ``virtual`` or ``wall``.
        db: SQLite file, or ``:memory:``.
        on_start: called with the engine and run id before execution starts.
        shared: driver-shared objects to reuse (tests that restart an engine in-process).

    Raises:
        ProtocolErrors: the protocol is invalid (nothing was recorded).
        ConfigurationError: the workcell is invalid.
    """
    cell = workcell if isinstance(workcell, Workcell) else load_workcell(workcell)
    graph = protocol if isinstance(protocol, ProtocolGraph) else load_protocol(protocol, overrides, workcell=cell)
    the_clock = make_clock(clock)
    store = Store(db, durability="normal" if the_clock.virtual else "full")
    try:
        store.claim()  # one engine per database, checked before anything is recorded
        label = f"R{store.query('SELECT COUNT(*) AS n FROM runs')[0]['n'] + 1:04d}"
        sim_state = sim_state_for(db, label)  # used only by simulated instruments
        engine = Engine(cell, store, the_clock, seed=seed, operator=operator, desk=desk, on_event=on_event,
                        sim_state=sim_state, shared=shared)
        run_id = engine.add_run(graph)
        if on_start is not None:
            on_start(engine, run_id)
        started = time.perf_counter()
        _execute(the_clock, engine, [run_id])
        wall = time.perf_counter() - started
        return RunResult(run_id, engine.summary(run_id, wall), str(db))
    finally:
        store.close()


@dataclass
class CampaignResult:
    """What :func:`run_campaign` returns."""

    name: str
    runs: list[RunResult]
    wall_seconds: float
    db: str
    plan: Any = None
    """The campaign plan it followed (``orchestrator.planning.CampaignPlan``), if any."""

    def summary(self) -> dict[str, Any]:
        """Campaign totals and one summary per run."""
        statuses = [r.summary["status"] for r in self.runs]
        worst = next((s for s in ("failed", "aborted", "paused") if s in statuses), "completed")
        return {
            "campaign": self.name,
            "status": worst,
            "runs": len(self.runs),
            "completed": statuses.count("completed"),
            "steps_done": sum(r.summary["steps_done"] for r in self.runs),
            "steps_failed": sum(r.summary["steps_failed"] for r in self.runs),
            "transport_moves": sum(r.summary["transport_moves"] for r in self.runs),
            "deviations": sum(len(r.summary["deviations"]) for r in self.runs),
            "sim_seconds": max((r.summary["sim_seconds"] or 0.0) for r in self.runs),
            "wall_seconds": round(self.wall_seconds, 3),
            "db": self.db,
            "plan": self.plan.summary() if self.plan is not None else None,
            "run_summaries": [r.summary for r in self.runs],
        }


def run_campaign(
    campaign: str | Path | Campaign,
    *,
    workcell: str | Path | Workcell | None = None,
    clock: str = "virtual",
    seed: int = 0,
    db: str | Path = ":memory:",
    operator: str = "engine",
    on_event: Callable[[str, str, str], None] | None = None,
    on_start: Callable[[Engine, list[str]], None] | None = None,
    planned: bool = True,
    time_limit: float = 10.0,
    use_cpsat: bool = False,
    campaign_plan: Any = None,
    follow_branches: bool = False,
) -> CampaignResult:
    """Plan a campaign, then execute every run together on one workcell, following the plan.

    Each run is added with its planned release, its graph with the planned instruments
    pinned, and its planned start per step; the engine re-plans when a step overruns.
    The runs execute unplanned, each step at its earliest time, when the plan is not
    feasible, when ``planned`` is False, or when the campaign branches on measurements
    the planner cannot foresee (unless ``follow_branches``); each run's ``planned``
    transition says why.

    Args:
        time_limit, use_cpsat: planner settings (see ``orchestrator.planning.plan_campaign``).
        campaign_plan: a plan made already (skips planning).
        follow_branches: follow the plan even when steps depend on measurements, re-planning
            each time a branch is decided (measured worse than unplanned beyond a few
            plates: see docs/planning.md).

    Raises:
        ConfigurationError: the campaign, a protocol in it, or the workcell is invalid.
    """
    loaded = campaign if isinstance(campaign, Campaign) else load_campaign(campaign, workcell)
    cp = campaign_plan
    if cp is None and planned:
        from orchestrator.planning import plan_campaign

        cp = plan_campaign(loaded, time_limit=time_limit, use_cpsat=use_cpsat)
    the_clock = make_clock(clock)
    store = Store(db, durability="normal" if the_clock.virtual else "full")
    try:
        store.claim()  # one engine per database, checked before anything is recorded
        label = f"R{store.query('SELECT COUNT(*) AS n FROM runs')[0]['n'] + 1:04d}"
        engine = Engine(loaded.workcell, store, the_clock, seed=seed, operator=operator, on_event=on_event,
                        sim_state=sim_state_for(db, label))
        ids = []
        follow = cp is not None and cp.feasible and (follow_branches or not cp.unknown)
        with store.atomic():  # a campaign is recorded whole or not at all
            for i, r in enumerate(loaded.runs):
                if follow:
                    ids.append(engine.add_run(cp.graphs[i], campaign=loaded.name, priority=r.priority,
                                              release_s=cp.releases[i], plan=cp.starts[i], plan_note=cp.plan_note(i)))
                else:
                    why = "planning off" if cp is None else f"planner {cp.status}" if not cp.feasible else (
                        f"{len(cp.unknown)} steps depend on measurements the planner cannot foresee")
                    ids.append(engine.add_run(r.graph, campaign=loaded.name, priority=r.priority,
                                              release_s=r.release_s,
                                              plan_note=f"{why}: running unplanned (each step at its earliest time)"))
        if follow:
            engine.follow_plan(cp, ids)
        if on_start is not None:
            on_start(engine, ids)
        started = time.perf_counter()
        _execute(the_clock, engine, ids)
        wall = time.perf_counter() - started
        return CampaignResult(loaded.name, [RunResult(r, engine.summary(r, wall), str(db)) for r in ids], wall,
                              str(db), cp)
    finally:
        store.close()


def unfinished_runs(store: Store) -> list[dict[str, Any]]:
    """Runs that neither completed, failed nor were aborted."""
    marks = ", ".join("?" * len(UNFINISHED))
    return store.query(f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY run_id", UNFINISHED)


def created_payload(store: Store, run_id: str) -> dict[str, Any]:
    """The ``run.created`` event of a run (what it was started with)."""
    rows = store.query("SELECT payload FROM events WHERE run_id = ? AND kind = 'run.created'", (run_id,))
    if not rows:
        raise CellwrightError(f"run {run_id} has no run.created record")
    return dict(json.loads(rows[0]["payload"]))


def resume_runs(
    run_ids: list[str],
    *,
    db: str | Path,
    workcell: str | Path | Workcell | None = None,
    operator: str,
    on_event: Callable[[str, str, str], None] | None = None,
    shared: dict[str, Any] | None = None,
    replan: bool = True,
) -> list[RunResult]:
    """Continue unfinished runs from their journal (after a crash, pause or operator wait),
    together in one engine: runs started together share instruments and a simulated world.

    Each protocol is re-read from its recorded path and must be unchanged (same content
    hash); the workcell, seed and clock are those recorded at the start, and a virtual
    clock continues from the runs' last recorded time. Runs of a campaign that followed a
    plan are planned again around what already happened (``replan``; see
    ``orchestrator.planning.resume``) and follow the new plan.

    Raises:
        CellwrightError: unknown or finished run, changed protocol, unreadable workcell,
            or runs that were not started together.
    """
    store = Store(db)
    try:
        store.claim()  # one engine per database: two resumes of one run would repeat its steps
        rows, created = [], []
        for run_id in run_ids:
            row = store.run(run_id)
            if row is None:
                raise CellwrightError(f"no run {run_id!r} in {db}")
            rows.append(row)
            created.append(created_payload(store, run_id))
        first, meta = rows[0], created[0]
        for row, c in zip(rows, created, strict=True):
            if (c.get("sim_state"), c.get("workcell_source"), row["seed"], row["clock"]) != (
                    meta.get("sim_state"), meta.get("workcell_source"), first["seed"], first["clock"]):
                raise CellwrightError(f"runs {first['run_id']} and {row['run_id']} were not started together; "
                                      f"resume them one at a time")
        cell = workcell if isinstance(workcell, Workcell) else load_workcell(workcell or meta.get("workcell_source"))
        compiled: dict[tuple[str, str], ProtocolGraph] = {}  # a campaign's runs share protocols
        for r in rows:
            if (r["source"], r["parameters"]) not in compiled:
                compiled[(r["source"], r["parameters"])] = load_protocol(r["source"], json.loads(r["parameters"]),
                                                                         workcell=cell)
        graphs = [compiled[(r["source"], r["parameters"])] for r in rows]
        marks = ", ".join("?" * len(run_ids))
        last = store.query(f"SELECT MAX(sim_time) AS t FROM events WHERE run_id IN ({marks})", tuple(run_ids))
        origin = datetime.fromisoformat(first["origin"])
        if first["clock"] == "virtual":
            the_clock = make_clock("virtual", origin, start=last[0]["t"] or 0.0)
        else:
            the_clock = make_clock("wall", origin)  # real time since the first start
            store.set_durability("full")  # hardware: as when the run started
        engine = Engine(cell, store, the_clock, seed=first["seed"], operator=operator, on_event=on_event,
                        sim_state=meta.get("sim_state"), shared=shared)
        replanned = _replan_at_resume(store, rows, created, graphs, cell, the_clock.now()) if replan else None
        for i, (run_id, graph) in enumerate(zip(run_ids, graphs, strict=True)):
            engine.resume_run(run_id, graph, plan=replanned.starts.get(i) if replanned else None)
        if replanned is not None:
            for run_id in run_ids:
                engine.journal.note("plan.revised", replanned.note, run_id=run_id, sim_time=the_clock.now(),
                                    actor=operator)
            if replanned.plan is not None:
                engine.follow_plan(replanned.plan, list(run_ids), state=replanned.state)
        started = time.perf_counter()
        _execute(the_clock, engine, list(run_ids))
        wall = time.perf_counter() - started
        return [RunResult(r, engine.summary(r, wall), str(db)) for r in run_ids]
    finally:
        store.close()


def _replan_at_resume(store: Store, rows: list[dict[str, Any]], created: list[dict[str, Any]],
                      graphs: list[ProtocolGraph], cell: Workcell, now: float) -> Any:
    """A :class:`~orchestrator.planning.resume.ResumedPlan` for runs of one planned campaign,
    else None (single runs, runs of several campaigns, campaigns that ran unplanned)."""
    names = {r["campaign"] for r in rows}
    ids = tuple(r["run_id"] for r in rows)
    marks = ", ".join("?" * len(ids))
    if len(names) != 1 or None in names or not store.query(
            f"SELECT 1 FROM events WHERE kind = 'run.plan' AND run_id IN ({marks}) LIMIT 1", ids):
        return None
    from orchestrator.planning.resume import plan_resumed

    actual: dict[int, dict[str, tuple[float, float]]] = {}
    for i, row in enumerate(rows):
        done = {}
        for s in store.steps(row["run_id"]):
            if s["kind"] == "action" and s["start"] is not None:
                end = s["end"] if s["end"] is not None else max(now, s["start"])
                done[s["key"]] = (s["start"], end - s["start"])
        actual[i] = done
    runs = [(g, float(c.get("release_s", 0.0)), int(c.get("priority", 0))) for g, c in zip(graphs, created, strict=True)]
    return plan_resumed(str(next(iter(names))), cell, runs, now, actual)


def resume_run(run_id: str, *, db: str | Path, workcell: str | Path | Workcell | None = None, operator: str,
               on_event: Callable[[str, str, str], None] | None = None,
               shared: dict[str, Any] | None = None) -> RunResult:
    """Continue one unfinished run (see :func:`resume_runs`)."""
    return resume_runs([run_id], db=db, workcell=workcell, operator=operator, on_event=on_event, shared=shared)[0]
