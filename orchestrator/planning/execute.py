"""Plan a campaign, then execute it on the engine following the plan.

A thin wrapper of :func:`orchestrator.runner.run_campaign` (which plans by default) that
also returns the plan, and can decline to run an infeasible campaign.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.campaign import Campaign, load_campaign
from orchestrator.engine.engine import Engine
from orchestrator.runner import CampaignResult, run_campaign
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
    cp = campaign_plan or plan_campaign(loaded, time_limit=time_limit, use_cpsat=use_cpsat)
    if not cp.feasible and not run_unplanned:
        return cp, None
    result = run_campaign(loaded, clock=clock, seed=seed, db=db, operator=operator, on_event=on_event,
                          on_start=on_start, campaign_plan=cp)
    return cp, result
