import sqlite3

import pytest

from orchestrator.store import Journal, Store, StoreError
from orchestrator.store.schema import SCHEMA_VERSION


def _run(journal):
    journal.run_created({"run_id": "R0001", "protocol": "p", "version": "1.0.0", "content_hash": "ab",
                         "source": "p.yaml", "parameters": {"days": 7}, "workcell": "w", "seed": 0,
                         "clock": "virtual", "created_wall": "2026-01-01T00:00:00", "origin": "o",
                         "campaign": None}, actor="alice")


def test_projections_and_chain(tmp_path):
    store = Store(tmp_path / "c.db")
    journal = Journal(store)
    _run(journal)
    journal.step_transition("R0001", "seed", "pending", "running", 1.0, fields={"action": "seed", "args": {"x": 1}})
    journal.step_transition("R0001", "seed", "running", "done", 301.0, fields={"end": 301.0})
    journal.measurement("R0001", "day[0].image", "confluence", {"mean": (0.2, "")}, 400.0)
    steps = store.steps("R0001")
    assert steps[0]["status"] == "done" and steps[0]["action"] == "seed" and steps[0]["end"] == 301.0
    assert store.measurements("R0001")[0]["value"] == 0.2
    events = store.events()
    assert [e["kind"] for e in events] == ["run.created", "step.running", "step.done", "measurement"]
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(events, events[1:]))
    assert store.run("R0001")["operator"] == "alice"
    store.close()
    reopened = Store(tmp_path / "c.db")
    assert reopened.head == events[-1]["hash"]
    assert reopened.query("PRAGMA user_version")[0]["user_version"] == SCHEMA_VERSION
    assert reopened.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"


def test_failed_write_changes_nothing(tmp_path):
    store = Store(tmp_path / "c.db")
    journal = Journal(store)
    _run(journal)
    head = store.head
    with pytest.raises(StoreError):
        _run(journal)  # same run id: constraint violation inside the transaction
    assert store.head == head
    assert len(store.events()) == 1


def test_not_a_database(tmp_path):
    bad = tmp_path / "x.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        Store(bad)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "n.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="upgrade"):
        Store(path)
