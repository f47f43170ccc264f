"""Tabu search on the disjunctive graph for job-shop-like problems (makespan only).

Applies when every operation uses at most one unary resource (assignment already fixed), all
lags are minimum lags (no max lag, deadline, horizon, span, frozen operation or target). The
neighbourhood swaps adjacent operations at the borders of critical blocks (Nowicki-Smutnicki
N5), each estimated in O(1) from heads and tails (Taillard's estimate); a move is applied and
the heads/tails recomputed in O(n). Stagnation restarts from the best solution with a few random
critical swaps. Times in SECONDS; deterministic for a seed and an iteration budget (a wall-time
limit may cut it shorter).
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass


@dataclass
class JobShopGraph:
    """Fixed part of the disjunctive graph.

    Attributes:
        dur: Duration per operation, seconds.
        release: Earliest start per operation, seconds.
        fout: Fixed arcs ``fout[u] = [(v, w)]`` meaning ``start(v) >= start(u) + w``.
        fin: The same arcs indexed by head: ``fin[v] = [(u, w)]``.
    """

    dur: list[float]
    release: list[float]
    fout: list[list[tuple[int, float]]]
    fin: list[list[tuple[int, float]]]


class _State:
    def __init__(self, g: JobShopGraph, seqs: list[list[int]]) -> None:
        n = len(g.dur)
        self.g = g
        self.mpred = [-1] * n
        self.msucc = [-1] * n
        for seq in seqs:
            for a, b in itertools.pairwise(seq):
                self.msucc[a] = b
                self.mpred[b] = a
        self.base_indeg = [len(x) for x in g.fin]
        self.r = [0.0] * n
        self.q = [0.0] * n
        self.order: list[int] = []

    def evaluate(self) -> float | None:
        """Heads, tails and makespan; None if the graph has a cycle."""
        g, mpred, msucc = self.g, self.mpred, self.msucc
        dur, fout = g.dur, g.fout
        n = len(dur)
        indeg = self.base_indeg[:]
        for i in range(n):
            if mpred[i] >= 0:
                indeg[i] += 1
        r = g.release[:]
        stack = [i for i in range(n) if indeg[i] == 0]
        order = []
        push, pop = stack.append, stack.pop
        while stack:
            u = pop()
            order.append(u)
            ru = r[u]
            for v, w in fout[u]:
                if ru + w > r[v]:  # noqa: PLR1730 - hot loop, faster than max()
                    r[v] = ru + w
                indeg[v] -= 1
                if not indeg[v]:
                    push(v)
            v = msucc[u]
            if v >= 0:
                x = ru + dur[u]
                if x > r[v]:  # noqa: PLR1730
                    r[v] = x
                indeg[v] -= 1
                if not indeg[v]:
                    push(v)
        if len(order) < n:
            return None
        q = self.q
        cmax = 0.0
        for u in reversed(order):
            t = dur[u]
            for v, w in fout[u]:
                x = w + q[v]
                if x > t:  # noqa: PLR1730
                    t = x
            v = msucc[u]
            if v >= 0:
                x = dur[u] + q[v]
                if x > t:  # noqa: PLR1730
                    t = x
            q[u] = t
            if r[u] + t > cmax:  # noqa: PLR1730
                cmax = r[u] + t
        self.r, self.order = r, order
        return cmax

    def blocks(self, cmax: float) -> list[list[int]]:
        """Critical blocks (runs of machine-adjacent ops) of one critical path."""
        r, q, dur, msucc = self.r, self.q, self.g.dur, self.msucc
        tol = 1e-9 * (1.0 + cmax)
        crit = [u for u in self.order if abs(r[u] + q[u] - cmax) <= tol]
        if not crit:
            return []
        u = min(crit, key=lambda x: r[x])
        blocks: list[list[int]] = [[u]]
        while True:
            v = msucc[u]
            if v >= 0 and abs(r[u] + dur[u] - r[v]) <= tol and abs(r[v] + q[v] - cmax) <= tol:
                blocks[-1].append(v)
                u = v
                continue
            nxt = -1
            for v, w in self.g.fout[u]:
                if abs(r[u] + w - r[v]) <= tol and abs(r[v] + q[v] - cmax) <= tol:
                    nxt = v
                    break
            if nxt < 0:
                break
            u = nxt
            blocks.append([u])
        return blocks

    def swap(self, u: int, v: int) -> None:
        """Swap machine-adjacent ``u`` (first) and ``v``."""
        mpred, msucc = self.mpred, self.msucc
        pm, sm = mpred[u], msucc[v]
        if pm >= 0:
            msucc[pm] = v
        mpred[v] = pm
        msucc[v] = u
        mpred[u] = v
        msucc[u] = sm
        if sm >= 0:
            mpred[sm] = u

    def seqs(self) -> dict[int, list[int]]:
        """Machine sequences keyed by their first operation."""
        out: dict[int, list[int]] = {}
        for i in range(len(self.mpred)):
            if self.mpred[i] < 0 and self.msucc[i] >= 0:
                seq, u = [], i
                while u >= 0:
                    seq.append(u)
                    u = self.msucc[u]
                out[i] = seq
        return out


def _estimate(st: _State, u: int, v: int) -> float:
    """Taillard's estimate of the makespan after swapping machine-adjacent u (before v)."""
    g, r, q = st.g, st.r, st.q
    dur = g.dur
    pm, sm = st.mpred[u], st.msucc[v]
    hv = g.release[v]
    for a, w in g.fin[v]:
        hv = max(hv, r[a] + w)
    if pm >= 0:
        hv = max(hv, r[pm] + dur[pm])
    hu = g.release[u]
    for a, w in g.fin[u]:
        hu = max(hu, r[a] + w)
    hu = max(hu, hv + dur[v])
    tu = dur[u]
    for b, w in g.fout[u]:
        tu = max(tu, w + q[b])
    if sm >= 0:
        tu = max(tu, dur[u] + q[sm])
    tv = dur[v]
    for b, w in g.fout[v]:
        tv = max(tv, w + q[b])
    tv = max(tv, dur[v] + tu)
    return max(hv + tv, hu + tu)


def tabu_search(g: JobShopGraph, seqs: list[list[int]], *, time_limit: float, seed: int = 0,
                max_iter: int | None = None, lower_bound: float = 0.0) -> tuple[list[float], float, int]:
    """Improve machine sequences by tabu search.

    Args:
        g: Fixed arcs and durations.
        seqs: Initial machine sequences (a feasible order, e.g. from a constructive schedule).
        time_limit: Wall-time limit in seconds.
        seed: Random seed (ties, tenure, perturbations).
        max_iter: Optional iteration budget (makes the result independent of machine speed).
        lower_bound: Stop as soon as this makespan is reached (seconds).

    Returns:
        ``(starts, makespan, iterations)`` of the best schedule found (semi-active starts).

    Raises:
        ValueError: if the initial sequences contain a cycle.
    """
    rng = random.Random(seed)
    st = _State(g, seqs)
    cmax = st.evaluate()
    if cmax is None:
        raise ValueError("initial machine sequences are cyclic")
    n = len(g.dur)
    best_c, best_seq = cmax, (st.mpred[:], st.msucc[:])
    best_r = st.r[:]
    tabu: dict[tuple[int, int], int] = {}
    n_mach = max(1, len(seqs))
    base_tenure = 8 + n // max(1, n_mach) // 2
    stall_limit = 400 + 4 * n
    deadline = time.perf_counter() + time_limit
    it = since = 0
    while True:
        if max_iter is not None and it >= max_iter:
            break
        if it & 15 == 0 and time.perf_counter() > deadline:
            break
        it += 1
        blocks = st.blocks(cmax)
        moves: list[tuple[int, int]] = []
        nb = len(blocks)
        for k, b in enumerate(blocks):
            if len(b) < 2:
                continue
            if k > 0 or nb == 1:
                moves.append((b[0], b[1]))
            if (k < nb - 1 or nb == 1) and (len(b) > 2 or not moves or moves[-1] != (b[0], b[1])):
                moves.append((b[-2], b[-1]))
        if not moves or best_c <= lower_bound + 1e-9:
            break  # no move: the critical path is made of fixed arcs only, hence optimal
        chosen, chosen_val = None, float("inf")
        for u, v in moves:
            val = _estimate(st, u, v)
            is_tabu = tabu.get((v, u), 0) > it
            if is_tabu and val >= best_c:
                continue
            if val < chosen_val or (val == chosen_val and rng.random() < 0.5):
                chosen, chosen_val = (u, v), val
        if chosen is None:
            chosen = moves[rng.randrange(len(moves))]
        u, v = chosen
        st.swap(u, v)
        new_c = st.evaluate()
        if new_c is None:  # a fixed path u -> v exists: undo and forbid
            st.swap(v, u)
            tabu[(u, v)] = it + 10 * base_tenure
            st.evaluate()
            continue
        tabu[(u, v)] = it + base_tenure + rng.randrange(base_tenure)
        cmax = new_c
        if cmax < best_c - 1e-9:
            best_c, best_seq, best_r, since = cmax, (st.mpred[:], st.msucc[:]), st.r[:], 0
        else:
            since += 1
        if since > stall_limit:  # restart from the best with a random perturbation
            st.mpred, st.msucc = best_seq[0][:], best_seq[1][:]
            cmax = st.evaluate() or best_c
            tabu.clear()
            for _ in range(2 + rng.randrange(4)):
                bl = [b for b in st.blocks(cmax) if len(b) >= 2]
                if not bl:
                    break
                b = bl[rng.randrange(len(bl))]
                k = rng.randrange(len(b) - 1)
                st.swap(b[k], b[k + 1])
                c2 = st.evaluate()
                if c2 is None:
                    st.swap(b[k + 1], b[k])
                    c2 = st.evaluate()
                cmax = c2 if c2 is not None else cmax
            since = 0
    return best_r, best_c, it
