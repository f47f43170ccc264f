"""`plan_campaign`: campaign -> planner problem -> schedule -> what the engine executes.

Pipeline (all times in SECONDS of the campaign clock, 0 = campaign start):

1. :func:`~orchestrator.planning.expand.expand` every run (predicted actions with the
   executor's keys, transport, lags, spans);
2. :func:`~orchestrator.planning.offsets.place`: each run's start offset (first fit of its
   rigid template, busiest days first by construction), giving cadence targets;
3. the planner core (:func:`orchestrator.planner.plan`, optionally CP-SAT) with that
   schedule as warm start; it validates, repairs what did not fit, proves infeasibility;
4. per run: the starts the executor is given (action keys only), its release and its
   graph with instruments pinned; metrics and Gantt rows.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from orchestrator import logs
from orchestrator.campaign import Campaign
from orchestrator.planner import Conflict, Operation, Problem, Schedule, analyze, check, plan
from orchestrator.protocol.graph import ProtocolGraph

from .expand import PLATES_OUT, Expansion, expand, pin_graph
from .modulo import pipeline
from .offsets import place

log = structlog.get_logger("cellwright.planning")
FIRST_FIT_NOTE = "best-effort placement: the first-fit layout has fewer violations than the planner's"


@dataclass
class CampaignPlan:
    """A planned campaign.

    Attributes:
        campaign: the campaign.
        expansion: its expansion (ops, lags, spans per run).
        problem: the planner problem.
        schedule: the planner's answer (``status``: optimal/feasible/infeasible/unknown).
        feasible: True when the schedule keeps every constraint (validated).
        violations: readable broken constraints of the best-effort schedule (empty when feasible).
        starts: run index -> {dynamic step key: clock s} for ACTION steps: what the
            executor is given (``engine.add_run(plan=...)``).
        releases: run index -> clock s at which the run must be released (its first move).
        graphs: run index -> the graph with the planned instruments pinned.
        operations: number of planner operations.
        makespan_s, lower_bound_s: latest planned end and a proved lower bound, s.
        mean_cadence_error_s, max_cadence_error_s: over repeated visits k >= 1,
            |start - (anchor + k·every)| with anchor = planned start of iteration 0, s.
        max_plates_out: most plates out of the incubator at once in the plan.
        plan_seconds: wall time spent planning, s.
        unknown: (run label, dynamic key, condition) predicted false (measurement-dependent).
        explanation: why it is infeasible and what would help (see explain), or None.
        notes: planner notes.
        conflicts: proved resource overloads / lag cycles (structured) when infeasible.
    """

    campaign: Campaign
    expansion: Expansion
    problem: Problem
    schedule: Schedule
    feasible: bool
    violations: list[str]
    starts: dict[int, dict[str, float]]
    releases: dict[int, float]
    graphs: dict[int, ProtocolGraph]
    operations: int
    makespan_s: float
    lower_bound_s: float
    mean_cadence_error_s: float
    max_cadence_error_s: float
    max_plates_out: int
    plan_seconds: float
    unknown: list[tuple[str, str, str]] = field(default_factory=list)
    explanation: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def status(self) -> str:
        """The planner's status: ``optimal``, ``feasible``, ``infeasible`` (proved) or ``unknown``."""
        return self.schedule.status

    def plan_note(self, index: int) -> str:
        """What to journal with a run's ``planned`` transition."""
        return (f"cellwright planner: campaign {self.campaign.name} {self.status}, "
                f"{len(self.starts.get(index, {}))} planned steps, release {self.releases.get(index, 0.0):.0f} s, "
                f"mean cadence error {self.mean_cadence_error_s:.0f} s")

    def summary(self) -> dict[str, Any]:
        """The machine-readable summary (``cellwright plan --json``)."""
        out: dict[str, Any] = {
            "campaign": self.campaign.name,
            "workcell": self.campaign.workcell.name,
            "runs": len(self.campaign.runs),
            "status": self.status,
            "feasible": self.feasible,
            "violations": list(self.violations),
            "operations": self.operations,
            "makespan_s": _num(self.makespan_s),
            "lower_bound_s": _num(self.lower_bound_s),
            "ratio": _num(self.makespan_s / self.lower_bound_s) if self.lower_bound_s and
            math.isfinite(self.lower_bound_s) and math.isfinite(self.makespan_s) else None,
            "mean_cadence_error_s": _num(self.mean_cadence_error_s),
            "max_cadence_error_s": _num(self.max_cadence_error_s),
            "max_plates_out": self.max_plates_out,
            "plates_out_limit": self.campaign.workcell.plates_out,
            "plan_seconds": round(self.plan_seconds, 3),
            "solver": self.schedule.solver,
            "predicted_false": [{"run": r, "step": k, "condition": c} for r, k, c in self.unknown],
            "notes": list(self.notes),
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation
        return out

    def gantt_rows(self) -> list[dict[str, Any]]:
        """One row per planned operation: lane (resource), label, start, end, status."""
        return gantt_rows(self.expansion, self.problem, self.schedule)


def _num(x: float) -> float | None:
    return round(x, 3) if isinstance(x, (int, float)) and math.isfinite(x) else None


# -- problem ------------------------------------------------------------------------------
def build_problem(exp: Expansion, offsets: Mapping[int, float] | None = None,
                  rel: Mapping[int, Mapping[str, float]] | None = None) -> Problem:
    """The planner problem of an expansion.

    Each run's first operation gets ``release`` = the run's release and a deadline that
    keeps its start within ``spread`` of it; with ``offsets`` (start of each run's first
    op), the first action of every iteration gets ``target`` = offset + template time (its
    ideal cadence time), so the planner minimises cadence error.
    """
    ops: list[Operation] = []
    lags = []
    spans = []
    for rx in exp.runs:
        cad = {c.op for c in rx.cadence}
        x = None if offsets is None else offsets.get(rx.index)
        r = rx.rel if rel is None else rel.get(rx.index, rx.rel)
        for j, o in enumerate(rx.ops):
            changes: dict[str, Any] = {}
            if j == 0:
                changes["release"] = rx.release
                changes["deadline"] = rx.release + rx.spread + o.duration
            if x is not None and o.id in cad:
                changes["target"] = x + r[o.id]
            ops.append(dataclasses.replace(o, **changes) if changes else o)
        lags.extend(rx.lags)
        spans.extend(rx.spans)
    return Problem(tuple(ops), tuple(exp.resources), tuple(lags), tuple(spans))


def template_schedule(exp: Expansion, offsets: Mapping[int, float],
                      rel: Mapping[int, Mapping[str, float]] | None = None) -> Schedule:
    """Every run at its offset, laid out by its template (first alternative chosen)."""
    starts: dict[str, float] = {}
    assignment: dict[str, tuple[str, ...]] = {}
    makespan = 0.0
    for rx in exp.runs:
        x = offsets.get(rx.index, rx.release)
        r = rx.rel if rel is None else rel.get(rx.index, rx.rel)
        for o in rx.ops:
            s = x + r[o.id]
            starts[o.id] = s
            assignment[o.id] = tuple(e if isinstance(e, str) else e[0] for e in o.resources)
            makespan = max(makespan, s + o.duration)
    return Schedule(starts, assignment, makespan, "unknown", solver="offsets")


def slot_conflicts(campaign: Campaign) -> list[str]:
    """Proved: more plates live in an incubator than it has slots (each run's plates stay
    checked in from its start to its end, and the campaign's runs overlap)."""
    wc = campaign.workcell
    need: dict[str, int] = {}
    for r in campaign.runs:
        for decl in r.graph.labware.values():
            home = wc.incubator if decl.home == "incubator" else decl.home
            need[home] = need.get(home, 0) + 1
    out = []
    for inc, n in need.items():
        inst = wc.instruments.get(inc)
        slots = getattr(inst.config, "slots", None) if inst is not None else None
        if isinstance(slots, int) and n > slots:
            out.append(f"incubator {inc} has {slots} slots but the campaign keeps {n} plates in it "
                       f"(every plate is checked in for its whole run)")
    return out


# -- metrics ------------------------------------------------------------------------------
def cadence_errors(exp: Expansion, starts: Mapping[str, float]) -> list[float]:
    """|start - (anchor + k·every)| per repeated visit k >= 1 (anchor: planned iteration 0)."""
    out = []
    for rx in exp.runs:
        for c in rx.cadence:
            if c.anchor is None or c.op not in starts or c.anchor not in starts:
                continue
            out.append(abs(starts[c.op] - (starts[c.anchor] + c.k * c.every)))
    return out


def max_out(problem: Problem, starts: Mapping[str, float]) -> int:
    """Most ``plates-out`` spans open at once."""
    events = []
    op = problem.op
    for sp in problem.spans:
        if sp.resource != PLATES_OUT or sp.first not in starts or sp.last not in starts:
            continue
        s, e = starts[sp.first], starts[sp.last] + op[sp.last].duration
        if e > s:
            events += [(s, 1), (e, -1)]
    best = cur = 0
    for _, d in sorted(events, key=lambda x: (x[0], x[1])):
        cur += d
        best = max(best, cur)
    return best


def engine_starts(exp: Expansion, starts: Mapping[str, float]) -> tuple[dict[int, dict[str, float]], dict[int, float]]:
    """What the executor is given: per run, planned value per action key, and its release."""
    plans: dict[int, dict[str, float]] = {}
    releases: dict[int, float] = {}
    for rx in exp.runs:
        mine: dict[str, float] = {}
        for info in rx.info:
            if info.kind == "action" and info.key is not None and info.id in starts:
                mine[info.key] = starts[info.id] - info.engine_offset
        plans[rx.index] = mine
        first = rx.first
        releases[rx.index] = starts[first] if first is not None and first in starts else rx.release
    return plans, releases


def gantt_rows(exp: Expansion, problem: Problem, schedule: Schedule,
               status: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Gantt rows: lane = resource used (instrument or mover), label, start, end, status."""
    rows = []
    info = exp.info
    for o in problem.operations:
        s = schedule.starts.get(o.id)
        if s is None:
            continue
        i = info.get(o.id)
        assigned = schedule.assignment.get(o.id) or ()
        lane = assigned[0] if assigned else (i.instrument if i else "-")
        label = f"{i.id.split(':', 1)[0]} {i.key or i.action}" if i else o.id
        st = (status or {}).get(o.id) or ("frozen" if o.frozen_start is not None else "planned")
        rows.append({"lane": lane, "label": label, "start": s, "end": s + o.duration, "status": st,
                     "run": o.job, "kind": i.kind if i else "action"})
    return rows


# -- entry point --------------------------------------------------------------------------
@dataclass
class QuickPlan:
    """Result of `quick_plan`: a validated schedule (or None) and the best attempt."""

    schedule: Schedule | None
    problem: Problem
    warm: Schedule
    misfits: list[int]
    period: float | None


def quick_plan(exp: Expansion, *, piped: tuple[float | None, Mapping[int, Mapping[str, float]]] | None = None,
               probe: bool = False) -> QuickPlan:
    """Offsets by first fit of each run's template, re-timed for a pipeline period first and
    as earliest-start layouts second; the first layout the validator accepts wins.
    Fast (about linear in the operations), no search: `plan_campaign` repairs otherwise.

    Args:
        piped: a precomputed `modulo.pipeline` result for these runs.
        probe: only the answer matters (stop at the first run that does not fit).
    """
    from orchestrator.planner import lower_bound

    period, rels = piped if piped is not None else pipeline(exp)
    layouts: list[tuple[str, Mapping[int, Mapping[str, float]] | None]] = []
    if rels:
        layouts.append((f"visits re-timed for a {period:.0f} s period", rels))
    layouts.append(("earliest-start visits", None))
    best: tuple[float, Schedule, Problem, list[int]] | None = None
    for name, rel in layouts:
        offsets, misfits = place(exp, rel, stop_on_misfit=probe)
        prob = build_problem(exp, offsets, rel)
        warm = template_schedule(exp, offsets, rel)
        if misfits:
            score = 1e9 + len(misfits)
        else:
            bad = check(prob, warm)
            if not bad:
                sched = dataclasses.replace(warm, status="feasible",
                                            lower_bound=0.0 if probe else lower_bound(prob),
                                            notes=[f"every run placed at its first-fit start offset ({name})"])
                return QuickPlan(sched, prob, warm, [], period if rel is not None else None)
            score = float(len(bad))
        if best is None or score < best[0]:
            best = (score, warm, prob, misfits)
    assert best is not None
    return QuickPlan(None, best[2], best[1], best[3], period)


def plan_campaign(campaign: Campaign, *, time_limit: float = 10.0, use_cpsat: bool = False,
                  explain: bool = True, seed: int = 0, expansion: Expansion | None = None,
                  repair: bool = True) -> CampaignPlan:
    """Plan a campaign on its workcell.

    Args:
        campaign: a loaded campaign.
        time_limit: wall-time budget in seconds (planning, and the infeasibility
            explanation when one is needed). The answer is honest: ``infeasible`` only when
            proved, otherwise ``unknown`` ("not found within the time limit").
        use_cpsat: also run CP-SAT (OR-Tools) on what the constructive planner leaves.
        explain: compute the infeasibility explanation when not feasible.
        expansion: a precomputed expansion of ``campaign``.
        repair: when no quick layout validates, run the planner core to repair it (else
            report ``unknown`` at once; used by capacity searches).

    Raises:
        ExpansionError: the workcell cannot run the campaign at all (e.g. no plate mover).
    """
    t0 = time.perf_counter()
    logs.ensure_configured()
    exp = expansion or expand(campaign)
    notes: list[str] = []
    proved: list[Conflict] = []
    slots = slot_conflicts(campaign)
    quick = quick_plan(exp)
    if quick.schedule is not None and not slots:
        sched, problem = quick.schedule, quick.problem
    else:
        problem, warm, misfits = quick.problem, quick.warm, quick.misfits
        if slots:
            if time.perf_counter() < t0 + time_limit / 2:
                proved = analyze(problem).conflicts
            sched = dataclasses.replace(warm, status="infeasible", lower_bound=math.inf,
                                        notes=slots + [c.message for c in proved] + ["starts are a best-effort placement"])
        elif repair:
            budget = max(0.2, time_limit - (time.perf_counter() - t0))
            sched = plan(problem, time_limit=budget * (0.3 if use_cpsat else 0.5), use_cpsat=use_cpsat,
                         cpsat_time_limit=budget * 0.4, warm_start=warm, seed=seed)
            if sched.status == "infeasible" and time.perf_counter() < t0 + time_limit:
                proved = analyze(problem).conflicts
            if not sched.ok and sched.status != "infeasible" and len(check(problem, warm)) < len(check(problem, sched)):
                sched = dataclasses.replace(warm, status=sched.status, lower_bound=sched.lower_bound,
                                            notes=[*sched.notes, FIRST_FIT_NOTE])
        else:
            sched = dataclasses.replace(warm, status="unknown", lower_bound=0.0,
                                        notes=["no layout kept every constraint (planner repair not run)"])
        notes += list(sched.notes)
        if misfits:
            notes.append(f"{len(misfits)} run(s) did not fit their start window at any offset "
                         f"(first: {exp.runs[misfits[0]].label})")
    ok = sched.ok
    bad = [] if ok else check(problem, sched)
    starts, releases = engine_starts(exp, sched.starts)
    errs = cadence_errors(exp, sched.starts)
    result = CampaignPlan(
        campaign=campaign, expansion=exp, problem=problem, schedule=sched, feasible=ok,
        violations=[v.message for v in bad] if not ok else [],
        starts=starts, releases=releases,
        graphs={rx.index: pin_graph(rx.graph, rx.pins, rx.node_pins) for rx in exp.runs},
        operations=len(problem.operations), makespan_s=sched.makespan, lower_bound_s=sched.lower_bound,
        mean_cadence_error_s=sum(errs) / len(errs) if errs else 0.0,
        max_cadence_error_s=max(errs, default=0.0),
        max_plates_out=max_out(problem, sched.starts),
        plan_seconds=0.0,
        unknown=[(rx.label, k, c) for rx in exp.runs for k, c in rx.unknown],
        notes=notes,
        conflicts=list(proved),
    )
    if not ok and sched.status == "infeasible":
        result.violations = [n for n in sched.notes if n != "starts are a best-effort placement"][:20] + result.violations
    if not ok and explain:
        from .explain import explain_plan

        result.explanation = explain_plan(result, deadline=t0 + time_limit)
    result.plan_seconds = time.perf_counter() - t0
    log.info("campaign planned", campaign=campaign.name, status=sched.status, operations=result.operations,
             seconds=round(result.plan_seconds, 3))
    return result
