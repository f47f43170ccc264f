"""Choosing each run's start offset: rigid templates placed first-fit on resource profiles.

A run's *template* is its expansion placed alone (every step at its earliest allowed time,
every iteration exactly on its cadence). Runs are taken in priority order (then campaign
order); each is shifted rigidly to the earliest offset ``x >= release`` at which every
resource use of the template (instrument actions, site holdings, incubator station,
plates out) fits the profiles of the runs placed before it, within ``release + spread``
(the first cadence period when the campaign gives no stagger: every plate starts on day 0).
The busiest days (passage days) decide the offsets, because the whole 14-day template
must fit at once. The result is a schedule with zero cadence error when every run fits;
a run that does not fit is placed at the best offset found past its spread, and the
planner then repairs or reports it. Times in SECONDS.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from orchestrator.planner.profile import Profile

from .expand import Expansion, RunExpansion

EPS = 1e-6
Usage = tuple[object, float, float]


def usages(rx: RunExpansion, rel: Mapping[str, float] | None = None) -> list[Usage]:
    """Every resource use of a run's template: (resource or tuple of alternatives, start, end)."""
    out: list[Usage] = []
    rel = rx.rel if rel is None else rel
    dur = {o.id: o.duration for o in rx.ops}
    for o in rx.ops:
        if o.duration <= 0:
            continue
        s = rel[o.id]
        for entry in o.resources:
            out.append((entry if isinstance(entry, str) else tuple(entry), s, s + o.duration))
    for sp in rx.spans:
        s, e = rel[sp.first], rel[sp.last] + dur[sp.last]
        if e > s:
            out.append((sp.resource, s, e))
    return out


class Board:
    """Resource profiles of the runs placed so far (alternatives pooled)."""

    def __init__(self, capacity: dict[str, int]) -> None:
        self.capacity = capacity
        self.prof: dict[object, Profile] = {}

    def profile(self, res: object) -> Profile:
        p = self.prof.get(res)
        if p is None:
            cap = sum(self.capacity[r] for r in res) if isinstance(res, tuple) else self.capacity[res]  # type: ignore[index]
            p = self.prof[res] = Profile(cap)
        return p

    def fit(self, uses: list[Usage], lo: float, hi: float, max_steps: int = 200_000) -> tuple[float, bool]:
        """Earliest ``x >= lo`` at which every use fits; (x, True) or (best x > hi, False)."""
        order = list(range(len(uses)))
        x = lo
        steps = 0
        while True:
            moved = False
            for pos, i in enumerate(order):
                res, s, e = uses[i]
                t = self.profile(res).earliest(x + s, e - s)
                steps += 1
                if t > x + s + EPS:
                    x = t - s
                    moved = True
                    if pos:
                        order.insert(0, order.pop(pos))
                    break
            if not moved:
                return x, x <= hi + EPS
            if x > hi + EPS or steps > max_steps:
                return x, False

    def book(self, uses: Iterable[Usage], x: float) -> None:
        for res, s, e in uses:
            self.profile(res).add(x + s, e + x)


def place(exp: Expansion, rel: Mapping[int, Mapping[str, float]] | None = None,
          stop_on_misfit: bool = False) -> tuple[dict[int, float], list[int]]:
    """Offsets (start of each run's first op, seconds) and the runs that did not fit
    within their spread (they get their earliest fit past it).

    Args:
        rel: per run index, the template to use (default: each run's earliest layout).
        stop_on_misfit: return at the first run that does not fit (feasibility probes).
    """
    board = Board({r.name: r.capacity for r in exp.resources})
    offsets: dict[int, float] = {}
    failed: list[int] = []
    for rx in sorted(exp.runs, key=lambda r: (-r.priority, r.index)):
        if not rx.ops:
            offsets[rx.index] = rx.release
            continue
        uses = usages(rx, None if rel is None else rel.get(rx.index))
        lo, hi = rx.release, rx.release + rx.spread
        x, ok = board.fit(uses, lo, hi)
        if not ok:
            failed.append(rx.index)
            if stop_on_misfit:
                return offsets, failed
        board.book(uses, x)
        offsets[rx.index] = x
    return offsets, failed
