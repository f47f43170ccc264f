"""Independent schedule validator.

Written separately from the planners (it shares only the problem model) so that it can catch
their bugs. All times in SECONDS; comparisons allow an absolute tolerance ``eps`` (default
1e-6 s) for floating-point noise.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from .model import Problem, Schedule, frozen_assignment

KINDS = (
    "missing", "release", "deadline", "horizon", "lag_min", "lag_max", "capacity",
    "assignment", "frozen", "span", "makespan",
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken constraint.

    Attributes:
        kind: One of ``KINDS``.
        ops: Operation ids involved.
        resource: Resource involved, if any.
        start: Start of the offending time span, seconds (or None).
        end: End of the offending time span, seconds (or None).
        message: Human-readable description.
    """

    kind: str
    ops: tuple[str, ...]
    resource: str | None
    start: float | None
    end: float | None
    message: str


def check(problem: Problem, schedule: Schedule, eps: float = 1e-6) -> list[Violation]:
    """Return every constraint of ``problem`` that ``schedule`` breaks (empty if valid).

    Checks: every operation placed with a finite start; release; deadline; horizon; each lag's
    min and max; resource capacity at every instant (sweep line over operation intervals and
    Span holdings, intervals half-open ``[start, end)``); chosen resources belong to the allowed
    alternatives; frozen operations keep their start and resources; span order; the reported
    makespan. Does not raise for a bad schedule; raises only ``KeyError``-free.
    """
    out: list[Violation] = []
    starts, assign = schedule.starts, schedule.assignment
    ops = problem.op
    placed: dict[str, float] = {}
    for o in problem.operations:
        s = starts.get(o.id)
        if s is None or not isinstance(s, (int, float)) or not math.isfinite(s):
            out.append(Violation("missing", (o.id,), None, None, None, f"{o.id}: no finite start"))
            continue
        placed[o.id] = float(s)
        e = s + o.duration
        if s < o.release - eps:
            out.append(Violation("release", (o.id,), None, s, o.release,
                                 f"{o.id}: starts at {s:g} s before its release {o.release:g} s"))
        if o.deadline is not None and e > o.deadline + eps:
            out.append(Violation("deadline", (o.id,), None, o.deadline, e,
                                 f"{o.id}: ends at {e:g} s after its deadline {o.deadline:g} s"))
        if problem.horizon is not None and e > problem.horizon + eps:
            out.append(Violation("horizon", (o.id,), None, problem.horizon, e,
                                 f"{o.id}: ends at {e:g} s after the horizon {problem.horizon:g} s"))
        if o.frozen_start is not None:
            if abs(s - o.frozen_start) > eps:
                out.append(Violation("frozen", (o.id,), None, o.frozen_start, s,
                                     f"{o.id}: frozen at {o.frozen_start:g} s but moved to {s:g} s"))
            if tuple(assign.get(o.id, ())) != frozen_assignment(o):
                out.append(Violation("frozen", (o.id,), None, s, e,
                                     f"{o.id}: frozen resources {frozen_assignment(o)} changed "
                                     f"to {assign.get(o.id)}"))
        chosen = assign.get(o.id)
        entries = o.choices
        if chosen is None or len(chosen) != len(entries):
            out.append(Violation("assignment", (o.id,), None, s, e,
                                 f"{o.id}: needs one resource for each of {len(entries)} entries, got {chosen}"))
        else:
            for r, allowed in zip(chosen, entries, strict=True):
                if r not in allowed:
                    out.append(Violation("assignment", (o.id,), r, s, e,
                                         f"{o.id}: resource {r!r} is not one of {allowed}"))

    for lag in problem.lags:
        if lag.a not in placed or lag.b not in placed:
            continue
        ref = placed[lag.a] + (ops[lag.a].duration if lag.kind == "end_start" else 0.0)
        gap = placed[lag.b] - ref
        what = "end" if lag.kind == "end_start" else "start"
        if gap < lag.min - eps:
            out.append(Violation("lag_min", (lag.a, lag.b), None, ref, placed[lag.b],
                                 f"start({lag.b}) - {what}({lag.a}) = {gap:g} s < min {lag.min:g} s"))
        if lag.max is not None and gap > lag.max + eps:
            out.append(Violation("lag_max", (lag.a, lag.b), None, ref, placed[lag.b],
                                 f"start({lag.b}) - {what}({lag.a}) = {gap:g} s > max {lag.max:g} s"))

    # Capacity: sweep each resource's events; ends sort before starts at equal (rounded) times.
    events: dict[str, list[tuple[int, int, float, str]]] = defaultdict(list)

    def add(resource: str, s: float, e: float, who: str) -> None:
        if e - s > eps:
            events[resource].append((round(s / eps), 1, s, who))
            events[resource].append((round(e / eps), -1, e, who))

    for oid, s in placed.items():
        chosen = assign.get(oid)
        if chosen is None:
            continue
        for r in chosen:
            add(r, s, s + ops[oid].duration, oid)
    for sp in problem.spans:
        if sp.first in placed and sp.last in placed:
            s, e = placed[sp.first], placed[sp.last] + ops[sp.last].duration
            if e < s - eps:
                out.append(Violation("span", (sp.first, sp.last), sp.resource, s, e,
                                     f"span on {sp.resource}: end({sp.last}) = {e:g} s is before "
                                     f"start({sp.first}) = {s:g} s"))
            add(sp.resource, s, e, f"span({sp.first}..{sp.last})")
    caps = problem.capacity
    for r, evs in events.items():
        cap = caps.get(r)
        if cap is None:
            continue  # unknown resources are reported as assignment violations
        evs.sort(key=lambda x: (x[0], x[1]))
        active: dict[str, int] = defaultdict(int)
        level, over_from, over_ops = 0, None, set()
        for _, delta, t, who in evs:
            if delta > 0:
                level += 1
                active[who] += 1
                if level > cap and over_from is None:
                    over_from, over_ops = t, set(active)
                elif level > cap:
                    over_ops.add(who)
            else:
                if level > cap and level - 1 <= cap and over_from is not None:
                    out.append(Violation("capacity", tuple(sorted(over_ops)), r, over_from, t,
                                         f"{r}: {len(over_ops)} users (capacity {cap}) during "
                                         f"[{over_from:g}, {t:g}) s: {sorted(over_ops)}"))
                    over_from = None
                level -= 1
                active[who] -= 1
                if active[who] == 0:
                    del active[who]

    if placed:
        actual = max(s + ops[o].duration for o, s in placed.items())
        if len(placed) == len(problem.operations) and abs(actual - schedule.makespan) > eps * max(1.0, actual):
            out.append(Violation("makespan", (), None, None, actual,
                                 f"reported makespan {schedule.makespan:g} s, actual {actual:g} s"))
    return out
