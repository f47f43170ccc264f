"""Group commit and the redo log: what a running engine's store guarantees.

A group's events are durable once flushed (written to the redo log) even though the
SQLite transaction is still open; a process that dies then leaves them in the log, and
the next open replays them. These tests "crash" by abandoning a store without closing
it, then opening the file again from a separate connection, as a restarted process would.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from orchestrator.store import Store, StoreError
from orchestrator.store.audit import verify
from orchestrator.store.journal import Journal


def _crash(store: Store) -> None:
    """What kill -9 leaves: the open transaction is lost, the redo lock released."""
    assert store.group is not None
    if store.group.checkpointer is not None:
        store.group.checkpointer.stop()
    store.conn.close()  # uncommitted pages are never written to the database
    if store.group.redo is not None:
        store.group.redo.close()
    if store.group.knock is not None:
        os.close(store.group.knock)


def _kinds(path: Path) -> list[str]:
    """Kinds of the committed events, without the engine session markers (engine.*)."""
    conn = sqlite3.connect(path)
    try:
        return [k for (k,) in conn.execute("SELECT kind FROM events WHERE kind NOT LIKE 'engine.%' ORDER BY seq")]
    finally:
        conn.close()


def _recorded(store: Store) -> list[str]:
    """Kinds of a store's events, without the engine session markers (engine.*)."""
    return [e["kind"] for e in store.events() if not e["kind"].startswith("engine.")]


def crash_with_one_event_in_the_redo_log(db: Path) -> None:
    """An engine that committed one event, made a second durable in its redo log, and died."""
    store, journal = _grouped(db)
    journal.note("committed", {})
    store.on_idle(real_wait=True)
    journal.note("only in the redo log", {})
    store.flush()
    _crash(store)


def _grouped(path: Path) -> tuple[Store, Journal]:
    store = Store(path)
    store.group_commits(True)
    return store, Journal(store)


def test_flushed_events_survive_a_crash_and_are_replayed_once(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.deviation("R1", "a", "retry", "first", 1.0)
    store.flush()  # durable: an instrument action may follow
    journal.deviation("R1", "b", "retry", "second, never flushed", 2.0)
    assert _kinds(db) == []  # nothing committed yet
    _crash(store)

    again = Store(db)
    assert again.recovered == 1
    assert _recorded(again) == ["deviation", "journal.recovered"]
    assert [d["detail"] for d in again.deviations("R1")] == ["first"]  # its projection was applied
    assert os.path.getsize(str(db) + "-redo") == 0
    again.close()
    assert verify(db).ok
    third = Store(db)  # nothing left to replay
    assert third.recovered == 0 and _recorded(third) == ["deviation", "journal.recovered"]
    third.close()


def test_idle_commits_and_empties_the_log(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("plan", {"n": 1})
    store.on_idle(real_wait=True)  # the loop is about to wait in real time: commit
    assert _kinds(db) == ["plan"]
    assert os.path.getsize(str(db) + "-redo") == 0
    store.close()


def test_a_failed_unit_undoes_only_itself(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("kept", {})
    with pytest.raises(RuntimeError), store.atomic():
        journal.note("undone", {})
        raise RuntimeError("a defect inside a unit")
    with pytest.raises(StoreError, match="cannot be recorded"):
        store.append("measurement", {"name": "x"}, actor="engine", run_id="R1", subject="s")  # no values
    journal.note("after", {})
    store.flush()
    _crash(store)
    again = Store(db)
    assert _recorded(again)[:2] == ["kept", "after"]
    again.close()
    assert verify(db).ok


def test_a_damaged_redo_log_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("first", {"v": 1})
    journal.note("second", {"v": 2})
    store.flush()
    _crash(store)
    redo = Path(str(db) + "-redo")
    redo.write_text(redo.read_text().replace('{"v":2}', '{"v":3}'))
    with pytest.raises(StoreError, match=r"g\.db-redo.*seq 3 \(second\).*not changed"):  # 1: engine.started
        Store(db)
    assert _kinds(db) == []


def test_a_torn_last_record_is_ignored(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("whole", {})
    store.flush()
    _crash(store)
    with open(str(db) + "-redo", "a") as f:
        f.write('[2, null, "torn')  # a write cut short by a power cut
    again = Store(db)
    assert _recorded(again) == ["whole", "journal.recovered"]
    recovered = again.events()[-1]
    assert '"torn_bytes":' in recovered["payload"] and '"torn_bytes":0' not in recovered["payload"]
    again.close()


def test_a_live_engines_log_is_not_replayed_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("in flight", {})
    store.flush()
    reader = Store(db)  # e.g. `cellwright status` while the engine runs
    assert reader.recovered == 0 and _recorded(reader) == []
    reader.close()
    store.close()
    assert _kinds(db) == ["in flight"]


def test_a_writer_from_another_process_gets_in_between_commits(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("engine 1", {})  # the engine holds the write lock
    done = threading.Event()

    def operator() -> None:
        other = Store(db)
        other.append("operator.pause", {"reason": "lunch", "step": None}, actor="ann", run_id="R1", subject="R1")
        other.close()
        done.set()

    thread = threading.Thread(target=operator)
    thread.start()
    deadline = time.monotonic() + 10  # a handshake with a thread, not a wait on time
    while not _knocked(db):
        assert time.monotonic() < deadline, "the writer never knocked"
    store.group.started = math.inf  # however slow this machine, the commit interval has not passed
    store.on_idle(real_wait=False)  # not due yet: the engine keeps its transaction
    assert not done.is_set()
    store.group.started = -math.inf  # the commit interval has passed
    store.on_idle(real_wait=False)  # commit, then let the knocking writer in
    assert done.wait(10)
    thread.join()
    journal.note("engine 2", {})
    store.close()
    assert _kinds(db) == ["engine 1", "operator.pause", "engine 2"]
    assert verify(db).ok


def _knocked(db: Path) -> bool:
    import fcntl

    fd = os.open(str(db) + "-knock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_failed_redo_write_stops_all_writing(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("durable", {})
    store.flush()
    journal.note("lost", {})
    assert store.group is not None and store.group.redo is not None
    os.close(store.group.redo.fd)  # the next write fails like a full disk would
    with pytest.raises(StoreError, match="redo log"):
        store.flush()
    with pytest.raises(StoreError, match="what was durable is kept"):
        journal.note("refused", {})
    # The broken engine lives on (a run asleep in an incubation) but gave up the redo log:
    # an operator's write first replays what was durable, so the chain does not fork.
    operator = Store(db)
    operator.append("operator.pause", {"reason": "storage alarm", "step": None}, actor="ann", run_id="R1",
                    subject="R1")
    kinds = _recorded(operator)
    operator.close()
    assert kinds == ["durable", "journal.recovered", "operator.pause"]
    store.close()
    assert verify(db).ok


def test_audit_verify_mentions_events_awaiting_recovery(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    crash_with_one_event_in_the_redo_log(db)
    report = verify(db)  # read-only: it does not replay
    assert report.ok and report.events == 2  # engine.started, committed
    assert any("1 event(s) in" in n and "g.db-redo" in n for n in report.notes)
    Store(db).close()  # the next open applies it
    after = verify(db)
    assert after.events == 4 and not any("-redo" in n for n in after.notes)


def test_a_clean_end_leaves_no_redo_log(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("x", {})
    store.close()
    assert not os.path.exists(str(db) + "-redo") and _kinds(db) == ["x"]
    with sqlite3.connect(db) as conn:  # the session is in the record, from start to clean stop
        kinds = [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY seq")]
    conn.close()
    assert kinds == ["engine.started", "x", "engine.stopped"]


def test_a_writer_opened_while_the_engine_lived_replays_its_log_before_writing(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("intent A", {})
    store.flush()  # durable; the driver was called
    operator = Store(db)  # opened while the engine lives: nothing replayed at open
    assert operator.recovered == 0
    _crash(store)
    operator.append("operator.pause", {"reason": "r", "step": None}, actor="ann", run_id="R1", subject="R1")
    assert _recorded(operator) == ["intent A", "journal.recovered", "operator.pause"]
    operator.close()
    assert verify(db).ok


def test_a_claim_after_the_engine_died_replays_its_log_first(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("intent A", {})
    store.flush()
    successor = Store(db)  # e.g. `cellwright resume` opened just before the crash
    _crash(store)
    successor.claim()
    assert successor.recovered == 1
    successor.group_commits(True)
    Journal(successor).note("new engine", {})
    successor.close()
    assert _kinds(db) == ["intent A", "journal.recovered", "new engine"]
    assert verify(db).ok


def test_a_log_that_parted_from_the_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("committed", {})
    store.on_idle(real_wait=True)
    journal.note("durable", {})
    store.flush()
    _crash(store)
    redo_log = Path(str(db) + "-redo").read_text()
    Store(db).close()  # replays "durable"
    with sqlite3.connect(db) as conn:  # a different history at seq 2 (e.g. a restored backup)
        conn.execute("UPDATE events SET hash = CASE WHEN substr(hash, 1, 1) = 'f' THEN 'e' ELSE 'f' END"
                     " || substr(hash, 2) WHERE kind = 'durable'")  # always a different first digit
    Path(str(db) + "-redo").write_text(redo_log)
    with pytest.raises(StoreError, match="parted"):
        Store(db)


class _DiskFullAtCommit:
    """A connection whose COMMIT fails as on a full disk (everything else passes through)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        object.__setattr__(self, "_conn", conn)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._conn, name, value)

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)


def test_a_replay_whose_commit_fails_keeps_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the database while the disk is still full must not lose the redo log's events."""
    db = tmp_path / "g.db"
    store, journal = _grouped(db)
    journal.note("committed", {})
    store.on_idle(real_wait=True)
    journal.note("durable 1", {})
    journal.note("durable 2", {})
    store.flush()
    _crash(store)
    redo_path = Path(str(db) + "-redo")
    logged = redo_path.read_bytes()

    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: _DiskFullAtCommit(connect(*a, **k)))
    with pytest.raises(StoreError, match="disk is full"):
        Store(db)
    assert redo_path.read_bytes() == logged  # still there, whole
    monkeypatch.setattr(sqlite3, "connect", connect)

    again = Store(db)  # space again: the replay happens now
    assert again.recovered == 2
    again.close()
    assert _kinds(db) == ["committed", "durable 1", "durable 2", "journal.recovered"]
    assert verify(db).ok
