"""Pipeline-friendly templates: each visit's inner timing chosen by modulo scheduling.

Plates of a campaign repeat the same visits (a feed, a QC, a passage...), each plate a few
minutes after the previous one. The earliest-start layout of a visit is not the best one
to repeat: a passage placed as early as possible keeps the liquid handler busy just when
the next plate's dissociation should start. Like software pipelining (iterative modulo
scheduling, Rau 1994), we look for the smallest period ``P`` at which one copy of every
visit shape, repeated every ``P`` seconds, never exceeds a capacity: each op of a visit
is placed at its earliest time allowed by the visit's own lags where its resources are
free *modulo P* (unary resources, sites with several nests, plates out, all at once), the
visit's first action staying on its cadence. The visits of every run are then laid out
with these inner timings (only ever later than earliest, within their lags), and
`offsets.place` shifts whole runs as before; identical runs then fall about ``P`` apart.
Times in SECONDS.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping

from orchestrator.planner import Lag

from .expand import Expansion, RunExpansion

EPS = 1e-6
STEP = 10.0


class _ModTable:
    """Usage modulo ``P`` per resource (intervals split at the wrap)."""

    def __init__(self, period: float, capacity: Mapping[object, int]) -> None:
        self.P = period
        self.cap = capacity
        self.iv: dict[object, list[tuple[float, float]]] = defaultdict(list)

    def _pieces(self, s: float, e: float) -> tuple[int, list[tuple[float, float]]]:
        P = self.P
        length = e - s
        full = int(length // P)
        rest = length - full * P
        a = s % P
        if rest <= EPS:
            return full, []
        if a + rest <= P + EPS:
            return full, [(a, min(P, a + rest))]
        return full, [(a, P), (0.0, a + rest - P)]

    def _count(self, res: object, a: float, b: float) -> int:
        """Most intervals of ``res`` overlapping any instant of [a, b)."""
        events = []
        for s, e in self.iv[res]:
            if s < b - EPS and e > a + EPS:
                events += [(max(s, a), 1), (min(e, b), -1)]
        best = cur = 0
        for _, d in sorted(events, key=lambda x: (x[0], x[1])):
            cur += d
            best = max(best, cur)
        return best

    def fits(self, res: object, s: float, e: float) -> bool:
        full, pieces = self._pieces(s, e)
        cap = self.cap[res]
        if full and self._count(res, 0.0, self.P) + full + (1 if pieces else 0) > cap:
            return False  # a use longer than P overlaps its own copies everywhere
        return all(self._count(res, a, b) + full + 1 <= cap for a, b in pieces)

    def add(self, res: object, s: float, e: float) -> None:
        full, pieces = self._pieces(s, e)
        for _ in range(full):
            self.iv[res].append((0.0, self.P))
        self.iv[res].extend(pieces)

    def candidates(self, res: object, lo: float) -> list[float]:
        """Times >= lo at which a use of ``res`` could start (lo, and ends of uses mod P)."""
        P = self.P
        out = [lo]
        for _, e in self.iv[res]:
            k = math.ceil((lo - e) / P - EPS)
            out.append(e + k * P)
        return out


class Shape:
    """One visit of one run: its ops (in executor order), inner lags and spans."""

    def __init__(self, rx: RunExpansion, idx: list[int]) -> None:
        self.rx = rx
        self.idx = idx
        ops = [rx.ops[i] for i in idx]
        self.ids = [o.id for o in ops]
        pos = {oid: j for j, oid in enumerate(self.ids)}
        self.dur = [o.duration for o in ops]
        self.res = [tuple(e if isinstance(e, str) else tuple(e) for e in o.resources) for o in ops]
        base = rx.rel[self.ids[0]]
        self.rel = [rx.rel[oid] - base for oid in self.ids]
        self.lags: list[tuple[int, int, float, float | None, str]] = []
        for lag in rx.lags:
            if lag.a in pos and lag.b in pos:
                self.lags.append((pos[lag.a], pos[lag.b], lag.min, lag.max, lag.kind))
        self.spans = [(sp.resource, pos[sp.first], pos[sp.last]) for sp in rx.spans
                      if sp.first in pos and sp.last in pos]
        self.key = (tuple(zip(self.res, self.dur, self.rel, strict=False)), tuple(self.lags), tuple(self.spans))

    def usage(self) -> dict[object, float]:
        use: dict[object, float] = defaultdict(float)
        for r, d in zip(self.res, self.dur, strict=False):
            for e in r:
                use[e] += d
        for res, f, l_ in self.spans:
            use[res] += self.rel[l_] + self.dur[l_] - self.rel[f]
        return use

    def schedule(self, period: float, capacity: Mapping[object, int], tries: int = 60) -> list[float] | None:
        """Inner start times (relative to the first op) at period ``period``, or None."""
        n = len(self.ids)
        floor = [0.0] * n  # extra lower bounds from repairs
        for _ in range(tries):
            table = _ModTable(period, capacity)
            S: list[float] = []
            retry = False
            for i in range(n):
                lo, hi, binder = floor[i], math.inf, -1
                for a, b, mn, mx, kind in self.lags:
                    if b != i or a >= i:
                        continue
                    ref = S[a] + (self.dur[a] if kind == "end_start" else 0.0)
                    lo = max(lo, ref + mn)
                    if mx is not None and ref + mx < hi:
                        hi, binder = ref + mx, a
                if i == 0:
                    lo = hi = 0.0
                t = self._fit(table, i, lo, min(hi, lo + 2 * period))
                if t is None or t > hi + EPS:
                    if binder <= 0:  # nothing to delay (the first op is on its cadence)
                        return None
                    floor[binder] = S[binder] + max((t if t is not None else lo + period) - hi, STEP)
                    retry = True
                    break
                S.append(t)
                for e in self.res[i]:
                    if self.dur[i] > 0:
                        table.add(e, t, t + self.dur[i])
                for res, f, l_ in self.spans:
                    if l_ != i:
                        continue
                    held_from, held_to = S[f], t + self.dur[i]
                    if held_to <= held_from:
                        continue
                    if not table.fits(res, held_from, held_to):
                        if f == 0:
                            return None
                        floor[f] = S[f] + STEP
                        retry = True
                        break
                    table.add(res, held_from, held_to)
                if retry:
                    break
            if not retry:
                return S
        return None

    def _fit(self, table: _ModTable, i: int, lo: float, hi: float) -> float | None:
        d = self.dur[i]
        if d <= 0 or not self.res[i]:
            return lo
        cands = sorted({c for e in self.res[i] for c in table.candidates(e, lo)})
        for t in cands:
            if t > hi + EPS:
                return t
            if all(table.fits(e, t, t + d) for e in self.res[i]):
                return t
        return None


def _lags_hold(rx: RunExpansion, rel: Mapping[str, float]) -> bool:
    dur = {o.id: o.duration for o in rx.ops}
    for lag in rx.lags:
        ref = rel[lag.a] + (dur[lag.a] if lag.kind == "end_start" else 0.0)
        d = rel[lag.b] - ref
        if d < lag.min - EPS or (lag.max is not None and d > lag.max + EPS):
            return False
    return True


def visits(rx: RunExpansion) -> list[list[int]]:
    """Op indices per visit (in order)."""
    out: dict[int, list[int]] = defaultdict(list)
    for j, info in enumerate(rx.info):
        out[info.visit].append(j)
    return [out[v] for v in sorted(out)]


def pipeline(exp: Expansion, max_period: float = 86400.0) -> tuple[float | None, dict[int, dict[str, float]]]:
    """Smallest common period and per run the re-timed template (``rel``), see module doc.

    Returns ``(None, {})`` when no period up to ``max_period`` works for every visit shape.
    """
    capacity: dict[object, int] = {r.name: r.capacity for r in exp.resources}
    shapes: dict[object, Shape] = {}
    members: list[tuple[RunExpansion, list[int], object]] = []
    for rx in exp.runs:
        for idx in visits(rx):
            sh = Shape(rx, idx)
            for r in sh.res:
                for e in r:
                    if isinstance(e, tuple) and e not in capacity:
                        capacity[e] = sum(capacity[x] for x in e)
            shapes.setdefault(sh.key, sh)
            members.append((rx, idx, sh.key))
    if not shapes:
        return None, {}
    lb = max(u / capacity[r] for sh in shapes.values() for r, u in sh.usage().items())
    period = max(STEP, math.ceil(lb / STEP) * STEP)
    inner: dict[object, list[float]] = {}
    while period <= max_period:
        inner = {}
        for key, sh in shapes.items():
            s = sh.schedule(period, capacity)
            if s is None:
                break
            inner[key] = s
        if len(inner) == len(shapes):
            break
        period += STEP
    else:
        return None, {}
    out: dict[int, dict[str, float]] = {}
    for rx in exp.runs:
        out[rx.index] = dict(rx.rel)
    for rx, idx, key in members:
        rel = out[rx.index]
        base = rx.rel[rx.ops[idx[0]].id]
        for j, i in enumerate(idx):
            rel[rx.ops[i].id] = base + inner[key][j]
    for rx in exp.runs:  # keep a run's own lags; fall back to its earliest layout otherwise
        if not _lags_hold(rx, out[rx.index]):
            out[rx.index] = dict(rx.rel)
    return period, out


__all__ = ["Lag", "Shape", "pipeline", "visits"]
