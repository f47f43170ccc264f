"""Re-planning a campaign whose runs resume after a crash or a pause.

The runs are planned again as a campaign (same graphs, releases and priorities as
recorded), then :func:`~orchestrator.planning.replan.replan_during_run` freezes what the
journal says already happened — every action that started, at its real start and
duration — and plans the rest around it, from the resumed clock on. Windows that the
stop made impossible are not hidden: the executor records them as deviations when the
step runs. Times in SECONDS.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.campaign import Campaign, CampaignRun
from orchestrator.planner import Schedule
from orchestrator.protocol.graph import ProtocolGraph
from orchestrator.workcell import Workcell

from .expand import Expansion
from .plan import CampaignPlan, engine_starts, plan_campaign
from .replan import replan_during_run


@dataclass
class ResumedPlan:
    """What resumed runs follow.

    Attributes:
        plan: the campaign plan to follow, or None (run unplanned; ``note`` says why).
        starts: run index -> {action key: planned clock s} for what is still to do.
        state: the schedule and expansion later re-plans start from.
        note: the ``plan.revised`` payload to journal.
    """

    plan: CampaignPlan | None
    starts: dict[int, dict[str, float]] = field(default_factory=dict)
    state: tuple[Schedule, Expansion] | None = None
    note: dict[str, Any] = field(default_factory=dict)


def plan_resumed(name: str, workcell: Workcell, runs: Sequence[tuple[ProtocolGraph, float, int]], now: float,
                 actual: Mapping[int, Mapping[str, tuple[float, float]]], *, time_limit: float = 5.0) -> ResumedPlan:
    """Plan the rest of resumed runs around what already happened.

    Args:
        name: the campaign's name.
        runs: per run index, (graph, release s, priority) as recorded when it was created.
        now: the resumed clock, s.
        actual: per run index, ``{action key: (start, duration)}`` of every action that
            started (from the journal).
        time_limit: planner budget, wall s.
    """
    t0 = time.perf_counter()
    campaign = Campaign(name, "", "", workcell,
                        tuple(CampaignRun(graph, release, priority, 0, i)
                              for i, (graph, release, priority) in enumerate(runs)))
    base = {"reason": "resumed: re-planned around what the journal says happened"}
    cp = plan_campaign(campaign, time_limit=time_limit, explain=False)
    if not cp.feasible:
        return ResumedPlan(None, note={**base, "feasible": False, "steps_moved": 0,
                                       "fallback": f"planner {cp.status}: running unplanned (each step at its "
                                                   f"earliest time)",
                                       "latency_s": round(time.perf_counter() - t0, 4)})
    if cp.unknown:
        return ResumedPlan(None, note={**base, "feasible": False, "steps_moved": 0,
                                       "fallback": f"{len(cp.unknown)} steps depend on measurements the planner "
                                                   f"cannot foresee: running unplanned",
                                       "latency_s": round(time.perf_counter() - t0, 4)})
    answer = replan_during_run(cp, now, actual=actual, affected=set(range(len(runs))), time_limit=time_limit)
    note = {**base, "feasible": answer.feasible, "latency_s": round(time.perf_counter() - t0, 4),
            "frozen": len(answer.frozen), "violations": answer.violations[:10]}
    if not answer.feasible:
        note.update(steps_moved=0, fallback="no feasible plan around what happened: running unplanned")
        return ResumedPlan(None, note=note)
    starts, _ = engine_starts(answer.expansion, answer.schedule.starts)
    remaining = {i: {k: s for k, s in plan.items() if k not in actual.get(i, {})} for i, plan in starts.items()}
    note["steps_moved"] = sum(len(s) for s in remaining.values())
    return ResumedPlan(cp, remaining, (answer.schedule, answer.expansion), note)
