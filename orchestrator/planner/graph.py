"""Temporal constraint graph (difference constraints) and longest paths with cycle naming.

Every temporal constraint of a `Problem` becomes an arc ``u -> v`` of weight ``w`` meaning
``start(v) >= start(u) + w`` (seconds). A virtual node ``src`` stands for time 0, so releases,
deadlines, the horizon and frozen starts are arcs too. A cycle of positive total weight is a
set of constraints that cannot all hold.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .model import Lag, Problem, Span

EPS = 1e-6
NEG_INF = float("-inf")

Label = tuple[str, object, float]  # (kind, Lag | Span | op id, value in seconds)


@dataclass
class Graph:
    """Arc lists over nodes ``0..n-1`` (operations, problem order) and ``src = n``."""

    ids: list[str]
    index: dict[str, int]
    dur: list[float]
    out: list[list[tuple[int, float, int]]]
    labels: list[Label] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def src(self) -> int:
        return len(self.ids)

    def add(self, u: int, v: int, w: float, label: Label) -> None:
        self.labels.append(label)
        self.out[u].append((v, w, len(self.labels) - 1))

    def reversed_out(self) -> list[list[tuple[int, float, int]]]:
        """Arc lists of the reversed graph (same weights and labels)."""
        rev: list[list[tuple[int, float, int]]] = [[] for _ in self.out]
        for u, arcs in enumerate(self.out):
            for v, w, lab in arcs:
                rev[v].append((u, w, lab))
        return rev

    def describe(self, label: int) -> str:
        """A one-line description of the constraint behind arc label ``label``."""
        kind, obj, value = self.labels[label]
        if kind in ("lag_min", "lag_max"):
            assert isinstance(obj, Lag)
            ref = "end" if obj.kind == "end_start" else "start"
            bound = f">= {obj.min:g} s" if kind == "lag_min" else f"<= {obj.max:g} s"
            return f"lag start({obj.b}) - {ref}({obj.a}) {bound}"
        if kind == "span":
            assert isinstance(obj, Span)
            return f"span on {obj.resource}: end({obj.last}) >= start({obj.first})"
        if kind == "release":
            return f"release of {obj}: start >= {value:g} s"
        if kind == "deadline":
            return f"deadline of {obj}: end <= {value:g} s"
        if kind == "horizon":
            return f"horizon: end of {obj} <= {value:g} s"
        if kind == "frozen":
            return f"frozen start of {obj} = {value:g} s"
        return f"{kind} {obj}"


def build_graph(problem: Problem, *, extra_release: dict[str, float] | None = None) -> Graph:
    """Build the constraint graph of ``problem`` (assumed valid, see `validate_problem`).

    Args:
        problem: The problem.
        extra_release: Optional additional lower bounds on starts (seconds) per op id.
    """
    ids = [o.id for o in problem.operations]
    index = {oid: i for i, oid in enumerate(ids)}
    dur = [float(o.duration) for o in problem.operations]
    g = Graph(ids, index, dur, [[] for _ in range(len(ids) + 1)])
    src = g.src
    for i, o in enumerate(problem.operations):
        rel = o.release
        if extra_release and o.id in extra_release:
            rel = max(rel, extra_release[o.id])
        if o.frozen_start is not None:
            g.add(src, i, o.frozen_start, ("frozen", o.id, o.frozen_start))
            g.add(i, src, -o.frozen_start, ("frozen", o.id, o.frozen_start))
        g.add(src, i, rel, ("release", o.id, rel))
        if o.deadline is not None:
            g.add(i, src, o.duration - o.deadline, ("deadline", o.id, o.deadline))
        if problem.horizon is not None:
            g.add(i, src, o.duration - problem.horizon, ("horizon", o.id, problem.horizon))
    for lag in problem.lags:
        a, b = index[lag.a], index[lag.b]
        base = dur[a] if lag.kind == "end_start" else 0.0
        g.add(a, b, base + lag.min, ("lag_min", lag, lag.min))
        if lag.max is not None:
            g.add(b, a, -(base + lag.max), ("lag_max", lag, lag.max))
    for sp in problem.spans:
        f, l_ = index[sp.first], index[sp.last]
        g.add(f, l_, -dur[l_], ("span", sp, 0.0))
    return g


def longest_paths(
    out: list[list[tuple[int, float, int]]],
    sources: dict[int, float],
    order: list[int] | None = None,
) -> tuple[list[float], list[tuple[int, int, float, int]] | None]:
    """Label-correcting longest paths (Bellman-Ford, FIFO queue) with positive-cycle detection.

    Args:
        out: Arc lists ``out[u] = [(v, w, label), ...]``.
        sources: Initial distances of the start nodes.
        order: Optional node order to seed the queue with (e.g. a topological order).

    Returns:
        ``(dist, cycle)``: distances (``-inf`` if unreachable) and, when a cycle of positive
        weight exists, its arcs as ``(u, v, w, label)`` in order; distances are then partial.
    """
    n = len(out)
    dist = [NEG_INF] * n
    pred = [-1] * n
    pred_arc: list[tuple[float, int]] = [(0.0, -1)] * n
    inq = [False] * n
    q: deque[int] = deque()
    for s, d in sources.items():
        dist[s] = d
    seed = order if order is not None else list(sources)
    for s in seed:
        if dist[s] > NEG_INF and not inq[s]:
            inq[s] = True
            q.append(s)
    budget = n + 1
    while q:
        u = q.popleft()
        inq[u] = False
        du = dist[u]
        for v, w, lab in out[u]:
            nd = du + w
            if nd > dist[v] + EPS:
                dist[v] = nd
                pred[v] = u
                pred_arc[v] = (w, lab)
                budget -= 1
                if budget <= 0:
                    budget = n + 1
                    cyc = _pred_cycle(pred)
                    if cyc is not None:
                        return dist, [(pred[v_], v_, pred_arc[v_][0], pred_arc[v_][1]) for v_ in cyc]
                if not inq[v]:
                    inq[v] = True
                    q.append(v)
    return dist, None


def _pred_cycle(pred: list[int]) -> list[int] | None:
    """Find a cycle in the predecessor graph; return its nodes in arc order, or None."""
    n = len(pred)
    state = [0] * n  # 0 new, 1 on current walk, 2 done
    for s in range(n):
        if state[s]:
            continue
        walk = []
        v = s
        while v >= 0 and state[v] == 0:
            state[v] = 1
            walk.append(v)
            v = pred[v]
        if v >= 0 and state[v] == 1:
            # walk[k+1] == pred[walk[k]]; reversed, arcs (pred[x], x) chain forward.
            return walk[walk.index(v):][::-1]
        for x in walk:
            state[x] = 2
    return None


def topological_order(n: int, out: list[list[tuple[int, float, int]]], forward_only: bool = True) -> list[int]:
    """A topological order of the arcs with ``w >= 0``-style forward direction.

    Uses arcs whose weight is non-negative when ``forward_only`` (min lags), which is acyclic
    for most real problems; nodes left in a cycle are appended at the end in index order.
    """
    indeg = [0] * n
    for u in range(n):
        for v, w, _ in out[u]:
            if v < n and u < n and (w >= 0 or not forward_only):
                indeg[v] += 1
    q = deque(i for i in range(n) if indeg[i] == 0)
    order: list[int] = []
    while q:
        u = q.popleft()
        order.append(u)
        for v, w, _ in out[u]:
            if v < n and (w >= 0 or not forward_only):
                indeg[v] -= 1
                if indeg[v] == 0:
                    q.append(v)
    if len(order) < n:
        seen = set(order)
        order.extend(i for i in range(n) if i not in seen)
    return order
