"""Feasibility analysis that can PROVE infeasibility and name the constraints at fault.

Two checks, both necessary conditions only (passing them does not prove feasibility):

1. Temporal: longest paths (Bellman-Ford) on the lag graph; a positive cycle is a set of
   lags / releases / deadlines / frozen starts that cannot all hold; it is named in order.
2. Resource load: for every resource (and every set of alternatives, capacities pooled), the
   operations that must use it with their time windows ``[earliest start, latest end]`` from
   step 1; if the work in some window exceeds ``capacity * window length`` (Vilim's overload
   check, O(n log n)), the resource and the window are named.

Times in SECONDS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .graph import NEG_INF, Graph, build_graph, longest_paths, topological_order
from .model import Problem

INF = math.inf


@dataclass(frozen=True, slots=True)
class Conflict:
    """A proved reason why no schedule exists.

    Attributes:
        kind: ``"lag_cycle"`` or ``"resource_overload"``.
        message: Human-readable explanation naming the constraints.
        constraints: One description per constraint involved (cycle order for lag cycles).
        ops: Operation ids involved.
        resource: The overloaded resource (overload only).
        start: Window start, seconds (overload only).
        end: Window end, seconds (overload only).
    """

    kind: str
    message: str
    constraints: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()
    resource: str | None = None
    start: float | None = None
    end: float | None = None


@dataclass
class Feasibility:
    """Result of `analyze`.

    Attributes:
        infeasible: True only when infeasibility is proved (then ``conflicts`` say why).
        conflicts: Proved conflicts.
        graph: The constraint graph used.
        est: Earliest start per node index (temporal relaxation), seconds.
        lst: Latest start per node index (``inf`` when unbounded), seconds.
        tail: Longest path from the start of each op to the end of the schedule, seconds
            (includes the op's own duration).
    """

    infeasible: bool
    conflicts: list[Conflict]
    graph: Graph
    est: list[float] = field(default_factory=list)
    lst: list[float] = field(default_factory=list)
    tail: list[float] = field(default_factory=list)

    @property
    def earliest(self) -> dict[str, float]:
        """Earliest start per op id, seconds."""
        return dict(zip(self.graph.ids, self.est, strict=True))

    @property
    def latest(self) -> dict[str, float]:
        """Latest start per op id (``inf`` when unbounded), seconds."""
        return dict(zip(self.graph.ids, self.lst, strict=True))


def _cycle_conflict(g: Graph, cycle: list[tuple[int, int, float, int]]) -> Conflict:
    total = sum(w for _, _, w, _ in cycle)
    descs = tuple(g.describe(lab) for _, _, _, lab in cycle)
    ops = tuple(dict.fromkeys(g.ids[x] for u, v, _, _ in cycle for x in (u, v) if x < g.n))
    msg = (
        "temporal constraints cannot all hold (they form a cycle that needs "
        f"{total:g} s more than is available): " + "; ".join(descs)
    )
    return Conflict("lag_cycle", msg, descs, ops)


def analyze(problem: Problem, *, resources: bool = True) -> Feasibility:
    """Analyze ``problem`` (assumed valid) for provable infeasibility and time windows.

    Args:
        problem: A problem that passed `validate_problem`.
        resources: Also run the resource-load check.

    Returns:
        A `Feasibility`; ``infeasible`` is True only when proved.
    """
    g = build_graph(problem)
    n = g.n
    order = topological_order(n, g.out)
    dist, cycle = longest_paths(g.out, {g.src: 0.0}, [g.src, *order])
    if cycle is not None:
        return Feasibility(True, [_cycle_conflict(g, cycle)], g, [0.0] * n, [INF] * n, [0.0] * n)
    est = dist[:n]
    rev = g.reversed_out()
    back, cycle = longest_paths(rev, {g.src: 0.0}, [g.src, *reversed(order)])
    if cycle is not None:  # pragma: no cover - same cycles as above, reversed
        return Feasibility(True, [_cycle_conflict(g, [(v, u, w, lab) for u, v, w, lab in reversed(cycle)])],
                           g, est, [INF] * n, [0.0] * n)
    lst = [INF if back[i] == NEG_INF else -back[i] for i in range(n)]
    rev_ops = [[(v, w, lab) for v, w, lab in arcs if v < n] for arcs in rev[:n]]
    tail, _ = longest_paths(rev_ops, {i: g.dur[i] for i in range(n)}, list(reversed(order)))
    feas = Feasibility(False, [], g, est, lst, tail)
    if resources:
        for c in _overloads(problem, feas):
            feas.conflicts.append(c)
            feas.infeasible = True
    return feas


def _overloads(problem: Problem, feas: Feasibility) -> list[Conflict]:
    """Overload check per resource, and per set of alternatives pooled (capacities added),
    over the operations that must use it and have a finite window."""
    g = feas.graph
    lct = [feas.lst[i] + g.dur[i] for i in range(g.n)]
    cap = problem.capacity
    pools: dict[tuple[str, ...], None] = {(r.name,): None for r in problem.resources}
    for o in problem.operations:
        for entry in o.choices:
            if len(entry) > 1:
                pools.setdefault(tuple(sorted(set(entry))), None)
    out: list[Conflict] = []
    for pool in list(pools)[: len(problem.resources) + 64]:
        members = set(pool)
        tasks = []
        for i, o in enumerate(problem.operations):
            inside = [e for e in o.choices if set(e) <= members]
            if len(inside) == 1 and o.duration > 0 and feas.lst[i] < INF:
                tasks.append(i)  # ops with two entries in the pool are left out (still valid)
        if tasks:
            c = _overload_one("|".join(pool), sum(cap[r] for r in pool), tasks, feas.est, lct, g)
            if c is not None:
                out.append(c)
    return out


def _overload_one(name: str, cap: int, tasks: list[int], est: list[float], lct: list[float],
                  g: Graph) -> Conflict | None:
    """Vilim's Theta-tree overload check: some set needs more than cap * window."""
    by_est = sorted(tasks, key=lambda i: est[i])
    pos = {t: k for k, t in enumerate(by_est)}
    size = 1
    while size < len(by_est):
        size *= 2
    energy = [0.0] * (2 * size)
    env = [NEG_INF] * (2 * size)
    for j in sorted(tasks, key=lambda i: lct[i]):
        k = pos[j] + size
        energy[k] = g.dur[j]
        env[k] = cap * est[j] + g.dur[j]
        k //= 2
        while k:
            lft, rgt = 2 * k, 2 * k + 1
            energy[k] = energy[lft] + energy[rgt]
            env[k] = max(env[rgt], env[lft] + energy[rgt])
            k //= 2
        if env[1] > cap * lct[j] + 1e-6:
            inserted = [t for t in by_est if lct[t] <= lct[j]]
            acc = 0.0
            for t in reversed(inserted):
                acc += g.dur[t]
                if cap * est[t] + acc > cap * lct[j] + 1e-6:
                    start, end = est[t], lct[j]
                    ops = [g.ids[x] for x in inserted if est[x] >= start]
                    shown = ", ".join(ops[:8]) + (f" and {len(ops) - 8} more" if len(ops) > 8 else "")
                    msg = (f"resource {name} (capacity {cap}) is overloaded: operations need {acc:g} s "
                           f"within [{start:g}, {end:g}] s but only {cap * (end - start):g} s are "
                           f"available ({shown})")
                    return Conflict("resource_overload", msg, (msg,), tuple(ops), name, start, end)
    return None
