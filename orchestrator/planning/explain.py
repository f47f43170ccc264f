"""Why a campaign cannot keep its windows, and the nearest change that would make it.

`explain_plan` turns a plan that is not feasible into:

* ``proved``: True only when infeasibility is proved (incubator slots, a lag cycle, or an
  energetic overload from the planner's feasibility analysis); otherwise the answer is
  "no plan found within the time limit", never a guess;
* ``conflicts``: the proved reasons, in words;
* ``unmet``: the constraints the best-effort placement breaks, named by run, step and
  window (cadence window, protocol window, start window, capacity);
* ``utilisation``: per resource, its busy fraction per day of the placement, and
  ``busiest``: the most saturated resource, its busiest day and the longest stretch it is
  busy without a break;
* ``suggestions``: nearest changes, each *computed* (planned again quickly): the largest
  number of plates that plans feasibly (binary search with the fast layout planner), the
  same campaign started over two days, another instrument of the saturated class.
  Each is tried only while the time limit allows; what was not tried is listed.

Times in SECONDS; times of day are printed as ``day D HH:MM`` of the campaign clock.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.campaign import Campaign
from orchestrator.planner import Lag, Problem, Schedule, check
from orchestrator.planner.validate import Violation
from orchestrator.workcell import Workcell

from .expand import DAY, SITE, Expansion, expand

if TYPE_CHECKING:
    from .plan import CampaignPlan


RUN = re.compile(r"R\d{4,}")
NEED = re.compile(r"need ([0-9.e+]+) s within \[([0-9.e+-]+), ([0-9.e+-]+)\] s but only ([0-9.e+]+) s")


def clock(t: float) -> str:
    """``day D HH:MM`` of campaign time ``t`` (s)."""
    if not math.isfinite(t):
        return "never"
    d, rest = divmod(round(t), int(DAY))
    return f"day {d} {rest // 3600:02d}:{rest % 3600 // 60:02d}"


def _dur(s: float) -> str:
    s = abs(s)
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.0f} s"


# -- describing violations -----------------------------------------------------------------
def describe(v: Violation, exp: Expansion, problem: Problem) -> str:
    """A violation in the campaign's terms: which run, which step, which window."""
    info = exp.info
    roles = exp.roles

    def name(oid: str) -> str:
        i = info.get(oid)
        if i is None:
            return oid
        run = oid.split(":", 1)[0]
        return f"{run} {i.key}" if i.key else f"{run} {i.action} of {i.plate or 'plate'} ({oid.split(':', 1)[1]})"

    if v.kind in ("lag_min", "lag_max") and len(v.ops) == 2:
        a, b = v.ops
        lag = next((lg for lg in _lags_between(exp, a, b) if _breaks(lg, v)), None)
        role = roles.get(lag) if lag is not None else None
        gap = (v.end or 0.0) - (v.start or 0.0)
        if role == "cadence" and lag is not None:
            mid = (lag.min + (lag.max or lag.min)) / 2
            return (f"{name(b)}: cadence window missed — must start {_dur(mid)} ± {_dur((lag.max or mid) - mid)} "
                    f"after {name(a)}; planned {gap - mid:+.0f} s off")
        if role == "entry" and lag is not None:
            return f"{name(b)}: first iteration must start within ± {_dur((lag.max or 0) - (lag.min + (lag.max or 0)) / 2)} of its entry"
        if role == "protocol" and lag is not None:
            rng = f"[{_dur(lag.min)}, {_dur(lag.max) if lag.max is not None else '∞'}]"
            return f"{name(b)}: protocol window missed — must start {rng} after the end of {name(a)}; planned {_dur(gap)}"
        if role == "keep-out":
            return f"{name(b)}: the plate would wait {_dur(gap)} out of the incubator before it (keep_out exceeded)"
        return f"{name(b)}: transport timing broken relative to {name(a)} ({v.message})"
    if v.kind == "deadline" and v.ops:
        oid = v.ops[0]
        run = oid.split(":", 1)[0]
        rx = next((r for r in exp.runs if r.label == run), None)
        spread = rx.spread if rx is not None else 0.0
        return (f"{run}: cannot start within its start window ({_dur(spread)} after its release "
                f"{clock(rx.release if rx else 0.0)}); placed at {clock(v.end or 0.0)}")
    if v.kind == "capacity" and v.resource:
        runs = sorted({m for o in v.ops for m in RUN.findall(o)})
        cap = problem.capacity.get(v.resource, 1)
        what = "site (nests)" if v.resource.endswith(SITE) else "capacity"
        return (f"{v.resource}: {len(v.ops)} users (its {what} is {cap}) {clock(v.start or 0.0)}–"
                f"{clock(v.end or 0.0)}; runs {', '.join(runs[:6])}{' …' if len(runs) > 6 else ''}")
    return v.message


def _lags_between(exp: Expansion, a: str, b: str) -> list[Lag]:
    run = a.split(":", 1)[0]
    rx = next((r for r in exp.runs if r.label == run), None)
    return [lg for lg in (rx.lags if rx is not None else []) if lg.a == a and lg.b == b]


def _breaks(lag: Lag, v: Violation) -> bool:
    return (v.kind == "lag_min" and lag.min is not None) or (v.kind == "lag_max" and lag.max is not None)


# -- utilisation -------------------------------------------------------------------------------
def utilisation(problem: Problem, schedule: Schedule) -> dict[str, list[float]]:
    """Per resource: busy fraction (used unit-seconds / capacity × 24 h) per campaign day."""
    use: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    op = problem.op

    def add(res: str, s: float, e: float) -> None:
        while e > s:
            d = int(s // DAY)
            cut = min(e, (d + 1) * DAY)
            use[res][d] += cut - s
            s = cut

    for oid, s in schedule.starts.items():
        o = op.get(oid)
        if o is None or not math.isfinite(s):
            continue
        for r in schedule.assignment.get(oid, ()):
            add(r, s, s + o.duration)
    for sp in problem.spans:
        first = schedule.starts.get(sp.first)
        last = schedule.starts.get(sp.last)
        if first is not None and last is not None:
            add(sp.resource, first, last + op[sp.last].duration)
    out: dict[str, list[float]] = {}
    for res in problem.resources:
        days = use.get(res.name, {})
        n = max(days, default=-1) + 1
        out[res.name] = [round(days.get(d, 0.0) / (res.capacity * DAY), 4) for d in range(n)]
    return out


def busy_stretch(problem: Problem, schedule: Schedule, resource: str) -> tuple[float, float]:
    """Longest interval during which ``resource`` is at full capacity."""
    op = problem.op
    events: list[tuple[float, int]] = []
    for oid, s in schedule.starts.items():
        o = op.get(oid)
        if o is not None and resource in schedule.assignment.get(oid, ()) and o.duration > 0:
            events += [(s, 1), (s + o.duration, -1)]
    for sp in problem.spans:
        if sp.resource == resource and sp.first in schedule.starts and sp.last in schedule.starts:
            s, e = schedule.starts[sp.first], schedule.starts[sp.last] + op[sp.last].duration
            if e > s:
                events += [(s, 1), (e, -1)]
    cap = problem.capacity.get(resource, 1)
    best = (0.0, 0.0)
    level, since = 0, None
    for t, d in sorted(events, key=lambda x: (x[0], x[1])):
        level += d
        if level >= cap and since is None:
            since = t
        elif level < cap and since is not None:
            if t - since > best[1] - best[0]:
                best = (since, t)
            since = None
    return best


# -- nearest changes -------------------------------------------------------------------------
def with_runs(campaign: Campaign, n: int) -> Campaign:
    """The campaign with its first ``n`` runs (plates)."""
    return dataclasses.replace(campaign, runs=campaign.runs[:n])


def with_extra_instrument(workcell: Workcell, name: str) -> tuple[Workcell, str]:
    """The workcell with a copy of instrument ``name`` (same class, driver, config)."""
    inst = workcell.instruments[name]
    new = f"{name}_2"
    k = 2
    while new in workcell.instruments:
        k += 1
        new = f"{name}_{k}"
    instruments = dict(workcell.instruments)
    instruments[new] = dataclasses.replace(inst, name=new)
    return dataclasses.replace(workcell, instruments=instruments), new


def with_slots(workcell: Workcell, slots: int) -> Workcell:
    """The workcell with every incubator holding at least ``slots`` plates."""
    instruments = dict(workcell.instruments)
    for name in workcell.of_class("incubator"):
        inst = instruments[name]
        if isinstance(getattr(inst.config, "slots", None), int) and inst.config.slots < slots:  # type: ignore[attr-defined]
            instruments[name] = dataclasses.replace(inst, config=inst.config.model_copy(update={"slots": slots}))
    return dataclasses.replace(workcell, instruments=instruments)


def subset(exp: Expansion, n: int) -> Expansion:
    """The expansion of the campaign's first ``n`` runs (pins are per run index, so a
    prefix of the campaign expands to a prefix of its expansion)."""
    runs = exp.runs[:n]
    return dataclasses.replace(exp, campaign=with_runs(exp.campaign, n), runs=runs)


class Prober:
    """Fast feasibility probes (no search) on variants of one expansion."""

    def __init__(self, exp: Expansion) -> None:
        from .modulo import pipeline

        self.exp = exp
        self.piped = pipeline(exp)
        self.cost = 0.0  # seconds of the slowest probe so far

    def feasible(self, n: int | None = None, spread: float | None = None) -> bool:
        from .plan import quick_plan

        t = time.perf_counter()
        exp = self.exp if n is None else subset(self.exp, n)
        if spread is not None:
            exp = dataclasses.replace(exp, runs=[dataclasses.replace(rx, spread=spread) for rx in exp.runs])
        period, rels = self.piped
        ok = quick_plan(exp, piped=(period, {i: rels[i] for i in range(len(exp.runs)) if i in rels}),
                        probe=True).schedule is not None
        self.cost = max(self.cost, time.perf_counter() - t)
        return ok

    def affordable(self, deadline: float) -> bool:
        return time.perf_counter() + self.cost < deadline


def feasible_quickly(campaign: Campaign) -> bool:
    """True when the fast layout planner (no search) plans ``campaign`` with no violation
    (incubator slots not counted)."""
    return Prober(expand(campaign)).feasible()


def largest_feasible(prober: Prober, deadline: float) -> tuple[int, int | None, bool]:
    """Binary search on the number of runs (plates, in campaign order).

    Returns:
        (largest n found feasible (0 if none), smallest n found infeasible, finished in time).
    """
    lo, hi = 0, len(prober.exp.runs)  # lo feasible (0 trivially), hi infeasible (the campaign)
    while hi - lo > 1:
        if not prober.affordable(deadline):
            return lo, hi, False
        mid = (lo + hi) // 2
        if prober.feasible(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi, True


def explain_plan(cp: CampaignPlan, *, deadline: float) -> dict[str, Any]:
    """Explanation of a plan that is not feasible (see the module docstring).

    Args:
        cp: the plan.
        deadline: ``time.perf_counter()`` value by which to stop trying changes.
    """
    problem, sched, exp, campaign = cp.problem, cp.schedule, cp.expansion, cp.campaign
    proved = sched.status == "infeasible"
    conflicts = [n for n in sched.notes if n != "starts are a best-effort placement" and not n.startswith("best-effort")
                 and "randomised restarts" not in n] if proved else []
    bad = check(problem, sched) if sched.starts else []
    order = {"deadline": 0, "lag_max": 1, "lag_min": 2, "capacity": 3}
    bad.sort(key=lambda v: (order.get(v.kind, 9), v.start or 0.0))
    late = [v.ops[0].split(":", 1)[0] for v in bad if v.kind == "deadline" and v.ops]
    unmet = []
    if late:
        unmet.append(f"{len(late)} run(s) cannot start within their start window "
                     f"({_dur(exp.runs[0].spread)} after release): {', '.join(late[:5])}{' …' if len(late) > 5 else ''}")
    unmet += [describe(v, exp, problem) for v in [v for v in bad if v.kind != "deadline"][:20]]
    util = utilisation(problem, sched) if sched.starts else {}
    instruments = campaign.workcell.instruments
    phys = {n for n, i in instruments.items() if i.instrument_class not in ("plate_mover",)}
    ranked = sorted(((max(days, default=0.0), r) for r, days in util.items()), reverse=True)
    saturated = [r for u, r in ranked if u >= 0.85]
    overload = [c for c in cp.conflicts if c.kind == "resource_overload" and c.resource]
    overloaded = [c.resource for c in overload if c.resource]
    busiest: dict[str, Any] | None = None
    focus = next((r for r in overloaded if r in instruments), None) or next(
        (r for _, r in ranked if r in phys), None)
    if overload and overload[0].start is not None and overload[0].end is not None:
        c = overload[0]
        s, e = float(c.start or 0.0), float(c.end or 0.0)
        cap = problem.capacity.get(c.resource or "", 1)
        m = NEED.search(c.message)
        need, avail = (float(m.group(1)), float(m.group(4))) if m else (math.nan, cap * (e - s))
        if m:
            s, e = float(m.group(2)), float(m.group(3))
        busiest = {"resource": c.resource, "from_s": s, "to_s": e, "need_s": need, "available_s": avail,
                   "proved": True,
                   "text": f"{c.resource} would need {_dur(need)} of work between {clock(s)} and {clock(e)} "
                           f"where only {_dur(avail)} are available"}
    elif focus is not None:
        days = util.get(focus, [])
        s, e = busy_stretch(problem, sched, focus) if sched.starts else (0.0, 0.0)
        d = int(s // DAY)
        u = days[d] if d < len(days) else 0.0
        busiest = {"resource": focus, "from_s": s, "to_s": e, "day": d, "utilisation": u, "proved": False,
                   "text": f"{focus} busy without a break {clock(s)}–{clock(e)} ({_dur(e - s)}) in the best "
                           f"placement found; {100 * u:.0f} % of day {d}"}
    suggestions: list[dict[str, Any]] = []
    not_tried: list[str] = []
    n = len(campaign.runs)
    lab_per_run = max((len(r.graph.labware) for r in campaign.runs), default=1)
    slot_msgs = [c for c in conflicts if c.startswith("incubator ")]
    prober = Prober(exp)
    if prober.affordable(deadline):
        lo, hi, done = largest_feasible(prober, deadline)
        slots = min((getattr(instruments[i].config, "slots", 10**9) for i in campaign.workcell.of_class("incubator")),
                    default=10**9)
        fit = min(lo, slots // lab_per_run) if slot_msgs else lo
        text = (f"plan at most {fit} plates on this workcell" + (
            f" ({slots} incubator slots; {lo} with enough slots)" if slot_msgs and lo > fit else "")
            + ("" if done else f" (search stopped at the time limit: {lo} plan, {hi} did not)"))
        suggestions.append({"change": "plates", "plates": fit, "plates_with_enough_slots": lo,
                            "first_infeasible": hi, "complete": done, "text": text})
    else:
        not_tried.append("largest feasible plate count (time limit)")
    if exp.runs and prober.affordable(deadline):
        spread = 2 * max(rx.spread for rx in exp.runs) or 2 * DAY
        ok = prober.feasible(spread=spread)
        suggestions.append({"change": "start spread", "spread_s": spread, "feasible": ok,
                            "text": f"start the plates over {_dur(spread)} instead of {_dur(spread / 2)}: "
                                    + ("plans feasibly" if ok else "still no plan")})
    elif exp.runs:
        not_tried.append("spreading the starts over two days (time limit)")
    target = next((r for r in (overloaded + saturated) if r in instruments
                   and instruments[r].instrument_class not in ("incubator",)), None)
    if target is None and focus in instruments:
        target = focus
    if target is not None and prober.affordable(deadline) and time.perf_counter() + 3 * prober.cost < deadline:
        cell, new = with_extra_instrument(campaign.workcell, target)
        more = Prober(expand(dataclasses.replace(campaign, workcell=cell)))
        ok = more.feasible()
        cls = instruments[target].instrument_class
        extra: dict[str, Any] = {"change": "add instrument", "instrument": target, "copy": new, "feasible": ok}
        if not ok and more.affordable(deadline):
            lo2, _, done2 = largest_feasible(more, deadline)
            extra["plates"] = lo2
            extra["text"] = (f"add another {cls} like {target}: still no plan for {n} plates "
                             f"({'' if done2 else 'at least '}{lo2} would plan)")
        else:
            extra["text"] = f"add another {cls} like {target}: " + ("plans feasibly" if ok else "still no plan")
        suggestions.append(extra)
    elif target is not None:
        not_tried.append(f"another {target} (time limit)")
    if proved:
        headline = "infeasible (proved): " + "; ".join(conflicts[:2])
    else:
        headline = ("no feasible plan found within the time limit (not proved infeasible)"
                    + (f"; {len(bad)} constraint(s) unmet in the best placement found" if bad else ""))
    return {
        "proved": proved,
        "headline": headline,
        "conflicts": conflicts,
        "unmet": unmet,
        "unmet_total": len(bad),
        "saturated": saturated,
        "busiest": busiest,
        "utilisation": {r: days for r, days in util.items() if r in phys or r.endswith(SITE) or r == "plates-out"},
        "suggestions": suggestions,
        "not_tried": not_tried,
    }


__all__ = ["Mapping", "busy_stretch", "clock", "describe", "explain_plan", "largest_feasible", "utilisation",
           "with_extra_instrument", "with_runs", "with_slots"]
