"""Re-planning a campaign while it runs.

When a step overruns, fails or a measurement-dependent branch is decided, the engine
calls `replan_during_run` with what it knows now:

* ``now``: the engine clock (s);
* ``actual``: per run, started/finished action keys with their real start and duration
  (overruns included) — these are frozen where they happened;
* ``decisions``: per run, branch outcomes now known (``{"day[5].passage": True,
  "day[5].feed": False}``): the run is expanded again with them, so the steps that will
  really happen get planned (and those that will not are dropped).

Everything that started before ``now`` keeps its planned start and resources (frozen),
and so does each run's *next* action with its plate moves: the executor committed to it
when it reached it (it is already waiting for that start). The rest is planned again with
the planner core (warm-started from the previous plan, cadence targets kept: iteration k
still aims at the original anchor + k·every). The answer gives new starts for the steps
not yet committed, per run, to hand to the executors (``executor.plan.update(...)``).
Times in SECONDS.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from orchestrator.planner import Operation, Problem, Schedule, check, plan

from .expand import Expansion, expand
from .plan import CampaignPlan, build_problem, cadence_errors, engine_starts, gantt_rows

log = structlog.get_logger("cellwright.planning")


@dataclass
class Replan:
    """The answer of `replan_during_run`.

    Attributes:
        schedule: the new schedule (frozen ops at their actual/planned starts).
        problem: the problem that was solved (frozen ops marked).
        expansion: the expansion used (runs with new decisions re-expanded).
        feasible: True when every remaining window can still be kept.
        starts: per run index, new planned values of the action keys not yet committed.
        frozen: ids of the frozen operations.
        violations: readable broken constraints when not feasible.
        seconds: latency (wall seconds), also logged.
        mean_cadence_error_s: as in `CampaignPlan`.
    """

    schedule: Schedule
    problem: Problem
    expansion: Expansion
    feasible: bool
    starts: dict[int, dict[str, float]]
    frozen: set[str]
    violations: list[str]
    seconds: float
    mean_cadence_error_s: float
    notes: list[str] = field(default_factory=list)

    def gantt_rows(self) -> list[dict[str, Any]]:
        """Gantt rows, frozen work marked ``frozen``."""
        return gantt_rows(self.expansion, self.problem, self.schedule,
                          {o: "frozen" for o in self.frozen})


def _committed(exp: Expansion, starts: Mapping[str, float], durations: Mapping[str, float],
               now: float, commit: str = "reached") -> set[str]:
    """What the executors can no longer change: ops started before ``now``, and per run the
    next action (with the moves before it) when the executor has already reached it —
    i.e. unless the run's latest started op is an action still running at ``now``.

    Ops absent from ``starts`` (a branch just decided, added by re-expansion) are never
    committed: the executor reached that step without a plan for it and waits for one."""
    out: set[str] = set()
    for rx in exp.runs:
        dur = {o.id: durations.get(o.id, o.duration) for o in rx.ops}
        last: str | None = None
        for info in rx.info:
            s = starts.get(info.id)
            if s is not None and s < now:
                out.add(info.id)
                last = info.id
        if last is None or commit == "started" and exp.info[last].kind in ("action", "home", "store"):
            continue
        li = exp.info[last]
        if li.kind == "action" and starts[last] + dur[last] > now:
            continue  # still running: the executor decides its next step when it ends
        seen = False
        for info in rx.info:
            if info.id == last:
                seen = True
                continue
            if not seen or info.id in out:
                continue
            if info.id not in starts:
                # an op of a branch just decided (re-expansion): the executor is asking
                # for its start now, nothing about it is committed yet
                break
            out.add(info.id)  # moves up to, and the next action
            if info.kind == "action":
                break
    return out


def replan_during_run(cp: CampaignPlan, now: float, *,
                      actual: Mapping[int, Mapping[str, tuple[float, float]]] | None = None,
                      decisions: Mapping[int, Mapping[str, bool]] | None = None,
                      previous: Schedule | None = None, expansion: Expansion | None = None,
                      affected: set[int] | None = None, commit: str = "reached", horizon: float = 6 * 3600.0,
                      local_horizon: float = 2 * 86400.0,
                      time_limit: float = 1.0, use_cpsat: bool = False) -> Replan:
    """Re-plan the rest of a running campaign (see the module docstring).

    Args:
        cp: the campaign plan being executed.
        now: engine clock, s.
        actual: per run index, ``{action key: (start, duration)}`` of steps that started
            (durations of running steps: the expected duration so far, or the overrun).
        decisions: per run index, branch outcomes now known (dynamic key -> bool).
        previous: the schedule being executed (default ``cp.schedule``; pass the last
            re-plan's when re-planning again).
        expansion: the expansion of ``previous`` (default ``cp.expansion``).
        affected: more run indices allowed to move in the local repair (the runs the
            facts touch always are).
        horizon: second repair: also move the runs with work within this many seconds.
        local_horizon: repairs move only work planned within this many seconds of ``now``
            (later work keeps its plan, which stays valid: cadence is anchored).
        commit: ``"reached"`` (the current executor: a run's next action is fixed once the
            executor reached it) or ``"started"`` (an executor that re-reads its plan before
            it moves the plate: only started work is fixed).
        time_limit: planner budget, s.

    First only the next ``local_horizon`` of the runs the facts touch is re-planned around
    everything else (a small problem cut to a time window: fast, keeps the rest of the plan
    as it is); then also the runs busy in the next ``horizon``; then every run's
    uncommitted work. The first valid answer is kept, else the one with fewest violations
    (the merged schedule is always checked against the whole campaign).
    """
    t0 = time.perf_counter()
    prev = previous or cp.schedule
    exp = expansion or cp.expansion
    notes: list[str] = []
    merged_runs: set[int] = set()
    variants: list[tuple[str, Expansion]] = []
    changed = {i: {**exp.decisions.get(i, {}), **d} for i, d in (decisions or {}).items()
               if any(exp.decisions.get(i, {}).get(k) != v for k, v in d.items())}
    if changed:
        fresh = {rx.index: rx for rx in expand(cp.campaign, decisions=changed, runs=list(changed),
                                               home_before=exp.home_before).runs}
        exp = dataclasses.replace(exp, runs=[fresh.get(rx.index, rx) for rx in exp.runs],
                                  decisions={**exp.decisions, **changed})
        notes.append(f"re-expanded run(s) {', '.join(exp.runs[i].label for i in sorted(changed))} with new decisions")
        merged_runs = set(changed)
        # the step just decided may not be able to follow the last one on the deck (its
        # instrument is taken): the alternative sends the plate home in between
        done = {f"R{i + 1:04d}:{k}" for i, keys in (actual or {}).items() for k in keys}
        home = {i: set(k) for i, k in exp.home_before.items()}
        for i in changed:
            nxt = next((x for x in exp.runs[i].info if x.kind == "action" and x.id not in prev.starts
                        and x.id not in done), None)
            if nxt is not None and nxt.key is not None and nxt.key not in home.get(i, set()):
                home.setdefault(i, set()).add(nxt.key)
        if home != exp.home_before:
            runs = [i for i in changed if home.get(i) != exp.home_before.get(i)]
            alt = {rx.index: rx for rx in expand(cp.campaign, decisions=exp.decisions, runs=runs,
                                                 home_before=home).runs}
            variants.append(("plate home first", dataclasses.replace(
                exp, runs=[alt.get(rx.index, rx) for rx in exp.runs], home_before=home)))
    variants.insert(0, ("", exp))
    windowed: list[tuple[str, Any]] = []
    full: list[tuple[str, Any]] = []
    for vname, vexp in variants:
        w, f = _attempts(cp, vexp, prev, now, actual, merged_runs, affected, commit, horizon, local_horizon,
                         use_cpsat)
        windowed += [(f"{n} ({vname})" if vname else n, a) for n, a in w]
        full += [(f"{n} ({vname})" if vname else n, a) for n, a in f]
    best: tuple[int, Any] | None = None
    todo = windowed + full
    for k, (name, run) in enumerate(todo):
        left = time_limit - (time.perf_counter() - t0)
        if k and left <= 0.05:
            notes.append(f"{name}: not tried (time limit)")
            break
        cand, bad = run(max(0.05, left))
        notes.append(f"{name}: {cand[0].status}")
        if best is None or bad < best[0]:
            best = (bad, cand)
        if cand[0].ok:
            break
    assert best is not None
    sched, exp, base, committed = best[1]
    problem = base
    frozen = set(committed)
    plans, _ = engine_starts(exp, sched.starts)
    new = {i: {k: v for k, v in p.items() if f"R{i + 1:04d}:{k}" not in frozen} for i, p in plans.items()}
    broken = [] if sched.ok else [v.message for v in _violations(problem, sched, frozen)][:50]
    errs = cadence_errors(exp, sched.starts)
    seconds = time.perf_counter() - t0
    log.info("campaign re-planned", campaign=cp.campaign.name, now=now, status=sched.status, frozen=len(frozen),
             operations=len(problem.operations), latency_ms=round(1000 * seconds, 1))
    return Replan(sched, problem, exp, sched.ok, new, frozen, broken, seconds,
                  sum(errs) / len(errs) if errs else 0.0, notes + list(sched.notes))


def _attempts(cp: CampaignPlan, exp: Expansion, prev: Schedule, now: float,
              actual: Mapping[int, Mapping[str, tuple[float, float]]] | None, merged_runs: set[int],
              affected: set[int] | None, commit: str, horizon: float, local_horizon: float, use_cpsat: bool
              ) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The repairs of `replan_during_run` for one expansion: windowed ones (fast) and the
    re-plan of every run. Each is ``(name, run(budget) -> ((schedule, exp, problem,
    committed), violations))``."""
    base = build_problem(exp)
    starts = dict(prev.starts)
    dur_of: dict[str, float] = {}
    for i, keys in (actual or {}).items():
        label = f"R{i + 1:04d}"
        for key, (st, took) in keys.items():
            starts[f"{label}:{key}"] = st
            dur_of[f"{label}:{key}"] = took
    info = exp.info
    committed = _committed(exp, starts, dur_of, now, commit)
    planned_dur = {o.id: o.duration for o in cp.problem.operations}
    touched = set(merged_runs) | {info[o].run for o in dur_of if o in info and
                                  abs(dur_of[o] - planned_dur.get(o, dur_of[o])) > 1e-9}
    touched |= set(affected or ())
    if dur_of:
        base = dataclasses.replace(base, operations=tuple(
            dataclasses.replace(o, duration=dur_of[o.id]) if o.id in dur_of else o for o in base.operations))
    prev_targets = {o.id: o.target for o in cp.problem.operations if o.target is not None}
    anchors = {c.op: c for rx in exp.runs for c in rx.cadence}
    est: dict[str, float] = {}  # where each op is expected: planned start, or (new ops) its template time
    for rx in exp.runs:
        first = rx.first
        off = starts.get(first, rx.release) - rx.rel[first] if first is not None else 0.0
        for o in rx.ops:
            est[o.id] = starts[o.id] if o.id in starts else off + rx.rel[o.id]
    open_ops = [o.id for o in base.operations if o.id not in committed]

    def attempt(free: set[str], windowed: bool, budget: float, iterations: int | None,
                shift: Mapping[str, float] | None = None) -> tuple[Schedule, int]:
        fixed = {**starts, **(shift or {})}
        prob = _subproblem(base, free, fixed, prev.assignment, now, prev_targets, anchors,
                           _window(est, free, now, base) if windowed else None)
        cand = plan(prob, time_limit=budget, use_cpsat=use_cpsat and not windowed, warm_start=None if windowed else
                    Schedule({k: v for k, v in starts.items() if k in prob.op},
                             {k: v for k, v in prev.assignment.items() if k in prob.op}, prev.makespan, "unknown"),
                    iterations=iterations)
        merged = Schedule({**{k: v for k, v in fixed.items() if k in base.op}, **cand.starts},
                          {**{k: v for k, v in prev.assignment.items() if k in base.op}, **cand.assignment},
                          0.0, cand.status, cand.lower_bound, cand.solver, cand.seconds, list(cand.notes))
        missing = [oid for oid in base.op if oid not in merged.starts]
        for oid in missing:  # new ops outside the window (should not happen): at their template time
            merged.starts[oid] = est[oid]
            merged.assignment[oid] = tuple(r if isinstance(r, str) else r[0] for r in base.op[oid].resources)
        merged = dataclasses.replace(merged, makespan=max(merged.starts[o.id] + o.duration for o in base.operations))
        bad = len(_violations(base, merged, committed)) if cand.ok or cand.status == "unknown" else -1
        if bad == 0 and not cand.ok:  # what failed was only committed facts (e.g. an overrun): nothing to repair
            merged = dataclasses.replace(merged, status="feasible")
        if cand.ok and bad:
            merged = dataclasses.replace(merged, status="unknown",
                                         notes=merged.notes + [f"{bad} violation(s) outside the repaired window"])
        return merged, (bad if bad >= 0 else 10**9)

    near = now + local_horizon
    new_ops = {o for o in open_ops if o not in starts}  # from new decisions: always placed
    local = {o for o in open_ops if info[o].run in touched and est[o] < near} | new_ops
    soon = {info[o].run for o in open_ops if now <= est[o] < now + horizon} - touched
    wider = {o for o in open_ops if (info[o].run in touched or info[o].run in soon) and est[o] < near} | new_ops
    late = sum(max(0.0, d - planned_dur.get(o, d)) for o, d in dur_of.items())
    visits: dict[tuple[int, int], list[str]] = {}
    for oid in open_ops:
        visits.setdefault((info[oid].run, info[oid].visit), []).append(oid)

    def slip(delta: float) -> dict[str, float]:
        """Every uncommitted visit of the other runs starting in the next ``horizon`` later by ``delta``."""
        out: dict[str, float] = {}
        for (run, _), ops in visits.items():
            if run in soon and now <= min(est[o] for o in ops) < now + horizon:
                out.update({o: starts[o] + delta for o in ops if o in starts})
        return out

    attempts: list[tuple[str, set[str], bool, Mapping[str, float] | None]] = [
        (f"local repair of {len(touched)} run(s)", local, True, None)]
    if late > 0 and soon:
        for k in (1, 2):
            name = f"local repair, the next {horizon / 3600:g} h of {len(soon)} other run(s) {k * late:.0f} s later"
            attempts.append((name, local, True, slip(k * late)))
    if wider != local:
        attempts.append((f"repair of {len(touched | soon)} run(s) busy in the next {horizon / 3600:g} h", wider, True,
                         None))
    attempts.append(("re-plan of every run", set(open_ops), False, None))

    def run(free: set[str], windowed: bool, shift: Mapping[str, float] | None, last: bool) -> Any:
        def go(budget: float) -> tuple[tuple[Schedule, Expansion, Problem, set[str]], int]:
            cand, bad = attempt(free, windowed, budget, None if last else 0, shift)
            return (cand, exp, base, committed), bad
        return go

    fast = [(name, run(free, True, shift, False)) for name, free, windowed, shift in attempts if windowed]
    slow = [(name, run(free, False, shift, True)) for name, free, windowed, shift in attempts if not windowed]
    return fast, slow


def _violations(problem: Problem, schedule: Schedule, committed: set[str]) -> list[Any]:
    """The constraints ``schedule`` breaks that a re-plan is responsible for: not those
    between committed ops only (what happened, e.g. an overrun, cannot be re-planned)."""
    return [v for v in check(problem, schedule) if not set(v.ops) <= committed]


def _window(est: Mapping[str, float], free: set[str], now: float, base: Problem) -> tuple[float, float]:
    """The time window whose planned work the free ops can interact with."""
    if not free:
        return now, now
    lo = min(now, min(est[o] for o in free)) - 6 * 3600.0
    hi = max(est[o] + base.op[o].duration for o in free) + 6 * 3600.0
    return lo, hi


def _subproblem(base: Problem, free: set[str], starts: Mapping[str, float],
                assignment: Mapping[str, tuple[str, ...]], now: float, targets: Mapping[str, float],
                anchors: Mapping[str, Any], window: tuple[float, float] | None) -> Problem:
    """``base`` with every op outside ``free`` frozen where planned; with ``window``, only
    the ops overlapping it are kept and the lags to dropped (frozen) ops become release /
    deadline bounds of the free ops (dropped ops cannot move, so nothing is lost)."""
    op = base.op
    keep: set[str] = set()
    if window is None:
        keep = set(op)
    else:
        lo, hi = window
        for o in base.operations:
            s = starts.get(o.id)
            if o.id in free or (s is not None and s < hi and s + o.duration > lo):
                keep.add(o.id)
        for sp in base.spans:  # a holding is kept whole
            if (sp.first in keep) != (sp.last in keep):
                keep.update((sp.first, sp.last))
    bounds: dict[str, list[float]] = {}
    lags = []
    for lag in base.lags:
        if lag.a not in free and lag.b not in free:  # neither moves: nothing to decide
            continue
        ka, kb = lag.a in keep, lag.b in keep
        if ka and kb:
            lags.append(lag)
            continue
        if ka == kb:
            continue
        if ka and lag.a in free:  # b dropped: frozen at its planned start
            sb = starts[lag.b]
            d = op[lag.a].duration
            lo_b = bounds.setdefault(lag.a, [-math.inf, math.inf])
            ref_end = lag.kind == "end_start"
            lo_b[1] = min(lo_b[1], sb - lag.min + (0.0 if ref_end else d))
            if lag.max is not None:
                lo_b[0] = max(lo_b[0], sb - lag.max - (d if ref_end else 0.0))
        elif kb and lag.b in free:  # a dropped
            ref = starts[lag.a] + (op[lag.a].duration if lag.kind == "end_start" else 0.0)
            lo_b = bounds.setdefault(lag.b, [-math.inf, math.inf])
            lo_b[0] = max(lo_b[0], ref + lag.min)
            if lag.max is not None:
                lo_b[1] = min(lo_b[1], ref + lag.max + op[lag.b].duration)
    ops: list[Operation] = []
    for o in base.operations:
        if o.id not in keep:
            continue
        if o.id not in free and o.id in starts:
            ops.append(dataclasses.replace(
                o, frozen_start=starts[o.id], release=min(o.release, starts[o.id]), deadline=None, target=None,
                frozen_resources=tuple(assignment.get(o.id) or (r if isinstance(r, str) else r[0] for r in o.resources))))
            continue
        changes: dict[str, Any] = {"release": max(o.release, now)}
        c = anchors.get(o.id)
        if o.id in targets:
            changes["target"] = targets[o.id]
        elif c is not None and c.anchor is not None and c.anchor in starts:
            changes["target"] = starts[c.anchor] + c.k * c.every
        if o.deadline is not None and o.deadline < now:  # a run's start window already past
            changes["deadline"] = None
        b = bounds.get(o.id)
        if b is not None:
            changes["release"] = max(changes["release"], b[0])
            if math.isfinite(b[1]):
                dl = changes.get("deadline", o.deadline)
                changes["deadline"] = b[1] if dl is None else min(dl, b[1])
        ops.append(dataclasses.replace(o, **changes))
    spans = [sp for sp in base.spans if sp.first in keep and sp.last in keep]
    return Problem(tuple(ops), base.resources, tuple(lags), tuple(spans), base.horizon)
