"""`verify`: a clean chain passes; each kind of tampering is found and classified at the right record."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from orchestrator.runner import run_protocol
from orchestrator.store import Journal, Store, StoreError
from orchestrator.store.audit import PROBLEM_KINDS, verify
from orchestrator.store.sqlite import GENESIS, event_hash

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "base.db"
    run_protocol(ROOT / "protocols" / "ipsc-maintenance.yaml", overrides={"days": "2"}, db=path)
    return path


@pytest.fixture
def db(base_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "work.db"
    shutil.copyfile(base_db, path)
    return path


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def _row(conn: sqlite3.Connection, seq: int) -> dict:
    cur = conn.execute("SELECT * FROM events WHERE seq = ?", (seq,))
    return dict(zip([d[0] for d in cur.description], cur.fetchone()))


def _hash(r: dict, seq: int | None = None) -> str:
    return event_hash(r["prev_hash"], r["seq"] if seq is None else seq, r["run_id"], r["kind"], r["subject"],
                      r["actor"], r["sim_time"], r["wall_time"], r["payload"])


def _n(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]


def _first_step_event(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT MIN(seq) FROM events WHERE kind = 'step.done'").fetchone()[0]


def _expect(path: Path, kind: str, seq: int | None) -> None:
    report = verify(path)
    assert not report.ok
    first = report.first_problem
    assert first is not None, report.text()
    assert (first.kind, first.seq) == (kind, seq), report.text()
    assert first.kind in PROBLEM_KINDS
    if seq is not None:
        assert f"seq {seq}" in first.message


# -- clean ---------------------------------------------------------------------------------


def test_clean_database_verifies(base_db: Path) -> None:
    report = verify(base_db)
    assert report.ok, report.text()
    assert report.problems == [] and report.first_problem is None
    conn = sqlite3.connect(base_db)
    n, head = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    assert (report.events, report.head_seq, report.head) == (n, n, head)
    assert report.recorded_head == (n, head)
    assert report.to_dict()["ok"] is True and "OK" in report.text()


def test_verify_takes_a_store_or_a_connection(base_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.db"
    shutil.copyfile(base_db, path)
    store = Store(path)
    try:
        assert verify(store).ok
        assert verify(store.conn).ok
    finally:
        store.close()


def test_verify_never_writes(base_db: Path) -> None:
    before = (hashlib.sha256(base_db.read_bytes()).hexdigest(), os.stat(base_db).st_mtime_ns,
              sorted(os.listdir(base_db.parent)))
    verify(base_db)
    verify(base_db, expect_head="deadbeef")
    after = (hashlib.sha256(base_db.read_bytes()).hexdigest(), os.stat(base_db).st_mtime_ns,
             sorted(os.listdir(base_db.parent)))
    assert before == after  # same bytes, same mtime, no -wal/-shm side files left


def test_verify_reads_a_live_wal_database(tmp_path: Path) -> None:
    store = Store(tmp_path / "live.db")
    journal = Journal(store)
    journal.note("operator.decision", {"step": "x", "choice": "done", "reason": "checked"}, actor="alice")
    try:
        report = verify(tmp_path / "live.db")  # the writer is still open: -wal exists
        assert report.ok and report.events == 1
    finally:
        store.close()


def test_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        verify(tmp_path / "nope.db")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.commit()
    with pytest.raises(StoreError, match="not a cellwright database"):
        verify(other)


# -- the chain -----------------------------------------------------------------------------


def test_changed_payload_value_is_modified(db: Path) -> None:
    with _raw(db) as conn:
        k = _first_step_event(conn)
        r = _row(conn, k)
        payload = json.loads(r["payload"])
        payload["end"] = payload["end"] + 60
        conn.execute("UPDATE events SET payload = ? WHERE seq = ?", (json.dumps(payload, sort_keys=True), k))
    _expect(db, "modified", k)


def test_changed_payload_with_recomputed_hash_is_modified(db: Path) -> None:
    with _raw(db) as conn:
        k = 20
        r = _row(conn, k)
        r["payload"] = r["payload"].replace("}", ',"forged":1}', 1) if r["payload"] != "{}" else '{"forged":1}'
        conn.execute("UPDATE events SET payload = ?, hash = ? WHERE seq = ?", (r["payload"], _hash(r), k))
    _expect(db, "modified", k)


@pytest.mark.parametrize("column, value", [("sim_time", 12345.0), ("actor", "mallory"), ("subject", "other"),
                                           ("wall_time", "2020-01-01T00:00:00+00:00")])
def test_changed_column_is_modified(db: Path, column: str, value: object) -> None:
    with _raw(db) as conn:
        conn.execute(f"UPDATE events SET {column} = ? WHERE seq = 33", (value,))
    _expect(db, "modified", 33)


def test_overwritten_hash_is_modified(db: Path) -> None:
    with _raw(db) as conn:
        conn.execute("UPDATE events SET hash = ? WHERE seq = 12", ("ab" * 32,))
    report = verify(db)
    assert (report.first_problem.kind, report.first_problem.seq) == ("modified", 12)
    assert "stored hash was altered" in report.first_problem.message


def test_newest_record_modified_and_rehashed(db: Path) -> None:
    with _raw(db) as conn:
        n = _n(conn)
        r = _row(conn, n)
        r["actor"] = "mallory"
        conn.execute("UPDATE events SET actor = ?, hash = ? WHERE seq = ?", ("mallory", _hash(r), n))
    _expect(db, "modified", n)


@pytest.mark.parametrize("k", [1, 2, 40])
def test_deleted_record(db: Path, k: int) -> None:
    with _raw(db) as conn:
        conn.execute("DELETE FROM events WHERE seq = ?", (k,))
    _expect(db, "deleted", k)


def test_deleted_record_with_renumbering(db: Path) -> None:
    with _raw(db) as conn:
        conn.execute("DELETE FROM events WHERE seq = 30")
        for (s,) in conn.execute("SELECT seq FROM events WHERE seq > 30 ORDER BY seq").fetchall():
            conn.execute("UPDATE events SET seq = ? WHERE seq = ?", (s - 1, s))
    report = verify(db)
    assert (report.first_problem.kind, report.first_problem.seq) == ("deleted", 30)
    assert "renumbered" in report.first_problem.message
    assert [p.kind for p in report.problems if p.kind != "projection-mismatch"] == ["deleted"]


def _forge(conn: sqlite3.Connection, seq: int, prev: str, valid: bool) -> None:
    r = {**_row(conn, 10), "seq": seq, "prev_hash": prev, "subject": "forged", "payload": '{"from":"a","to":"done"}',
         "kind": "step.done"}
    r["hash"] = _hash(r) if valid else "cd" * 32
    cols = list(r)
    conn.execute(f"INSERT INTO events({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", [r[c] for c in cols])


@pytest.mark.parametrize("valid", [True, False])
def test_record_appended_after_the_head_is_inserted(db: Path, valid: bool) -> None:
    with _raw(db) as conn:
        n = _n(conn)
        _forge(conn, n + 1, _row(conn, n)["hash"], valid)
    _expect(db, "inserted", n + 1)


@pytest.mark.parametrize("valid", [True, False])
@pytest.mark.parametrize("k", [1, 25])
def test_record_inserted_in_the_middle(db: Path, valid: bool, k: int) -> None:
    with _raw(db) as conn:
        prev = _row(conn, k - 1)["hash"] if k > 1 else GENESIS
        for (s,) in conn.execute("SELECT seq FROM events WHERE seq >= ? ORDER BY seq DESC", (k,)).fetchall():
            conn.execute("UPDATE events SET seq = ? WHERE seq = ?", (s + 1, s))
        _forge(conn, k, prev, valid)
    _expect(db, "inserted", k)


def _swap(conn: sqlite3.Connection, a: int, b: int, cols: tuple[str, ...]) -> None:
    ra, rb = _row(conn, a), _row(conn, b)
    sets = ", ".join(f"{c} = ?" for c in cols)
    conn.execute(f"UPDATE events SET {sets} WHERE seq = ?", (*(rb[c] for c in cols), a))
    conn.execute(f"UPDATE events SET {sets} WHERE seq = ?", (*(ra[c] for c in cols), b))


DATA = ("run_id", "kind", "subject", "actor", "sim_time", "wall_time", "payload")


@pytest.mark.parametrize("a, b", [(14, 15), (9, 50), (1, 2)])
@pytest.mark.parametrize("cols", [DATA + ("prev_hash", "hash"), DATA], ids=["whole-records", "contents-only"])
def test_swapped_records_are_reordered(db: Path, a: int, b: int, cols: tuple[str, ...]) -> None:
    with _raw(db) as conn:
        _swap(conn, a, b, cols)
    _expect(db, "reordered", a)
    assert f"seq {b}" in verify(db).first_problem.message


@pytest.mark.parametrize("m", [1, 10])
def test_deleted_newest_events_are_truncation(db: Path, m: int) -> None:
    with _raw(db) as conn:
        n = _n(conn)
        conn.execute("DELETE FROM events WHERE seq > ?", (n - m,))
    _expect(db, "truncated", n - m + 1)


# -- projections ------------------------------------------------------------------------------


def test_measurement_edit_is_a_projection_mismatch(db: Path) -> None:
    with _raw(db) as conn:
        mid, step = conn.execute("SELECT id, step_key FROM measurements WHERE field = 'mean' LIMIT 1").fetchone()
        conn.execute("UPDATE measurements SET value = value + 0.3 WHERE id = ?", (mid,))
    report = verify(db)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["projection-mismatch"]
    msg = report.first_problem.message
    assert f"measurements row id={mid}" in msg and step in msg and "column value" in msg and ".mean" in msg
    assert report.first_problem.seq is not None  # the measurement event


@pytest.mark.parametrize("sql, words", [
    ("UPDATE runs SET status = 'completed', detail = 'fine'", ("runs row R0001", "column")),
    ("UPDATE steps SET status = 'done' WHERE status = 'skipped'", ("steps row", "column status")),
    ("UPDATE steps SET end = end + 1 WHERE key = 'seed'", ("step seed", "column end")),
    ("UPDATE locations SET site = 'reader'", ("locations row", "column site")),
    ("DELETE FROM measurements WHERE id = 1", ("measurements row", "missing from the table")),
    ("INSERT INTO deviations(run_id, step_key, kind, detail, sim_time) VALUES ('R0001', 'x', 'k', 'd', 1)",
     ("deviations row", "no event")),
    ("INSERT INTO verdicts(run_id, step_key, criterion, value, passed, sim_time) VALUES ('R0001','x','v >= 1',2,1,1)",
     ("verdicts row", "no event")),
])
def test_projection_edits(db: Path, sql: str, words: tuple[str, ...]) -> None:
    with _raw(db) as conn:
        conn.execute(sql)
    report = verify(db)
    assert not report.ok
    assert all(p.kind == "projection-mismatch" for p in report.problems)
    assert any(all(w in p.message for w in words) for p in report.problems), report.text()


# -- external head ------------------------------------------------------------------------------


def _rewrite_tail(path: Path, k: int) -> None:
    with _raw(path) as conn:
        prev = _row(conn, k - 1)["hash"]
        for (s,) in conn.execute("SELECT seq FROM events WHERE seq >= ? ORDER BY seq", (k,)).fetchall():
            r = _row(conn, s)
            if s == k:
                r["wall_time"] = "2020-01-01T00:00:00+00:00"
            r["prev_hash"] = prev
            prev = _hash(r)
            conn.execute("UPDATE events SET wall_time = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                         (r["wall_time"], r["prev_hash"], prev, s))
        conn.execute("UPDATE chain_head SET hash = ?", (prev,))


def test_expect_head(base_db: Path, db: Path) -> None:
    clean = verify(base_db)
    assert verify(base_db, expect_head=clean.head).ok
    assert verify(base_db, expect_head=f"{clean.head_seq}:{clean.head}").ok
    with _raw(base_db) as conn:
        earlier = _row(conn, 10)["hash"]
    grown = verify(base_db, expect_head=earlier)
    assert grown.ok and any("appended since" in n for n in grown.notes)
    # a consistent rewrite of the tail (and chain_head) passes on its own: only the external head catches it
    _rewrite_tail(db, 20)
    assert verify(db).ok
    caught = verify(db, expect_head=clean.head)
    assert not caught.ok and caught.first_problem.kind == "modified"
    assert "not the hash of any record" in caught.first_problem.message


def test_expect_head_with_seq_detects_hidden_truncation(base_db: Path, db: Path) -> None:
    clean = verify(base_db)
    with _raw(db) as conn:
        n = _n(conn)
        conn.execute("DELETE FROM events WHERE seq > ?", (n - 1,))
        conn.execute("UPDATE chain_head SET seq = ?, hash = ?", (n - 1, _row(conn, n - 1)["hash"]))
    report = verify(db, expect_head=f"{clean.head_seq}:{clean.head}", projections=False)
    assert (report.first_problem.kind, report.first_problem.seq) == ("truncated", n)
    # Without the external head, the chain alone looks whole; what gives it away is that the
    # last engine session has no recorded stop and no redo log.
    (alone,) = verify(db, projections=False).problems
    assert alone.kind == "deleted" and "engine.stopped" in alone.message


# -- the benchmark's tamperings, one trial each ---------------------------------------------------


def test_tamper_bench_kinds_are_all_classified(base_db: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("cellwright_bench_tamper", ROOT / "bench" / "tamper.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    head = verify(base_db)
    for kind in bench.TAMPERS:
        for k in (1, 7, head.head_seq):
            result = bench.trial((str(base_db), kind, str(tmp_path), k, k, f"{head.head_seq}:{head.head}"))
            assert result["detected"] and result["classified"], result


def test_deleted_chain_head_row(db: Path) -> None:
    with _raw(db) as conn:
        conn.execute("DELETE FROM chain_head")
    report = verify(db)
    assert not report.ok and report.first_problem.kind == "modified" and "chain_head" in report.first_problem.message


def test_a_version_1_database_without_chain_head_is_noted(db: Path) -> None:
    with _raw(db) as conn:  # as the first schema left it
        conn.execute("DROP TABLE chain_head")
        conn.execute("DROP TABLE operator_actions")
        conn.execute("PRAGMA user_version = 1")
    report = verify(db)
    assert report.ok and any("no chain_head table" in n for n in report.notes)


@pytest.mark.parametrize("table", ["chain_head", "runs", "steps", "measurements", "verdicts", "locations",
                                   "operator_actions"])
def test_a_dropped_table_is_found(db: Path, table: str) -> None:
    with _raw(db) as conn:
        conn.execute(f"DROP TABLE {table}")
    report = verify(db)
    assert not report.ok
    assert report.first_problem.kind == "deleted" and f"table {table} is missing" in report.first_problem.message
    with pytest.raises(StoreError, match=f"is damaged: table {table} is missing"):
        Store(db)  # and nothing opens it for writing


def test_a_renamed_table_and_a_reset_version_are_found(db: Path) -> None:
    with _raw(db) as conn:
        conn.execute("ALTER TABLE measurements RENAME TO m2")
    assert "table measurements is missing" in verify(db).first_problem.message
    with _raw(db) as conn:
        conn.execute("ALTER TABLE m2 RENAME TO measurements")
        conn.execute("ALTER TABLE verdicts ADD COLUMN note TEXT")
    problem = verify(db).first_problem
    assert problem.kind == "modified" and "table verdicts has columns" in problem.message
    with _raw(db) as conn:
        conn.execute("ALTER TABLE verdicts DROP COLUMN note")
        conn.execute("PRAGMA user_version = 1")
    problem = verify(db).first_problem
    assert problem.kind == "modified" and "table chain_head of a later version is there" in problem.message  # sorted: the first
    with pytest.raises(StoreError, match="the version was changed"):
        Store(db)  # no migration is applied over it
    with _raw(db) as conn:
        conn.execute("PRAGMA user_version = 3")
    with pytest.raises(StoreError, match="upgrade cellwright"):
        verify(db)
    with _raw(db) as conn:
        conn.execute("PRAGMA user_version = 0")
    assert "schema version (PRAGMA user_version) is 0" in verify(db).first_problem.message
    with pytest.raises(StoreError, match="not a cellwright database"):
        Store(db)  # no migration is applied over it


def test_step_kind_is_checked_when_the_events_carry_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.db")
    # a step event that carries static_key and kind (as the engine may record them)
    store.append("step.ready", {"from": "pending", "to": "ready", "static_key": "day.feed", "kind": "action",
                                "instrument": "lh1"}, actor="engine", run_id="R1", subject="day[0].feed", sim_time=0.0)
    store.close()
    assert verify(tmp_path / "k.db").ok
    with _raw(tmp_path / "k.db") as conn:
        conn.execute("UPDATE steps SET kind = 'transport'")
    report = verify(tmp_path / "k.db")
    assert not report.ok and "column kind" in report.first_problem.message
