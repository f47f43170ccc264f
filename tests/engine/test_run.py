"""Whole runs on the simulated workcell, in virtual time."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.engine.control import record_request
from orchestrator.runner import resume_run, run_protocol
from orchestrator.store import Store

PROTOCOL = str(Path(__file__).resolve().parents[2] / "protocols" / "ipsc-maintenance.yaml")


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


def test_a_plate_left_on_an_instrument_pauses_the_runs_that_need_it(tmp_path):
    """Run R0001 fails on lh1 and its plate cannot be taken home (the move fails): R0002,
    which needs lh1 later, pauses naming the plate to remove instead of waiting for ever."""
    from drivers.errors import DeviceFault
    from orchestrator.runner import run_campaign

    bad = tmp_path / "bad.yaml"
    bad.write_text("protocol: bad-feed\nversion: 1.0.0\ntitle: feed before seeding\nlabware:\n  plate:\n"
                   "    model: corning_6_wellplate\n    cells: 201B7\n    cell_type: ipsc\n    home: incubator\n"
                   "steps:\n  - id: feed\n    do: liquid_handler.exchange_medium\n"
                   "    with: {plate: plate, volume_ul: 2000, medium: mTeSR Plus}\n")
    campaign = tmp_path / "c.yaml"
    campaign.write_text(f"campaign: strand\nruns:\n  - protocol: {bad}\n  - protocol: {Path(PROTOCOL).resolve()}\n"
                        f"    parameters: {{days: 1}}\n    start: 10m\n")

    def arm_breaks_for_r1(engine, ids):
        async def cannot_move_home():
            raise DeviceFault("arm", "gripper fault while taking the plate home")
        engine.runs[ids[0]].executor.transport.home_all = cannot_move_home

    result = run_campaign(campaign, db=tmp_path / "s.db", planned=False, on_start=arm_breaks_for_r1)
    first, second = (r.summary for r in result.runs)
    assert first["status"] == "failed" and "no cells" in first["error"]
    assert second["status"] == "paused"
    assert "plate R0001.plate of run R0001" in second["error"] and "at lh1" in second["error"]
    assert "a person must remove it" in second["error"]

    # A new engine (the resume) still keeps lh1 for the plate: the run pauses again rather
    # than putting a plate onto it.
    from orchestrator.engine.control import record_unload
    from orchestrator.runner import resume_runs
    from orchestrator.store.audit import verify
    from simulators.culture import load_effect_log

    db = tmp_path / "s.db"
    (again,) = resume_runs(["R0002"], db=db, operator="tester")
    assert again.summary["status"] == "paused"
    assert "`cellwright unload R0001.plate --reason TEXT`" in again.summary["error"]

    # A person takes the plate off and says so: the next resume completes (and, in
    # simulation, the plate leaves the simulated world).
    from orchestrator.cli_plates import plates_left_behind

    store = Store(db)
    assert [(p["plate"], p["site"]) for p in plates_left_behind(store)] == [("R0001.plate", "lh1")]  # status lists it
    with pytest.raises(Exception, match="which is paused"):
        record_unload(store, "R0002.plate", "tester", "not a finished run's plate")
    assert record_unload(store, "R0001.plate", "tester", "taken off lh1 by hand") == ("R0001", "lh1")
    with pytest.raises(Exception, match="already unloaded"):
        record_unload(store, "R0001.plate", "tester", "twice")
    assert plates_left_behind(store) == []
    store.close()
    (done,) = resume_runs(["R0002"], db=db, operator="tester")
    assert done.summary["status"] == "completed", done.summary
    world = next(tmp_path.glob("s.sim-*.pkl"))
    assert [e["action"] for e in load_effect_log(world) if e["plate"] == "R0001.plate"][-1] == "unload"
    assert verify(db).ok
    store = Store(db)
    (row,) = store.query("SELECT operator, reason FROM operator_actions WHERE action = 'unload:R0001.plate'")
    assert (row["operator"], row["reason"]) == ("tester", "taken off lh1 by hand")
    store.close()



class _FullDisk:
    """A world log file on a full disk: every write fails with ENOSPC."""

    def __init__(self, name: str) -> None:
        self.name = name

    def tell(self) -> int:
        return 0

    def write(self, data: bytes) -> int:
        import errno

        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_simulated_world_that_cannot_be_persisted_pauses_the_run(tmp_path, monkeypatch):
    """Disk full under the simulated world's file: the run pauses like a journal fault (no
    further action); once there is space, resume completes it and the audit holds."""
    from orchestrator.runner import resume_runs
    from orchestrator.store.audit import verify
    from simulators.culture import CultureModel

    db = tmp_path / "f.db"
    original = CultureModel.persist
    records = {"n": 0}

    def persist(self, *args, **kwargs):
        records["n"] += 1
        if records["n"] == 12:  # the disk fills up mid-run
            self._log = _FullDisk(str(self.state_path))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CultureModel, "persist", persist)
    result = run_protocol(PROTOCOL, db=db, overrides={"days": 2}, operator="tester")
    s = result.summary
    assert s["status"] == "paused", s
    assert "storage fault" in s["error"] and "cannot persist the simulated world" in s["error"]
    assert "No space left" in s["error"]

    store = Store(db)  # the journal worked: the pause and its reason are in it
    assert store.run(result.run_id)["status"] == "paused"
    assert "cannot persist the simulated world" in store.run(result.run_id)["detail"]
    store.close()

    monkeypatch.setattr(CultureModel, "persist", original)
    (resumed,) = resume_runs([result.run_id], db=db, operator="tester")
    assert resumed.summary["status"] == "completed", resumed.summary
    assert verify(db).ok


def test_the_bundled_qc_panel_runs_on_its_own_and_passage_says_it_needs_cells(tmp_path):
    bundled = Path(PROTOCOL).parent
    qc = run_protocol(bundled / "qc-panel.yaml", db=tmp_path / "q.db", operator="tester").summary
    assert qc["status"] == "completed" and all(v["passed"] for v in qc["qc"]), qc
    passage = run_protocol(bundled / "passage.yaml", db=tmp_path / "p.db", operator="tester").summary
    assert passage["status"] == "failed" and "no cells" in passage["error"]


def test_a_failed_final_commit_is_reported_not_raised(tmp_path, monkeypatch):
    """The disk fills up just as the engine ends: the run's summary says so (its end is in the
    redo log); the command does not die with a bare storage error."""
    from orchestrator.store import StoreError
    from orchestrator.store.sqlite import Store as StoreClass

    original = StoreClass.group_commits

    def group_commits(self, on):
        original(self, on)
        if not on:
            raise StoreError(f"cannot write to {self.path}: database or disk is full")

    monkeypatch.setattr(StoreClass, "group_commits", group_commits)
    result = run_protocol(PROTOCOL, db=tmp_path / "f.db", overrides={"days": 1}, operator="tester")
    assert result.summary["status"] == "completed"
    assert "storage fault at the final commit" in result.summary["error"]
