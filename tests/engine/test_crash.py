"""Kill the engine process at chosen points (like kill -9) and resume.

The crash points are set with CELLWRIGHT_CRASH_AFTER / CELLWRIGHT_CRASH_BEFORE (see
orchestrator.store.sqlite). After resume: the run completes, no step is lost, no
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
], ids=["intent", "transition", "measurement", "outcome", "operator-in-doubt", "query-in-doubt"])
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
