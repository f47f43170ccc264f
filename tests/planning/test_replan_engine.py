"""The engine re-plans a measurement-dependent campaign while it runs."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.runner import run_campaign
from orchestrator.store import Store

ROOT = Path(__file__).resolve().parents[2]


def _notes(db: Path) -> list[dict]:
    store = Store(db)
    try:
        return [json.loads(r["payload"]) for r in store.query("SELECT payload FROM events WHERE kind = 'plan.revised'")]
    finally:
        store.close()


def test_measurement_dependent_campaign_replans_and_completes(tmp_path: Path) -> None:
    campaign = tmp_path / "c.yaml"
    campaign.write_text(f"campaign: three-ipsc\nruns:\n  - protocol: {ROOT / 'protocols/ipsc-maintenance.yaml'}\n"
                        f"    plates: 3\n    parameters: {{days: 5}}\n")
    db = tmp_path / "c.db"
    result = run_campaign(campaign, db=db, follow_branches=True)
    summary = result.summary()
    assert summary["plan"]["feasible"]
    assert summary["status"] == "completed", [r["error"] for r in summary["run_summaries"]]
    assert summary["completed"] == 3
    notes = _notes(db)
    assert any(n["feasible"] for n in notes)
    assert all(n["latency_s"] is not None for n in notes)


def test_deterministic_campaign_needs_no_replan(tmp_path: Path) -> None:
    campaign = tmp_path / "w.yaml"
    campaign.write_text(f"campaign: w-small\nworkcell: {ROOT / 'protocols/workcells/w24.yaml'}\nruns:\n"
                        f"  - protocol: {ROOT / 'protocols/ipsc-w24.yaml'}\n    plates: 4\n    parameters: {{days: 5}}\n")
    db = tmp_path / "w.db"
    summary = run_campaign(campaign, db=db).summary()
    assert summary["status"] == "completed"
    assert _notes(db) == []


def test_measurement_dependent_campaign_runs_unplanned_by_default(tmp_path: Path) -> None:
    campaign = tmp_path / "c.yaml"
    campaign.write_text(f"campaign: two-ipsc\nruns:\n  - protocol: {ROOT / 'protocols/ipsc-maintenance.yaml'}\n"
                        f"    plates: 2\n    parameters: {{days: 3}}\n")
    db = tmp_path / "c.db"
    summary = run_campaign(campaign, db=db).summary()
    assert summary["status"] == "completed"
    assert _notes(db) == []
    store = Store(db)
    transitions = [json.loads(r["payload"]) for r in store.query(
        "SELECT payload FROM events WHERE kind = 'run.transition'")]
    store.close()
    planned = [t["reason"] for t in transitions if t["to"] == "planned"]
    assert len(planned) == 2 and all("depend on measurements" in r for r in planned)
