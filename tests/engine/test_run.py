"""Whole runs on the simulated workcell, in virtual time."""

from __future__ import annotations

import pytest

from orchestrator.engine.control import record_request
from orchestrator.runner import resume_run, run_protocol
from orchestrator.store import Store

PROTOCOL = "protocols/ipsc-maintenance.yaml"


def confluence(summary):
    return [m["values"]["mean"] for m in summary["measurements"] if m["name"] == "confluence"]


def test_seven_day_run_completes_with_rising_confluence():
    result = run_protocol(PROTOCOL, seed=1)
    s = result.summary
    assert s["status"] == "completed", s["error"]
    assert s["steps_failed"] == 0
    conf = confluence(s)
    assert len(conf) == 7
    assert all(b > a for a, b in zip(conf, conf[1:]))  # no passage in 7 days from 1.3e4 cells/well
    assert s["actions"]["exchange_medium"] == 7
    assert 5.9 * 86400 < s["sim_seconds"] < 6.2 * 86400
    assert s["qc"] and all(q["passed"] for q in s["qc"])


def test_fourteen_days_passage_when_threshold_crossed():
    s = run_protocol(PROTOCOL, overrides={"days": "14"}, seed=3).summary
    assert s["status"] == "completed"
    conf = confluence(s)
    assert s["passages"] >= 1
    # every passage follows an imaging at or above the threshold, and confluence drops after it
    for i, value in enumerate(conf[:-1]):
        if value >= 0.75:
            assert conf[i + 1] < value / 3
    assert s["actions"]["reseed"] == s["actions"]["harvest"] == s["actions"]["dissociate"] == s["passages"]


def test_same_seed_same_numbers_other_seed_other_numbers():
    a = confluence(run_protocol(PROTOCOL, seed=11).summary)
    b = confluence(run_protocol(PROTOCOL, seed=11).summary)
    c = confluence(run_protocol(PROTOCOL, seed=12).summary)
    assert a == b
    assert a != c


def test_daily_iterations_are_anchored_to_the_first(tmp_path):
    db = tmp_path / "r.db"
    run_protocol(PROTOCOL, db=db)
    store = Store(db)
    starts = [r["start"] for r in store.steps("R0001") if r["static_key"] == "day.image"]
    store.close()
    assert len(starts) == 7
    for k, t in enumerate(starts):
        assert abs(t - (starts[0] + k * 86400)) <= 3600


def test_pause_requested_before_start_then_resume(tmp_path):
    db = tmp_path / "p.db"
    shared: dict = {}

    def ask_pause(engine, run_id):
        record_request(engine.store, run_id, "pause", "alice", "bench needed")

    first = run_protocol(PROTOCOL, db=db, on_start=ask_pause, shared=shared)
    assert first.summary["status"] == "paused"
    assert "alice" in first.summary["error"]
    second = resume_run(first.run_id, db=db, operator="bob", shared=shared)
    assert second.summary["status"] == "completed"
    assert second.summary["actions"]["exchange_medium"] == 7


def test_abort_is_final(tmp_path):
    db = tmp_path / "a.db"

    def ask_abort(engine, run_id):
        record_request(engine.store, run_id, "abort", "alice", "contamination seen")

    result = run_protocol(PROTOCOL, db=db, on_start=ask_abort)
    assert result.summary["status"] == "aborted"
    with pytest.raises(Exception, match="aborted"):
        resume_run(result.run_id, db=db, operator="bob")


def test_anonymous_change_refused(tmp_path):
    db = tmp_path / "x.db"
    result = run_protocol(PROTOCOL, db=db)
    store = Store(db)
    with pytest.raises(Exception, match="anonymous"):
        record_request(store, result.run_id, "pause", "  ", "x")
    store.close()


def test_storage_fault_pauses_cleanly(tmp_path):
    db = tmp_path / "f.db"
    calls = {"n": 0}

    def break_storage(engine, run_id):
        original = engine.journal.store.append

        def append(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 60:
                engine.journal.store.conn.execute("PRAGMA query_only = 1")
            return original(*args, **kwargs)

        engine.journal.store.append = append

    result = run_protocol(PROTOCOL, db=db, on_start=break_storage)
    s = result.summary
    assert s["status"] == "paused"
    assert "storage fault" in s["error"] and "readonly" in s["error"]
    # nothing physical happened after the failed write: every step that started has an outcome or is in doubt
    store = Store(db)
    assert store.run(result.run_id)["status"] == "running"  # the journal could not be updated; resume will see a crash
    store.close()


def test_operator_task_pauses_until_confirmed(tmp_path):
    protocol = tmp_path / "task.yaml"
    protocol.write_text(
        "protocol: task-demo\nversion: 1.0.0\ntitle: operator task\n"
        "labware:\n  plate: {model: corning_6_wellplate, cell_type: ipsc}\n"
        "steps:\n"
        "  - id: load_matrigel\n    ask: Coat the plate with Matrigel and load it\n"
        "  - id: seed\n    do: liquid_handler.seed\n    with: {plate: plate, cells_per_well: 1.3e4, volume_ul: 2000}\n")
    db = tmp_path / "t.db"
    shared: dict = {}
    first = run_protocol(protocol, db=db, shared=shared)
    assert first.summary["status"] == "paused"
    assert "confirm" in first.summary["error"] and "load_matrigel" in first.summary["error"]
    assert first.summary["steps_done"] == 0
    store = Store(db)
    record_request(store, first.run_id, "confirm:done", "carol", "coated, 1 h at 37 °C", step_key="load_matrigel")
    store.close()
    second = resume_run(first.run_id, db=db, operator="carol", shared=shared)
    assert second.summary["status"] == "completed"
    assert second.summary["actions"] == {"seed": 1}
    store = Store(db)
    task = [s for s in store.steps(first.run_id) if s["key"] == "load_matrigel"][0]
    events = [e for e in store.events(first.run_id) if e["subject"] == "load_matrigel"]
    store.close()
    assert task["status"] == "done" and task["kind"] == "operator"
    assert events[-1]["actor"] == "carol"
