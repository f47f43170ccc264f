"""Optional CP-SAT optimiser (Google OR-Tools), imported lazily.

The model works in integer SECONDS with conservative rounding, so every integer solution is
feasible for the real (float) problem: durations and minimum lags are rounded up, maximum lags,
deadlines and the horizon down, frozen operations block the whole seconds they touch. It is
therefore exact for integer data; with fractional data "optimal" refers to the rounded model
and is reported as "feasible". Solver statuses map to OPTIMAL->optimal, FEASIBLE->feasible,
INFEASIBLE->infeasible (proved), anything else->unknown (never infeasible).
"""

from __future__ import annotations

import math
import time
from typing import Any

from .model import Problem, Schedule, frozen_assignment


class PlannerUnavailable(RuntimeError):
    """The optional solver (ortools) is not installed."""


def _up(x: float) -> int:
    return math.ceil(x - 1e-9)


def _down(x: float) -> int:
    return math.floor(x + 1e-9)


def _integral(problem: Problem) -> bool:
    vals: list[float] = []
    for o in problem.operations:
        vals += [o.duration, o.release]
        vals += [x for x in (o.deadline, o.frozen_start) if x is not None]
    for lag in problem.lags:
        vals += [lag.min] + ([lag.max] if lag.max is not None else [])
    if problem.horizon is not None:
        vals.append(problem.horizon)
    return all(float(v).is_integer() for v in vals)


def solve(problem: Problem, *, time_limit: float = 5.0, seed: int = 0, hint: Schedule | None = None,
          targets: dict[str, float] | None = None, target_weight: float = 1.0,
          workers: int = 8, lower_bound: float = 0.0) -> Schedule:
    """Minimise makespan (+ ``target_weight`` * total |start - target|) with CP-SAT.

    Args:
        problem: A valid problem (see `validate_problem`).
        time_limit: Solver wall-time limit, seconds.
        seed: Solver random seed.
        hint: A schedule whose starts and resource choices are given as hints (warm start).
        targets: Ideal starts per op id, overriding ``Operation.target``.
        target_weight: Weight of the total deviation from targets against the makespan.
        workers: CP-SAT search workers.
        lower_bound: A known valid makespan lower bound, reported if better than the solver's.

    Returns:
        A `Schedule` (solver ``"cpsat"``); empty starts unless a solution was found.

    Raises:
        PlannerUnavailable: if ortools is not installed.
    """
    try:
        from ortools.sat.python import cp_model
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PlannerUnavailable("the CP-SAT planner needs OR-Tools: pip install 'ortools==9.14.*'") from exc
    t0 = time.perf_counter()
    m = cp_model.CpModel()
    ops = problem.operations
    tmap = dict(targets or {})
    dur = {o.id: _up(o.duration) for o in ops}
    frozen = {o.id: o for o in ops if o.frozen_start is not None}
    hi_time = max([o.release for o in ops] + [(o.frozen_start or 0.0) + o.duration for o in frozen.values()]
                  + [t for t in (tmap.get(o.id, o.target) for o in ops) if t is not None] + [0.0])
    horizon = _up(hi_time) + sum(dur.values()) + sum(max(0, _up(lag.min)) for lag in problem.lags) + 1
    if problem.horizon is not None:
        horizon = min(horizon, _down(problem.horizon))
    start: dict[str, Any] = {}
    end: dict[str, Any] = {}
    by_res: dict[str, list[Any]] = {r.name: [] for r in problem.resources}
    chosen: dict[str, list[list[tuple[str, Any]]]] = {}
    mk = m.NewIntVar(0, max(horizon, 0) + 1, "makespan")
    for o in ops:
        if o.id in frozen:
            s0 = _down(o.frozen_start)  # type: ignore[arg-type]
            e0 = _up(o.frozen_start + o.duration)  # type: ignore[operator]
            itv = m.NewFixedSizeIntervalVar(s0, e0 - s0, f"f_{o.id}")
            start[o.id], end[o.id] = s0, e0
            for r in frozen_assignment(o):
                if o.duration > 0:
                    by_res[r].append(itv)
            m.Add(mk >= e0)
            continue
        lo = _up(o.release)
        hi = horizon - dur[o.id]
        if o.deadline is not None:
            hi = min(hi, _down(o.deadline - o.duration))
        s = m.NewIntVar(lo, max(lo, hi), f"s_{o.id}")
        if hi < lo:
            m.Add(s < lo)  # empty window: infeasible, proved by the solver
        start[o.id], end[o.id] = s, s + dur[o.id]
        itv = m.NewFixedSizeIntervalVar(s, dur[o.id], f"i_{o.id}")
        m.Add(mk >= s + dur[o.id])
        chosen[o.id] = []
        occupies = dur[o.id] > 0  # a zero-duration operation occupies no capacity
        for k, entry in enumerate(o.choices):
            if len(entry) == 1:
                if occupies:
                    by_res[entry[0]].append(itv)
                chosen[o.id].append([(entry[0], None)])
                continue
            lits = []
            for r in entry:
                lit = m.NewBoolVar(f"x_{o.id}_{k}_{r}")
                if occupies:
                    by_res[r].append(m.NewOptionalFixedSizeIntervalVar(s, dur[o.id], lit, f"o_{o.id}_{k}_{r}"))
                lits.append((r, lit))
            m.AddExactlyOne(lit for _, lit in lits)
            chosen[o.id].append(lits)
    opd = problem.op
    for lag in problem.lags:
        base = opd[lag.a].duration if lag.kind == "end_start" else 0.0
        a, b = lag.a in frozen, lag.b in frozen
        if a and b:
            continue
        if a:
            ref = frozen[lag.a].frozen_start + base  # type: ignore[operator]
            m.Add(start[lag.b] >= _up(ref + lag.min))
            if lag.max is not None:
                m.Add(start[lag.b] <= _down(ref + lag.max))
        elif b:
            fb = frozen[lag.b].frozen_start
            m.Add(start[lag.a] <= _down(fb - base - lag.min))  # type: ignore[operator]
            if lag.max is not None:
                m.Add(start[lag.a] >= _up(fb - base - lag.max))  # type: ignore[operator]
        else:
            m.Add(start[lag.b] - start[lag.a] >= _up(base + lag.min))
            if lag.max is not None:
                m.Add(start[lag.b] - start[lag.a] <= _down(base + lag.max))
    for k, sp in enumerate(problem.spans):
        s_expr, e_expr = start[sp.first], end[sp.last]
        size = m.NewIntVar(0, max(horizon, 0) + 1, f"span_size_{k}")
        m.Add(size == e_expr - s_expr)
        held = m.NewBoolVar(f"span_held_{k}")  # an empty holding occupies nothing
        m.Add(size >= 1).OnlyEnforceIf(held)
        m.Add(size == 0).OnlyEnforceIf(held.Not())
        by_res[sp.resource].append(m.NewOptionalIntervalVar(s_expr, size, e_expr, held, f"span_{k}"))
    for res in problem.resources:
        if not by_res[res.name]:
            continue
        if res.capacity == 1:
            m.AddNoOverlap(by_res[res.name])
        else:
            m.AddCumulative(by_res[res.name], [1] * len(by_res[res.name]), res.capacity)
    devs = []
    for o in ops:
        tgt = tmap.get(o.id, o.target)
        if tgt is None or o.id in frozen:
            continue
        d = m.NewIntVar(0, 2 * horizon + abs(round(tgt)) + 1, f"dev_{o.id}")
        m.AddAbsEquality(d, start[o.id] - round(tgt))
        devs.append(d)
    w = round(target_weight * 1000) if devs else 0
    m.Minimize((1000 if devs else 1) * mk + w * sum(devs))
    if hint is not None:
        for o in ops:
            if o.id in frozen or o.id not in hint.starts or not math.isfinite(hint.starts[o.id]):
                continue
            m.AddHint(start[o.id], round(hint.starts[o.id]))
            picks = hint.assignment.get(o.id, ())
            for k, lits in enumerate(chosen[o.id]):
                for r, lit in lits:
                    if lit is not None:
                        m.AddHint(lit, k < len(picks) and picks[k] == r)
        if math.isfinite(hint.makespan):
            m.AddHint(mk, _up(hint.makespan))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.random_seed = int(seed)
    solver.parameters.num_workers = int(workers)
    code = solver.Solve(m)
    name = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible",
            cp_model.INFEASIBLE: "infeasible"}.get(code, "unknown")
    notes = [f"cp-sat status {solver.StatusName(code)}"]
    exact = _integral(problem)
    if name == "infeasible" and not exact:
        notes.append("rounded integer model infeasible; the real problem may not be")
        name = "unknown"
    if name not in ("optimal", "feasible"):
        return Schedule({}, {}, math.inf, name, lower_bound, "cpsat", time.perf_counter() - t0, notes)  # type: ignore[arg-type]
    starts: dict[str, float] = {}
    assignment: dict[str, tuple[str, ...]] = {}
    for o in ops:
        if o.id in frozen:
            starts[o.id] = float(o.frozen_start)  # type: ignore[arg-type]
            assignment[o.id] = frozen_assignment(o)
            continue
        starts[o.id] = float(solver.Value(start[o.id]))
        assignment[o.id] = tuple(next(r for r, lit in lits if lit is None or solver.Value(lit))
                                 for lits in chosen[o.id])
    makespan = max((starts[o.id] + o.duration for o in ops), default=0.0)
    lb = lower_bound
    if exact and not devs:
        lb = max(lb, float(solver.BestObjectiveBound()))
    if name == "optimal" and not exact:
        notes.append("optimal for the integer-rounded model only")
        name = "feasible"
    return Schedule(starts, assignment, makespan, name, lb, "cpsat", time.perf_counter() - t0, notes)  # type: ignore[arg-type]
