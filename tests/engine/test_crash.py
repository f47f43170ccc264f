"""Kill the engine process at chosen points (like kill -9) and resume.

The crash points are set with CELLWRIGHT_CRASH_AFTER / CELLWRIGHT_CRASH_BEFORE (see
orchestrator.store.crash). After resume: the run completes, no step is lost, no
non-repeatable physical step happened twice, and the audit chain is intact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.store import Store
from orchestrator.workcell import load_workcell
from simulators.effects import load_effects, repeated_steps

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = str(ROOT / "protocols" / "ipsc-maintenance.yaml")
CLASSES = load_workcell().instrument_classes()


def cli(*args: str, crash: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLWRIGHT_CRASH")}
    env["CELLWRIGHT_OPERATOR"] = "tester"
    env.update(crash or {})
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=120)


def reference(tmp_path: Path) -> dict:
    out = cli("run", PROTOCOL, "--db", str(tmp_path / "ref.db"), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def done_keys(db: Path) -> set[str]:
    store = Store(db)
    try:
        return {s["key"] for s in store.steps("R0001") if s["kind"] == "action" and s["status"] == "done"}
    finally:
        store.close()


@pytest.mark.parametrize("crash", [
    {"CELLWRIGHT_CRASH_AFTER": "step.running:12"},       # between an intent and its outcome
    {"CELLWRIGHT_CRASH_BEFORE": "step.ready:9"},         # inside a transition's write
    {"CELLWRIGHT_CRASH_BEFORE": "measurement:3"},        # inside a measurement's write
    {"CELLWRIGHT_CRASH_AFTER": "step.done:30"},          # right after an outcome
    {"CELLWRIGHT_CRASH_AFTER": "step.running@feed:3"},   # a medium exchange started: only a person can tell
    {"CELLWRIGHT_CRASH_AFTER": "step.running@fetch:4"},  # an incubator fetch started: the incubator can tell
    {"CELLWRIGHT_CRASH_AFTER": "run.created:1"},         # the run recorded, not yet validated
    {"CELLWRIGHT_CRASH_AFTER": "run.transition:1"},      # validated, not yet planned
], ids=["intent", "transition", "measurement", "outcome", "operator-in-doubt", "query-in-doubt", "created",
        "validated"])
def test_kill_and_resume_loses_and_repeats_nothing(tmp_path, crash):
    ref = reference(tmp_path)
    db = tmp_path / "c.db"
    first = cli("run", PROTOCOL, "--db", str(db), "--json", crash=crash, cwd=tmp_path)
    assert first.returncode == 137, first.stderr
    resumed = cli("resume", "--db", str(db), "--json", cwd=tmp_path)
    if crash.get("CELLWRIGHT_CRASH_AFTER", "").startswith("step.running@feed"):
        assert resumed.returncode == 4, "a medium exchange in doubt must wait for a person"
    if resumed.returncode == 4:  # an operator-class step was in doubt: check the plate and decide
        summary = json.loads(resumed.stdout)
        assert "confirm" in summary["error"]
        store = Store(db)
        waiting = [s for s in store.steps("R0001") if s["status"] == "awaiting_operator" or
                   s["status"] == "running"]
        store.close()
        effects = load_effects(tmp_path / "c.sim-R0001.pkl")
        for step in waiting:
            happened = any(e["step"] and e["step"].startswith(f"R0001:{step['key']}:") for e in effects)
            decision = "--done" if happened else "--redo"
            out = cli("confirm", "R0001", step["key"], decision, "--reason", "looked at the plate", "--db", str(db),
                      cwd=tmp_path)
            assert out.returncode == 0, out.stderr
        resumed = cli("resume", "--db", str(db), "--json", cwd=tmp_path)
        del summary
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    summary = json.loads(resumed.stdout)
    assert summary["status"] == "completed"
    # no step lost: the same protocol steps finished as in an uninterrupted run
    assert summary["steps_done"] == ref["steps_done"]
    assert summary["actions"] == ref["actions"]
    assert done_keys(db) == done_keys(tmp_path / "ref.db")
    # every imaging has its measurement exactly once
    images = [m for m in summary["measurements"] if m["name"] == "confluence"]
    assert len(images) == len({m["step"] for m in images}) == 7
    # no non-repeatable physical step happened twice
    effects = load_effects(tmp_path / "c.sim-R0001.pkl")
    assert repeated_steps(effects, CLASSES) == []


def test_a_planned_campaign_is_replanned_around_what_happened(tmp_path):
    campaign = tmp_path / "w3.yaml"
    campaign.write_text(f"campaign: w3\nworkcell: {ROOT}/protocols/workcells/w24.yaml\nruns:\n"
                        f"  - protocol: {ROOT}/protocols/ipsc-w24.yaml\n    plates: 3\n    parameters: {{days: 3}}\n")
    db = tmp_path / "c.db"
    first = cli("run", str(campaign), "--db", str(db), "--json", crash={"CELLWRIGHT_CRASH_AFTER": "step.running:40"},
                cwd=tmp_path)
    assert first.returncode == 137, first.stderr
    for _ in range(3):  # a resume pauses when a medium exchange was in doubt: a person checks the plate
        resumed = cli("resume", "--db", str(db), "--json", cwd=tmp_path)
        if resumed.returncode != 4:
            break
        store = Store(db)
        waiting = store.query("SELECT run_id, key FROM steps WHERE status IN ('running', 'awaiting_operator')")
        store.close()
        effects = [e for p in tmp_path.glob("c.sim-*.pkl") for e in load_effects(p)]
        for step in waiting:
            happened = any(e["step"] and e["step"].startswith(f"{step['run_id']}:{step['key']}:") for e in effects)
            out = cli("confirm", step["run_id"], step["key"], "--done" if happened else "--redo", "--reason",
                      "looked at the plate", "--db", str(db), cwd=tmp_path)
            assert out.returncode == 0, out.stderr
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    store = Store(db)
    try:
        revised = [json.loads(e["payload"]) for e in store.query("SELECT payload FROM events WHERE kind = 'plan.revised'")]
        unfinished_at_crash = {e["run_id"] for e in store.query(
            "SELECT run_id FROM events WHERE kind = 'deviation' AND payload LIKE '%resumed-after-crash%'")}
        runs = store.runs()
        # every run that was unfinished got a plan made around what had happened, and followed it
        at_resume = [r for r in revised if r["reason"].startswith("resumed")]
        assert unfinished_at_crash and len(at_resume) >= len(unfinished_at_crash)
        assert all(r["feasible"] and r["frozen"] > 0 and r["steps_moved"] > 0 for r in at_resume)
        assert all(r["status"] == "completed" for r in runs)
    finally:
        store.close()
    effects = [e for p in tmp_path.glob("c.sim-*.pkl") for e in load_effects(p)]
    assert repeated_steps(effects, CLASSES) == []
