"""Engine sessions in the record: a deleted redo log is noticed, and accepted only by a person."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.engine.control import record_loss_accepted
from orchestrator.store import Store, StoreError
from orchestrator.store.audit import verify
from orchestrator.store.journal import Journal
from tests.store.test_grouping import _crash, _grouped, crash_with_one_event_in_the_redo_log


def test_a_clean_stop_and_a_crash_with_its_log_are_not_losses(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store, journal = _grouped(db)
    journal.note("a", {})
    store.close()
    assert verify(db).ok
    store, journal = _grouped(db)  # a second engine: claims without complaint
    journal.note("b", {})
    store.flush()
    _crash(store)
    again = Store(db)  # replays the log
    again.claim()
    again.close()
    assert verify(db).ok


def test_a_deleted_redo_log_fails_verify_and_stops_engines_until_accepted(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    crash_with_one_event_in_the_redo_log(db)
    os.remove(str(db) + "-redo")  # by hand

    report = verify(db)
    assert not report.ok and report.first_problem.kind == "deleted" and report.first_problem.seq == 1
    assert "is missing although that engine never recorded a clean stop" in report.first_problem.message
    status = subprocess.run([sys.executable, "-m", "orchestrator.cli", "status", "--db", str(db)], text=True,
                            capture_output=True, timeout=120)
    assert status.returncode == 0 and "until a person accepts the loss" in status.stderr
    store = Store(db)  # reading and operator writes still work
    with pytest.raises(StoreError, match="accept-loss"):
        store.claim()
    with pytest.raises(Exception, match="anonymous"):
        record_loss_accepted(store, " ", "checked")
    with pytest.raises(Exception, match="needs --reason"):
        record_loss_accepted(store, "ann", "  ")
    assert record_loss_accepted(store, "ann", "plates checked: nothing happened after the last record") == 1
    with pytest.raises(Exception, match="nothing to accept"):
        record_loss_accepted(store, "ann", "twice")
    store.claim()  # accepted: an engine may run again
    Journal(store).note("next engine", {})
    store.close()
    report = verify(db)
    assert report.ok and any("ann accepted the loss" in n for n in report.notes)


def test_a_database_reached_through_a_symlink_finds_its_redo_log(tmp_path: Path) -> None:
    real = tmp_path / "data" / "s.db"
    real.parent.mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(real)
    crash_with_one_event_in_the_redo_log(link)
    assert os.path.getsize(str(real) + "-redo") > 0  # beside the file, not beside the link
    report = verify(link)  # read-only: sees the committed events, notes the waiting one
    assert report.ok and any("s.db-redo" in n for n in report.notes)
    store = Store(link)
    assert store.recovered == 1
    store.claim()  # not mistaken for a deleted log
    store.close()
    assert verify(link).ok


def test_a_log_taken_over_by_another_writer_may_then_be_removed(tmp_path: Path) -> None:
    """An operator's command replayed the dead engine's log: the session is over, so the
    emptied log's removal is not a loss."""
    db = tmp_path / "s.db"
    crash_with_one_event_in_the_redo_log(db)
    operator = Store(db)
    operator.append("operator.pause", {"reason": "r", "step": None}, actor="ann", run_id="R1", subject="R1")
    operator.close()
    os.remove(str(db) + "-redo")
    assert verify(db).ok
    engine = Store(db)
    engine.claim()
    engine.close()
