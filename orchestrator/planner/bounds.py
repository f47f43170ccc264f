"""Valid lower bounds on the makespan (latest end time, SECONDS, measured from time 0).

Each bound holds for every feasible schedule; `lower_bound` is their maximum. On a problem
with a positive lag cycle (no schedule exists) the bounds are ``inf``.
"""

from __future__ import annotations

import math
from collections import defaultdict

from .feasibility import Feasibility, analyze
from .model import Problem


def critical_path_bound(feas: Feasibility) -> float:
    """Longest path through releases, lags (min and max) and durations: max(est + tail)."""
    if feas.infeasible and not feas.tail:
        return math.inf
    if any(c.kind == "lag_cycle" for c in feas.conflicts):
        return math.inf
    return max((e + t for e, t in zip(feas.est, feas.tail, strict=True)), default=0.0)


def job_bound(problem: Problem, feas: Feasibility) -> float:
    """Per job: earliest start of its first op plus the job's longest chain (max est + tail).

    Equals the critical-path bound restricted to each job; reported separately for clarity.
    """
    if any(c.kind == "lag_cycle" for c in feas.conflicts):
        return math.inf
    best: dict[str, float] = defaultdict(float)
    for i, o in enumerate(problem.operations):
        if o.job is not None:
            best[o.job] = max(best[o.job], feas.est[i] + feas.tail[i])
    return max(best.values(), default=0.0)


def resource_bound(problem: Problem, feas: Feasibility) -> float:
    """Per resource: min release + total mandatory load / capacity + min remaining tail."""
    if any(c.kind == "lag_cycle" for c in feas.conflicts):
        return math.inf
    load: dict[str, float] = defaultdict(float)
    head: dict[str, float] = {}
    tail: dict[str, float] = {}
    for i, o in enumerate(problem.operations):
        for entry in o.choices:
            if len(entry) != 1:
                continue
            r = entry[0]
            load[r] += o.duration
            head[r] = min(head.get(r, math.inf), feas.est[i])
            tail[r] = min(tail.get(r, math.inf), feas.tail[i] - o.duration)
    cap = problem.capacity
    return max((head[r] + load[r] / cap[r] + max(0.0, tail[r]) for r in load), default=0.0)


def alternatives_bound(problem: Problem, feas: Feasibility) -> float:
    """Per set of alternatives A: work that must run on A / total capacity of A, after the
    earliest release among it (entries whose allowed set is a subset of A count)."""
    if any(c.kind == "lag_cycle" for c in feas.conflicts):
        return math.inf
    entries: list[tuple[frozenset[str], float, float]] = []
    sets: set[frozenset[str]] = set()
    for i, o in enumerate(problem.operations):
        for entry in o.choices:
            entries.append((frozenset(entry), o.duration, feas.est[i]))
            if len(entry) > 1:
                sets.add(frozenset(entry))
    cap = problem.capacity
    best = 0.0
    for alt in sorted(sets, key=sorted)[:64]:
        inside = [(d, e) for s, d, e in entries if s <= alt]
        work = sum(d for d, _ in inside)
        best = max(best, min(e for _, e in inside) + work / sum(cap[r] for r in alt))
    return best


def lower_bound(problem: Problem, feas: Feasibility | None = None) -> float:
    """The best of the bounds above, seconds (``inf`` if a lag cycle makes it infeasible)."""
    feas = feas if feas is not None else analyze(problem, resources=False)
    return max(critical_path_bound(feas), job_bound(problem, feas), resource_bound(problem, feas),
               alternatives_bound(problem, feas))
