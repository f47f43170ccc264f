"""Default planner: serial schedule generation with max-lag repair, then improvement.

Construction walks the components (see `components`) in precedence order, picking the
eligible component of best priority (latest start first, i.e. earliest deadline / most work
remaining). A component is placed operation by operation at the earliest time its resources
allow (alternatives: the choice finishing first). If an operation cannot start before a max
lag (or span capacity) allows, the operation that imposes the bound is pushed back by the
shortfall and the component is placed again (bounded repairs, no unbounded backtracking).
A component that still fails is placed best-effort and counted as a violation; the result is
then reported ``unknown``, never ``infeasible``.

Improvement: tabu search on the disjunctive graph for job-shop-like problems, otherwise
randomised-priority restarts, both within the time limit. Times in SECONDS.
"""

from __future__ import annotations

import heapq
import math
import random
import time
from collections import deque

from .components import Prep
from .model import Schedule
from .profile import Profile
from .tabu import JobShopGraph, tabu_search

INF = math.inf
EPS = 1e-6


class _Builder:
    """One construction pass over a `Prep` with a given component priority key."""

    def __init__(self, p: Prep, use_targets: bool, max_repairs: int, rng: random.Random | None = None) -> None:
        self.p = p
        self.rng = rng  # random tie-breaks between alternatives (restarts only)
        self.use_targets = use_targets
        self.max_repairs = max_repairs
        n = len(p.ids)
        self.S: list[float] = [math.nan] * n
        self.A: list[tuple[int, ...]] = [()] * n
        self.placed = [False] * n
        self.prof = [Profile(c) for c in p.cap]
        self.lb = p.ext_lb[:]
        self.failed: list[int] = []

    def run(self, key: list[float]) -> None:
        p = self.p
        for i in range(len(p.ids)):
            if p.frozen[i]:
                self._book(i, p.fstart[i], p.fassign[i])
        for r, f, l_ in p.frozen_spans:
            self.prof[r].add(p.fstart[f], p.fstart[l_] + p.dur[l_])
        npred = p.comp_npred[:]
        heap = [(key[c], c) for c in range(len(p.comps)) if npred[c] == 0]
        heapq.heapify(heap)
        S, lb = self.S, self.lb
        while heap:
            _, c = heapq.heappop(heap)
            if not self._place(c):
                self.failed.append(c)
            for u in p.comps[c]:
                su = S[u]
                for v, w in p.cross[u]:
                    if su + w > lb[v]:  # noqa: PLR1730 - hot loop
                        lb[v] = su + w
            for c2 in p.comp_succ[c]:
                npred[c2] -= 1
                if npred[c2] == 0:
                    heapq.heappush(heap, (key[c2], c2))

    # -- resources -------------------------------------------------------------------------
    def _book(self, v: int, t: float, combo: tuple[int, ...], units: int = 1) -> None:
        d = self.p.dur[v]
        for r in combo:
            self.prof[r].add(t, t + d, units)
        if units > 0:
            self.S[v], self.A[v], self.placed[v] = t, combo, True
        else:
            self.placed[v] = False

    def _fit(self, v: int, lo: float) -> tuple[float, tuple[int, ...]]:
        """Earliest start >= lo where all resources of some combination are free."""
        d = self.p.dur[v]
        prof = self.prof
        combos = self.p.combos[v]
        best_t, best_c, best_load = INF, combos[0], INF
        for combo in combos:
            t = lo
            if len(combo) == 1:
                t = prof[combo[0]].earliest(t, d)
            else:
                while True:
                    t0 = t
                    for r in combo:
                        t = prof[r].earliest(t, d)
                    if t == t0:
                        break
            if len(combos) == 1:
                return t, combo
            # tie-break: least booked + still-mandatory work per unit of capacity
            load = sum((prof[r].load + self.p.demand[r]) / self.p.cap[r] for r in combo)
            if self.rng is not None:
                load *= 0.5 + self.rng.random()
            if t < best_t - EPS or (t <= best_t + EPS and load < best_load):
                best_t, best_c, best_load = t, combo, load
        return best_t, best_c

    # -- placement of one component ---------------------------------------------------------
    def _local_est(self, members: list[int], shift: dict[int, float], targets: bool) -> dict[int, float] | None:
        p, lb = self.p, self.lb
        est = {}
        for v in members:
            e = lb[v]
            if v in shift and shift[v] > e:
                e = shift[v]
            if targets and p.target[v] is not None and p.target[v] > e:  # type: ignore[operator]
                e = p.target[v]  # type: ignore[assignment]
            est[v] = e
        if len(members) == 1:
            return est
        q = deque(members)
        inq = set(members)
        budget = len(members) * (len(members) + 4) * 4
        while q:
            u = q.popleft()
            inq.discard(u)
            eu = est[u]
            for x, w in p.out[u]:
                if eu + w > est[x] + EPS:
                    est[x] = eu + w
                    budget -= 1
                    if budget < 0:
                        return None  # positive cycle (should have been proved earlier)
                    if x not in inq:
                        inq.add(x)
                        q.append(x)
        return est

    def _place(self, c: int) -> bool:
        p, S, placed = self.p, self.S, self.placed
        members = p.comps[c]
        spans = p.comp_spans[c]
        shift: dict[int, float] = {}
        targets = self.use_targets and any(p.target[v] is not None for v in members)
        est: dict[int, float] | None = None
        urgent: set[int] = set()  # ops that missed a deadline: placed first on the next try
        for _ in range(self.max_repairs + 1):
            est = self._local_est(members, shift, targets)
            if est is None:
                break
            if any(est[v] > p.ext_ub[v] + EPS for v in members):
                if targets:
                    targets, shift = False, {}
                    continue
                break
            order = members
            if len(members) > 1:
                cur = est
                order = sorted(members, key=lambda v: (v not in urgent, cur[v]))
            done: list[int] = []
            fail: tuple[int, float] | None = None
            for v in order:
                lo, hi, binder = est[v], p.ext_ub[v], -1
                for u, w in p.inn[v]:
                    if placed[u] and S[u] + w > lo:
                        lo = S[u] + w
                for x, w in p.out[v]:
                    if placed[x] and S[x] - w < hi:
                        hi, binder = S[x] - w, x
                t, combo = self._fit(v, lo)
                if t > hi + EPS:
                    fail = (binder, (S[binder] + t - hi) if binder >= 0 else INF)
                    if binder < 0 and v not in urgent and len(members) > 1:
                        urgent.add(v)
                        fail = (-2, INF)
                    break
                self._book(v, t, combo)
                done.append(v)
            booked: list[tuple[int, float, float]] = []
            if fail is None:
                for r, f, l_ in spans:
                    s, e = S[f], S[l_] + p.dur[l_]
                    if e <= s:
                        continue
                    fit_at = self.prof[r].earliest(s, e - s)
                    if fit_at > s + EPS:  # span capacity: start the group later
                        fail = (f, fit_at) if not p.frozen[f] else (-1, INF)
                        break
                    self.prof[r].add(s, e)
                    booked.append((r, s, e))
                if fail is None:
                    return True
            for r, s, e in booked:
                self.prof[r].remove(s, e)
            for v in done:
                self._book(v, S[v], self.A[v], -1)
            binder, new_lb = fail
            if binder == -2:  # retry with the op that missed its deadline placed first
                continue
            if binder < 0:  # an external bound (deadline, frozen op) cannot be met by delaying
                if targets:
                    targets, shift = False, {}
                    continue
                break
            shift[binder] = new_lb
        self._fallback(members, spans, est)
        return False

    def _fallback(self, members: list[int], spans: list[tuple[int, int, int]],
                  est: dict[int, float] | None) -> None:
        """Best-effort placement ignoring upper bounds (result will carry violations)."""
        p, S, placed = self.p, self.S, self.placed
        base = est if est is not None else {v: self.lb[v] for v in members}
        for v in sorted(members, key=base.__getitem__):
            lo = base[v]
            for u, w in p.inn[v]:
                if placed[u] and S[u] + w > lo:
                    lo = S[u] + w
            t, combo = self._fit(v, lo)
            self._book(v, t, combo)
        for r, f, l_ in spans:
            if S[l_] + p.dur[l_] > S[f]:
                self.prof[r].add(S[f], S[l_] + p.dur[l_])


def _objective(p: Prep, S: list[float], target_weight: float) -> float:
    mk = max((S[i] + p.dur[i] for i in range(len(S))), default=0.0)
    dev = sum(abs(S[i] - t) for i, t in enumerate(p.target) if t is not None)
    return mk + target_weight * dev


def _comp_keys(p: Prep, rule: str, rng: random.Random, noise: float) -> list[float]:
    scale = (sum(p.dur) / max(1, len(p.dur))) * noise
    keys = []
    for members in p.comps:
        if rule == "est":
            k = min(p.est[v] for v in members) + 1e-6 * min(p.prio[v] for v in members)
        else:
            k = min(p.prio[v] for v in members)
        keys.append(k + (rng.random() * scale if scale else 0.0))
    return keys


def _jobshop_like(p: Prep, A: list[tuple[int, ...]]) -> bool:
    pr = p.problem
    if pr.spans or pr.horizon is not None or any(l.max is not None for l in pr.lags):
        return False
    if any(o.deadline is not None for o in pr.operations) or any(p.frozen) or any(t is not None for t in p.target):
        return False
    return all(len(a) <= 1 and all(p.cap[r] == 1 for r in a) for a in A)


def _tabu(p: Prep, S: list[float], A: list[tuple[int, ...]], time_limit: float, seed: int,
          max_iter: int | None, lower_bound: float) -> tuple[list[float], float]:
    n = len(p.ids)
    fout: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    fin: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for u in range(n):
        for v, w in p.out[u] + p.cross[u]:
            fout[u].append((v, w))
            fin[v].append((u, w))
    by_r: dict[int, list[int]] = {}
    for i, a in enumerate(A):
        if a:
            by_r.setdefault(a[0], []).append(i)
    seqs = [sorted(ops, key=lambda i: (S[i], i)) for ops in by_r.values()]
    g = JobShopGraph(list(p.dur), p.ext_lb[:], fout, fin)
    starts, cmax, _ = tabu_search(g, seqs, time_limit=time_limit, seed=seed, max_iter=max_iter,
                                  lower_bound=lower_bound)
    return starts, cmax


def construct(p: Prep, *, time_limit: float = 1.0, seed: int = 0, iterations: int | None = None,
              target_weight: float = 1.0, max_repairs: int = 60, lower_bound: float = 0.0,
              stall: int = 300) -> Schedule:
    """Plan ``p`` constructively, then improve within ``time_limit`` seconds.

    The first construction always completes (its cost grows about linearly with the number
    of operations); improvement stops at ``time_limit`` or after ``iterations`` restarts / tabu
    iterations, whichever comes first. Deterministic for a given seed and ``iterations``.

    Args:
        p: Output of `components.prepare`.
        time_limit: Wall-time budget in seconds for the improvement phase.
        seed: Random seed.
        iterations: Optional budget of improvement iterations.
        target_weight: Weight of total |start - target| (seconds) against makespan.
        max_repairs: Max-lag repairs tried per component before a best-effort placement.
        lower_bound: Known makespan lower bound; the search stops when it is reached.
        stall: Without ``iterations``, stop after this many restarts without improvement.

    Returns:
        A `Schedule` with status ``"feasible"`` when no component needed a best-effort
        placement, else ``"unknown"`` (with notes). Callers should re-check with `validate`.
    """
    t0 = time.perf_counter()
    rng = random.Random(seed)
    b = _Builder(p, True, max_repairs)
    b.run(_comp_keys(p, "lst", rng, 0.0))
    best = (len(b.failed), _objective(p, b.S, target_weight), b)
    notes: list[str] = []
    deadline = t0 + time_limit
    if best[0] == 0 and _jobshop_like(p, b.A) and best[1] > lower_bound + EPS:
        S, cmax = _tabu(p, b.S, b.A, max(0.0, deadline - time.perf_counter()), seed, iterations, lower_bound)
        if cmax < best[1] - EPS:
            b.S = S
            best = (0, cmax, b)
        notes.append("improved by tabu search")
    else:
        k = since = 0
        while (iterations is None or k < iterations) and time.perf_counter() < deadline:
            if (best[0] == 0 and best[1] <= lower_bound + EPS) or (iterations is None and since >= stall):
                break
            k += 1
            since += 1
            # 1: no targets (uses early slack), 2: earliest-start rule, then randomised priorities
            rule = "est" if k == 2 else "lst"
            noise = 0.0 if k <= 2 else rng.choice((0.5, 1.0, 2.0, 4.0))
            cand = _Builder(p, k % 3 != 1, max_repairs, rng if k > 2 else None)
            cand.run(_comp_keys(p, rule, rng, noise))
            score = (len(cand.failed), _objective(p, cand.S, target_weight), cand)
            if score[:2] < best[:2]:
                best, since = score, 0
        if k:
            notes.append(f"{k} randomised restarts")
    b = best[2]
    if b.failed:
        names = [p.ids[p.comps[c][0]] for c in b.failed[:5]]
        notes.append(f"{len(b.failed)} group(s) could not meet every max lag / deadline / span "
                     f"capacity and were placed best-effort (first ops: {', '.join(names)})")
    S = b.S
    starts = {p.ids[i]: S[i] for i in range(len(S))}
    assignment = {p.ids[i]: tuple(p.rnames[r] for r in b.A[i]) for i in range(len(S))}
    mk = max((S[i] + p.dur[i] for i in range(len(S))), default=0.0)
    return Schedule(starts, assignment, mk, "unknown" if b.failed else "feasible", lower_bound,
                    "constructive", time.perf_counter() - t0, notes)
