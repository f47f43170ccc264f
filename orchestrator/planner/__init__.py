"""Scheduling core: a plain problem model in, a validated schedule out.

The planner knows nothing of protocols. Typical use::

    from orchestrator.planner import Operation, Lag, Problem, Resource, plan
    sched = plan(problem, time_limit=1.0)
    if sched.ok: ...

All times are in SECONDS. `plan` runs the feasibility analysis (which may prove the problem
infeasible and name the constraints at fault), the constructive planner, optionally CP-SAT,
and always re-checks the answer with the independent validator: a schedule is reported
``optimal``/``feasible`` only if it has no violation.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable, Mapping

from .bounds import lower_bound
from .components import prepare
from .constructive import construct
from .cpsat import PlannerUnavailable
from .feasibility import Conflict, Feasibility, analyze
from .model import (
    Lag,
    Operation,
    Problem,
    ProblemError,
    Resource,
    Schedule,
    Span,
    validate_problem,
)
from .validate import Violation, check

__all__ = [
    "Conflict", "Feasibility", "Lag", "Operation", "PlannerUnavailable", "Problem", "ProblemError",
    "Resource", "Schedule", "Span", "Violation", "analyze", "check", "lower_bound", "plan",
    "replan", "validate_problem",
]


def _deviation(problem: Problem, s: Schedule, targets: Mapping[str, float]) -> float:
    total = 0.0
    for o in problem.operations:
        t = targets.get(o.id, o.target)
        if t is not None and o.id in s.starts:
            total += abs(s.starts[o.id] - t)
    return total


def plan(problem: Problem, *, time_limit: float = 1.0, seed: int = 0, use_cpsat: bool = False,
         cpsat_time_limit: float | None = None, warm_start: Schedule | None = None,
         targets: Mapping[str, float] | None = None, target_weight: float = 1.0,
         iterations: int | None = None, cpsat_workers: int = 8) -> Schedule:
    """Plan ``problem``: feasibility check, constructive planner, optional CP-SAT, validation.

    Args:
        problem: The problem (validated first).
        time_limit: Budget of the constructive planner in seconds, analysis included (the
            first construction always completes, even past it; its cost is about linear in
            the number of operations).
        seed: Random seed; with ``iterations`` set the constructive result is deterministic.
        use_cpsat: Also run CP-SAT, warm-started from the best schedule so far.
        cpsat_time_limit: CP-SAT wall-time limit in seconds (default ``time_limit``).
        warm_start: A previous schedule: CP-SAT hint, and kept if still valid and better.
        targets: Ideal starts per op id (seconds), overriding ``Operation.target``.
        target_weight: Weight of total |start - target| against the makespan.
        iterations: Optional improvement-iteration budget (restarts or tabu iterations).
        cpsat_workers: CP-SAT search workers.

    Returns:
        A `Schedule`. ``infeasible`` only when proved (notes name the conflicting
        constraints; starts are then a best-effort placement); ``unknown`` when no valid
        schedule was found within the limits (notes list the violations left).

    Raises:
        ProblemError: if the problem is malformed.
        PlannerUnavailable: if ``use_cpsat`` and OR-Tools is not installed.
    """
    t0 = time.perf_counter()
    validate_problem(problem)
    tmap = dict(targets or {})
    feas = analyze(problem)
    lb = lower_bound(problem, feas) if not feas.infeasible else math.inf
    has_targets = bool(tmap) or any(o.target is not None for o in problem.operations)
    prep = prepare(problem, feas, tmap)
    budget = max(0.0, time_limit - (time.perf_counter() - t0) - 0.01)  # keep time to validate
    best = construct(prep, time_limit=0.0 if feas.infeasible else budget, seed=seed,
                     iterations=0 if feas.infeasible else iterations, target_weight=target_weight,
                     lower_bound=0.0 if has_targets or not math.isfinite(lb) else lb)
    notes = list(best.notes)
    if feas.infeasible:
        notes = [c.message for c in feas.conflicts] + ["starts are a best-effort placement"] + notes
        return dataclasses.replace(best, status="infeasible", lower_bound=lb, notes=notes,
                                   seconds=time.perf_counter() - t0)

    def score(s: Schedule) -> float:
        return s.makespan + target_weight * _deviation(problem, s, tmap)

    violations = check(problem, best)
    if (warm_start is not None and warm_start.starts and not check(problem, warm_start)
            and (violations or score(warm_start) < score(best))):
        best, violations = dataclasses.replace(warm_start, solver="warm_start"), []
    if use_cpsat:
        from .cpsat import solve

        cp = solve(problem, time_limit=time_limit if cpsat_time_limit is None else cpsat_time_limit,
                   seed=seed, hint=best if best.starts else warm_start, targets=tmap,
                   target_weight=target_weight, workers=cpsat_workers, lower_bound=lb)
        notes += cp.notes
        lb = max(lb, cp.lower_bound)
        if cp.status == "infeasible":
            return dataclasses.replace(best, status="infeasible", lower_bound=lb,
                                       notes=notes + ["CP-SAT proved the problem infeasible"],
                                       seconds=time.perf_counter() - t0)
        if cp.starts and (violations or score(cp) <= score(best)):
            cp_violations = check(problem, cp)
            if not cp_violations:
                best, violations = cp, []
                if cp.status == "optimal":
                    return dataclasses.replace(cp, lower_bound=lb, notes=notes, seconds=time.perf_counter() - t0)
            else:  # pragma: no cover - would be a CP-SAT model bug
                notes.append(f"CP-SAT answer rejected by the validator: {cp_violations[0].message}")
    if violations:
        notes += [f"{len(violations)} violation(s) left"] + [v.message for v in violations[:10]]
        status = "unknown"
    elif not has_targets and best.makespan <= lb + 1e-6:
        status = "optimal"
    else:
        status = "feasible"
    return dataclasses.replace(best, status=status, lower_bound=lb, notes=notes,  # type: ignore[arg-type]
                               seconds=time.perf_counter() - t0)


def freeze(problem: Problem, previous: Schedule, now: float, frozen: Iterable[str] | None = None) -> Problem:
    """The problem left at time ``now``: started/done ops frozen, the rest released at ``now``.

    Args:
        problem: The (possibly updated) problem, e.g. with actual durations of overruns.
        previous: The schedule being executed (its starts/assignment are taken for frozen ops).
        now: Current time, seconds.
        frozen: Ids of ops that started or finished; default: ops whose previous start < now.

    Raises:
        ProblemError: if a frozen op has no start or assignment in ``previous``.
    """
    ids = set(frozen) if frozen is not None else {k for k, s in previous.starts.items() if s < now}
    ops = []
    for o in problem.operations:
        if o.frozen_start is not None:
            ops.append(o)
        elif o.id in ids:
            if o.id not in previous.starts or o.id not in previous.assignment:
                raise ProblemError(f"replan: frozen operation {o.id!r} has no start/assignment in the previous schedule")
            ops.append(dataclasses.replace(o, frozen_start=previous.starts[o.id],
                                           frozen_resources=tuple(previous.assignment[o.id])))
        else:
            ops.append(dataclasses.replace(o, release=max(o.release, now)))
    unknown = ids - set(problem.op)
    if unknown:
        raise ProblemError(f"replan: unknown frozen operation(s) {sorted(unknown)}")
    return dataclasses.replace(problem, operations=tuple(ops))


def replan(problem: Problem, previous: Schedule, now: float, frozen: Iterable[str] | None = None,
           **kwargs: object) -> Schedule:
    """Re-plan at time ``now``: frozen ops keep start and resources, the rest start >= now.

    Args:
        problem: The problem (may carry updated durations, e.g. actual durations of overruns).
        previous: The schedule being executed.
        now: Current time, seconds.
        frozen: Ids of ops started or done; default: ops whose previous start is before ``now``.
        **kwargs: Passed to `plan` (``time_limit``, ``use_cpsat``, ...); ``warm_start``
            defaults to ``previous``.

    Raises:
        ProblemError: as `freeze` and `plan`.
    """
    kwargs.setdefault("warm_start", previous)
    sched = plan(freeze(problem, previous, now, frozen), **kwargs)  # type: ignore[arg-type]
    return dataclasses.replace(sched, notes=[f"replanned at {now:g} s"] + list(sched.notes))
