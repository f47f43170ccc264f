"""Plan a campaign, then execute it on the engine following the plan.

This is :func:`orchestrator.runner.run_campaign` with the planner in front; the runner can
call it (or copy its three planner lines, marked ``# planner`` below). Each run is added
with its planned release, its graph with the planned instruments pinned, and its planned
start per action key (``engine.add_run(plan=..., plan_note=...)``). When the plan is not
feasible the campaign still runs, unplanned (each step at its earliest time), and the
run's ``planned`` transition says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.clock import make_clock
from orchestrator.campaign import Campaign, load_campaign
from orchestrator.engine.engine import Engine
from orchestrator.runner import CampaignResult, RunResult, sim_state_for
from orchestrator.store import Store
from orchestrator.workcell import Workcell

from .plan import CampaignPlan, plan_campaign


def run_planned_campaign(
    campaign: str | Path | Campaign,
    *,
    workcell: str | Path | Workcell | None = None,
    clock: str = "virtual",
    seed: int = 0,
    db: str | Path = ":memory:",
    operator: str = "engine",
    on_event: Callable[[str, str, str], None] | None = None,
    on_start: Callable[[Engine, list[str]], None] | None = None,
    time_limit: float = 10.0,
    use_cpsat: bool = False,
    campaign_plan: CampaignPlan | None = None,
    run_unplanned: bool = True,
) -> tuple[CampaignPlan, CampaignResult | None]:
    """Plan ``campaign`` and execute it together on one workcell, following the plan.

    Args:
        time_limit, use_cpsat: planner settings (see `plan_campaign`).
        campaign_plan: a plan made already (skips planning).
        run_unplanned: when the plan is not feasible, still run the campaign without a
            plan (True) or return ``(plan, None)``.

    Returns:
        The plan and the campaign result (None when not run).

    Raises:
        ConfigurationError: the campaign, a protocol in it, or the workcell is invalid.
    """
    loaded = campaign if isinstance(campaign, Campaign) else load_campaign(campaign, workcell)
    cp = campaign_plan or plan_campaign(loaded, time_limit=time_limit, use_cpsat=use_cpsat)  # planner
    if not cp.feasible and not run_unplanned:
        return cp, None
    the_clock = make_clock(clock)
    store = Store(db, durability="normal" if the_clock.virtual else "full")
    try:
        label = f"R{store.query('SELECT COUNT(*) AS n FROM runs')[0]['n'] + 1:04d}"
        engine = Engine(loaded.workcell, store, the_clock, seed=seed, operator=operator, on_event=on_event,
                        sim_state=sim_state_for(db, label) if the_clock.virtual else None)
        ids = []
        with store.atomic():  # a campaign is recorded whole or not at all
            for i, r in enumerate(loaded.runs):
                if cp.feasible:  # planner
                    kwargs: dict[str, Any] = {"release_s": cp.releases[i], "plan": cp.starts[i],
                                              "plan_note": cp.plan_note(i)}
                    graph = cp.graphs[i]
                else:
                    kwargs = {"release_s": r.release_s,
                              "plan_note": f"planner {cp.status}: running unplanned (each step at its earliest time)"}
                    graph = r.graph
                ids.append(engine.add_run(graph, campaign=loaded.name, priority=r.priority, **kwargs))
        if on_start is not None:
            on_start(engine, ids)
        started = time.perf_counter()
        the_clock.run(engine.execute(ids))
        wall = time.perf_counter() - started
        result = CampaignResult(loaded.name, [RunResult(r, engine.summary(r, wall), str(db)) for r in ids], wall,
                                str(db))
        return cp, result
    finally:
        store.close()
