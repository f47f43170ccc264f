"""Preprocessing shared by the constructive planner: index arrays and placement components.

A *component* is a set of operations placed together: operations linked by a maximum lag or
a `Span` are united (so a max lag can be repaired by shifting the whole group), and groups
that form a cycle through minimum lags are merged, so components form a DAG that a serial
schedule-generation scheme can walk in precedence order. Frozen operations belong to no
component: they are fixed points that give other operations bounds. Times in SECONDS.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from .feasibility import Feasibility
from .model import Problem, frozen_assignment

INF = math.inf
MAX_COMBOS = 32


@dataclass
class Prep:
    """Index-based view of a problem for fast placement (see module docstring)."""

    problem: Problem
    ids: list[str]
    dur: list[float]
    rnames: list[str]
    cap: list[int]
    combos: list[list[tuple[int, ...]]]  # resource choices per op (index tuples, entry order)
    frozen: list[bool]
    fstart: list[float]
    fassign: list[tuple[int, ...]]
    ext_lb: list[float]  # release and bounds from frozen ops
    ext_ub: list[float]  # latest start from deadline, horizon and frozen ops
    target: list[float | None]
    inn: list[list[tuple[int, float]]]  # arcs inside the op's component, by head
    out: list[list[tuple[int, float]]]  # arcs inside the op's component, by tail
    cross: list[list[tuple[int, float]]]  # arcs to ops of later components
    comp_of: list[int]
    comps: list[list[int]]
    comp_succ: list[list[int]]
    comp_npred: list[int]
    comp_spans: list[list[tuple[int, int, int]]]  # (resource, first, last)
    frozen_spans: list[tuple[int, int, int]]
    prio: list[float]  # static priority per op: latest start (deadlines, or ref - tail)
    demand: list[float]  # per resource: mandatory work (entries without alternatives), seconds
    est: list[float]


class _DSU:
    def __init__(self, n: int) -> None:
        self.p = list(range(n))

    def find(self, x: int) -> int:
        p = self.p
        while p[x] != x:
            p[x] = p[p[x]]
            x = p[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


def _scc(n: int, adj: list[list[int]]) -> list[int]:
    """Iterative Tarjan: SCC id per node."""
    index = [-1] * n
    low = [0] * n
    on = [False] * n
    comp = [-1] * n
    stack: list[int] = []
    counter = ncomp = 0
    for root in range(n):
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on[root] = True
        while work:
            v, k = work[-1]
            if k < len(adj[v]):
                work[-1] = (v, k + 1)
                w = adj[v][k]
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on[w] = True
                    work.append((w, 0))
                elif on[w]:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on[w] = False
                    comp[w] = ncomp
                    if w == v:
                        break
                ncomp += 1
    return comp


def prepare(problem: Problem, feas: Feasibility, targets: dict[str, float] | None = None) -> Prep:
    """Build the index arrays and components of a valid ``problem``.

    Args:
        problem: A problem that passed `validate_problem`.
        feas: Its `analyze` result (time windows and tails).
        targets: Optional ideal starts overriding ``Operation.target``.
    """
    g = feas.graph
    n = g.n
    ops = problem.operations
    rnames = [r.name for r in problem.resources]
    ridx = {r: i for i, r in enumerate(rnames)}
    cap = [r.capacity for r in problem.resources]
    combos: list[list[tuple[int, ...]]] = []
    for o in ops:
        entries = [tuple(ridx[r] for r in e) for e in o.choices]
        allc = []
        for combo in itertools.islice(itertools.product(*entries), 4 * MAX_COMBOS):
            if len(set(combo)) == len(combo):
                allc.append(combo)
            if len(allc) >= MAX_COMBOS:
                break
        combos.append(allc or [tuple(e[0] for e in entries)])
    frozen = [o.frozen_start is not None for o in ops]
    fstart = [o.frozen_start if o.frozen_start is not None else 0.0 for o in ops]
    fassign = [tuple(ridx[r] for r in frozen_assignment(o)) if o.frozen_start is not None else () for o in ops]
    ext_lb = [float(o.release) for o in ops]
    ext_ub = [INF] * n
    for i, o in enumerate(ops):
        if o.deadline is not None:
            ext_ub[i] = o.deadline - o.duration
        if problem.horizon is not None:
            ext_ub[i] = min(ext_ub[i], problem.horizon - o.duration)
    tmap = dict(targets or {})
    target = [tmap.get(o.id, o.target) for o in ops]

    dsu = _DSU(n)
    arcs: list[tuple[int, int, float]] = []
    for u in range(n):
        for v, w, lab in g.out[u]:
            if v >= n:
                continue
            if frozen[u] and frozen[v]:
                continue
            if frozen[u]:
                ext_lb[v] = max(ext_lb[v], fstart[u] + w)
                continue
            if frozen[v]:
                ext_ub[u] = min(ext_ub[u], fstart[v] - w)
                continue
            arcs.append((u, v, w))
            kind = g.labels[lab][0]
            if kind in ("lag_max", "span"):
                dsu.union(u, v)
    for _ in range(2):  # unite groups on min-lag cycles (a second pass settles re-rooted sets)
        root = [dsu.find(i) for i in range(n)]
        roots = sorted({root[i] for i in range(n) if not frozen[i]})
        group = {r: k for k, r in enumerate(roots)}
        adj: list[list[int]] = [[] for _ in roots]
        for u, v, _ in arcs:
            ga, gb = group[root[u]], group[root[v]]
            if ga != gb:
                adj[ga].append(gb)
        scc = _scc(len(roots), adj)
        first: dict[int, int] = {}
        merged = False
        for k, r in enumerate(roots):
            if scc[k] in first:
                dsu.union(first[scc[k]], r)
                merged = True
            else:
                first[scc[k]] = r
        if not merged:
            break
    root = [dsu.find(i) for i in range(n)]
    cid: dict[int, int] = {}
    comp_of = [-1] * n
    comps: list[list[int]] = []
    for i in range(n):
        if frozen[i]:
            continue
        c = cid.setdefault(root[i], len(comps))
        if c == len(comps):
            comps.append([])
        comps[c].append(i)
        comp_of[i] = c
    inn: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    out: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    cross: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    succ_sets: list[set[int]] = [set() for _ in comps]
    for u, v, w in arcs:
        if comp_of[u] == comp_of[v]:
            out[u].append((v, w))
            inn[v].append((u, w))
        else:
            cross[u].append((v, w))
            succ_sets[comp_of[u]].add(comp_of[v])
    comp_succ = [sorted(s) for s in succ_sets]
    npred = [0] * len(comps)
    for succs in comp_succ:
        for c in succs:
            npred[c] += 1
    comp_spans: list[list[tuple[int, int, int]]] = [[] for _ in comps]
    frozen_spans: list[tuple[int, int, int]] = []
    index = g.index
    for sp in problem.spans:
        f, l_, r = index[sp.first], index[sp.last], ridx[sp.resource]
        if frozen[f] and frozen[l_]:
            frozen_spans.append((r, f, l_))
        else:
            comp_spans[comp_of[l_] if not frozen[l_] else comp_of[f]].append((r, f, l_))
    demand = [0.0] * len(rnames)
    for i, o in enumerate(ops):
        for entry in o.choices:
            if len(entry) == 1 and not frozen[i]:
                demand[ridx[entry[0]]] += o.duration
    # Priority = latest start: from deadlines where they exist, else as if every op had to
    # end by a reference horizon no earlier than the critical path or any deadline.
    ref = max([e + t for e, t in zip(feas.est, feas.tail, strict=True)]
              + [feas.lst[i] + feas.tail[i] for i in range(n) if feas.lst[i] < INF] + [0.0])
    prio = [feas.lst[i] if feas.lst[i] < INF else ref - feas.tail[i] for i in range(n)]
    return Prep(problem, list(g.ids), list(g.dur), rnames, cap, combos, frozen, fstart, fassign,
                ext_lb, ext_ub, target, inn, out, cross, comp_of, comps, comp_succ, npred,
                comp_spans, frozen_spans, prio, demand, list(feas.est))
