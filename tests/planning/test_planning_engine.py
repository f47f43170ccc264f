"""The plan is what the engine executes: same step keys, same starts, same moves, no
missed window (a small campaign through the real engine and simulators, virtual time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.campaign import load_campaign
from orchestrator.planning import plan_campaign
from orchestrator.runner import run_campaign
from orchestrator.store import Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def small_campaign(tmp_path: Path) -> Path:
    # 2 plates x 3 days; passage every 2nd day: day 0 seed, day 1 feed, day 2 QC + passage
    path = tmp_path / "small.yaml"
    path.write_text(
        "campaign: small\n"
        f"workcell: {ROOT / 'protocols' / 'workcells' / 'w24.yaml'}\n"
        "runs:\n"
        f"  - protocol: {ROOT / 'protocols' / 'ipsc-w24.yaml'}\n"
        "    plates: 2\n"
        "    parameters: {days: 3, passage_every: 2}\n"
    )
    return path


def test_engine_executes_the_plan_exactly(small_campaign: Path, tmp_path: Path) -> None:
    campaign = load_campaign(small_campaign)
    cp = plan_campaign(campaign, time_limit=5)
    assert cp.feasible and cp.violations == []
    keys = set(cp.starts[0])
    assert {"day[0].seed", "day[1].feed", "day[2].qc.reagent", "day[2].qc.read", "day[2].qc.image",
            "day[2].passage.dissociate", "day[2].passage.harvest", "day[2].passage.count",
            "day[2].passage.reseed"} == keys
    db = tmp_path / "run.db"
    ids: list[str] = []
    result = run_campaign(campaign, db=db, campaign_plan=cp, on_start=lambda e, i: ids.extend(i))
    assert result is not None
    summary = result.summary()
    assert summary["status"] == "completed"
    deviations = [d for r in summary["run_summaries"] for d in r["deviations"]]
    assert not [d for d in deviations if d["kind"] == "window-missed"], deviations
    store = Store(db)
    try:
        for i, run_id in enumerate(ids):
            steps = store.steps(run_id)
            actions = {s["key"]: s for s in steps if s["kind"] == "action"}
            assert set(actions) == set(cp.starts[i])  # every planned key ran, nothing else
            for key, s in actions.items():
                planned = cp.schedule.starts[f"R{i + 1:04d}:{key}"]
                assert s["start"] == pytest.approx(planned, abs=1e-6), key
                assert s["instrument"] == cp.schedule.assignment[f"R{i + 1:04d}:{key}"][0]
            moves = sorted((s["start"], s["action"]) for s in steps
                           if s["kind"] == "transport" and s["action"] != "check_in")
            planned_moves = sorted((cp.schedule.starts[o.id], o.action) for o in cp.expansion.runs[i].info
                                   if o.kind != "action")
            assert moves == planned_moves  # every fetch, transfer and store at its planned time
    finally:
        store.close()
    assert summary["sim_seconds"] == pytest.approx(cp.makespan_s)
