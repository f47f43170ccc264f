"""`cellwright plan` body: exit codes, JSON fields, infeasibility explanation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.planning.cli import plan_command

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("feasible", "violations", "operations", "makespan_s", "lower_bound_s", "mean_cadence_error_s",
          "max_plates_out", "plan_seconds")


def _campaign(tmp_path: Path, plates: int, days: int, name: str = "c") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"campaign: {name}\n"
        f"workcell: {ROOT / 'protocols' / 'workcells' / 'w24.yaml'}\n"
        "runs:\n"
        f"  - protocol: {ROOT / 'protocols' / 'ipsc-w24.yaml'}\n"
        f"    plates: {plates}\n"
        f"    parameters: {{days: {days}}}\n"
    )
    return path


def test_feasible_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = plan_command(_campaign(tmp_path, 3, 3), None, True, 5.0, False, tmp_path / "plans")
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    for f in FIELDS:
        assert f in out
    assert out["feasible"] is True and out["violations"] == []
    assert out["mean_cadence_error_s"] == 0.0
    assert Path(out["gantt"]).exists() and Path(out["gantt"]).read_text().startswith("<!doctype html>")
    assert (tmp_path / "plans" / "c-plan.json").exists()


def test_human_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = plan_command(_campaign(tmp_path, 2, 2), None, False, 5.0, False, tmp_path / "plans")
    assert rc == 0
    text = capsys.readouterr().out
    assert "feasible" in text and "cadence error" in text and "Gantt chart" in text


def test_impossible_campaign_is_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The explanation tries changes while the time limit allows (wall clock): a limit far above
    # the ~3 s it needs keeps the test deterministic on a loaded machine; bench/ measures time.
    limit = 60.0
    rc = plan_command(_campaign(tmp_path, 200, 5, "impossible"), None, True, limit, False, tmp_path / "plans")
    out = json.loads(capsys.readouterr().out)
    assert rc == 3
    assert out["feasible"] is False and out["violations"]
    exp = out["explanation"]
    assert exp["proved"] is True
    assert exp["busiest"]["resource"] == "lh1"  # the saturated instrument is named
    assert "lh1" in exp["busiest"]["text"]
    assert any("44 slots" in c for c in exp["conflicts"])
    assert any(s["change"] == "plates" and 0 < s["plates"] < 200 for s in exp["suggestions"])


def test_invalid_input_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("campaign: bad\nruns:\n  - protocol: nowhere.yaml\n")
    rc = plan_command(bad, None, True, 5.0, False, tmp_path / "plans")
    err = capsys.readouterr().err
    assert rc == 2
    assert "bad.yaml:3" in err and "nowhere.yaml" in err
