"""Campaign planning: a campaign (+ workcell) -> planner problem -> what the engine runs.

    from orchestrator.planning import plan_campaign
    cp = plan_campaign(load_campaign("bench/workloads/W24.yaml"), time_limit=10)
    cp.feasible, cp.violations, cp.starts[0]["day[3].feed"]

See docs/planning.md.
"""

from __future__ import annotations

from .expand import Cadence, Expansion, ExpansionError, OpInfo, RunExpansion, expand, pin_graph
from .plan import CampaignPlan, build_problem, plan_campaign

__all__ = [
    "Cadence", "CampaignPlan", "Expansion", "ExpansionError", "OpInfo", "RunExpansion", "build_problem", "expand",
    "pin_graph", "plan_campaign",
]
