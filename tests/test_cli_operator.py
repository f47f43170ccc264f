"""The operator's side of `cellwright`: identity, reasons, pause, confirm, status after a crash."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from orchestrator.store import Store

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = str(ROOT / "protocols" / "ipsc-maintenance.yaml")
TASK = ("protocol: task-demo\nversion: 1.0.0\ntitle: operator task\n"
        "labware:\n  plate: {model: corning_6_wellplate, cell_type: ipsc}\n"
        "steps:\n  - id: load_matrigel\n    ask: Coat the plate with Matrigel and load it\n"
        "  - id: seed\n    do: liquid_handler.seed\n    with: {plate: plate, cells_per_well: 1.3e4, volume_ul: 2000}\n")
ANN = {"CELLWRIGHT_OPERATOR": "ann"}


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CELLWRIGHT")}
    base["XDG_CONFIG_HOME"] = str(cwd / "no-config")  # the user's own config never leaks in
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd, text=True, check=False,
                          capture_output=True, timeout=120, env={**base, **(env or {})})


def cw(*args: str, cwd: Path, env: dict[str, str] | None = None) -> SimpleNamespace:
    """Like :func:`cli`, in this process (fast) for the commands that start no engine."""
    from typer.testing import CliRunner

    from orchestrator import cli_records, cli_runs  # noqa: F401  (register their commands)
    from orchestrator.cli_common import app

    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CELLWRIGHT")}
    here = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), env={**unset, "XDG_CONFIG_HOME": str(cwd / "no-config"),
                                                          **(env or {})})
    finally:
        os.chdir(here)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback: never acceptable
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def task_run(tmp: Path) -> Path:
    """A run paused at an operator task (``load_matrigel``, awaiting a person)."""
    (tmp / "task.yaml").write_text(TASK)
    out = cli("run", "task.yaml", "--db", "t.db", "--json", cwd=tmp, env=ANN)
    assert out.returncode == 4, out.stderr
    return tmp / "t.db"


def crashed(tmp: Path, point: str, replay: bool = True) -> Path:
    """A run killed right after the intent of ``point`` (e.g. ``step.running@image:1``); with
    ``replay`` the redo log is applied, so the database shows the run ``running``."""
    out = cli("run", PROTOCOL, "-p", "days=2", "--db", "c.db", "--json", cwd=tmp,
              env={**ANN, "CELLWRIGHT_CRASH_AFTER": point})
    assert out.returncode == 137, out.stderr
    if replay:
        Store(tmp / "c.db").close()
    return tmp / "c.db"


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def step_status(db: Path, key: str) -> str:
    return rows(db, f"SELECT status FROM steps WHERE key = '{key}'")[0][0]


# -- identity ---------------------------------------------------------------------------

def test_run_refuses_anonymous_and_blank_identities(tmp_path):
    for args, env in ((), {"USER": "mallory"}), (("--operator", "   "), ANN), ((), {"CELLWRIGHT_OPERATOR": "  "}):
        out = cli("run", PROTOCOL, "-p", "days=1", "--db", "r.db", *args, cwd=tmp_path, env=env)
        assert out.returncode == 2, (args, env, out.stderr)
        assert "anonymous" in out.stderr and "Traceback" not in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "var").exists()  # nothing was started


def test_identity_from_option_env_or_config_file(tmp_path):
    (tmp_path / "cellwright.toml").write_text('operator = "carol"\n')
    assert cli("run", PROTOCOL, "-p", "days=1", "--db", "r.db", cwd=tmp_path).returncode == 0
    assert cli("run", PROTOCOL, "-p", "days=1", "--db", "r.db", cwd=tmp_path, env=ANN).returncode == 0
    assert cli("run", PROTOCOL, "-p", "days=1", "--db", "r.db", "--operator", " bob ", cwd=tmp_path,
               env=ANN).returncode == 0
    assert [r[0] for r in rows(tmp_path / "r.db", "SELECT operator FROM runs ORDER BY run_id")] == ["carol", "ann", "bob"]
    (tmp_path / "cellwright.toml").unlink()
    user = tmp_path / "no-config" / "cellwright"
    user.mkdir(parents=True)
    (user / "config.toml").write_text('operator = "dave"\n')
    db = task_run(tmp_path)
    out = cw("abort", "R0001", "--db", str(db), "--reason", "no matrigel", cwd=tmp_path)
    assert out.returncode == 0 and "recorded by dave" in out.stdout, out.stderr
    (user / "config.toml").write_text("operator = [\n")
    out = cw("pause", "R0001", "--db", str(db), cwd=tmp_path)
    assert out.returncode == 2 and "config.toml" in out.stderr and "Traceback" not in out.stderr


# -- reasons ----------------------------------------------------------------------------

def test_blank_reason_is_missing_and_reasons_are_stripped(tmp_path):
    db = task_run(tmp_path)
    out = cw("abort", "R0001", "--db", str(db), "--reason", "   ", cwd=tmp_path, env=ANN)
    assert out.returncode == 2 and "needs --reason" in out.stderr
    out = cw("confirm", "R0001", "load_matrigel", "--done", "--reason", " \t", "--db", str(db), cwd=tmp_path, env=ANN)
    assert out.returncode == 2 and "needs --reason" in out.stderr
    assert rows(db, "SELECT * FROM operator_actions") == []  # nothing was recorded
    out = cw("confirm", "R0001", "load_matrigel", "--done", "--reason", "  coated  ", "--db", str(db), cwd=tmp_path,
              env=ANN)
    assert out.returncode == 0, out.stderr
    assert rows(db, "SELECT reason FROM operator_actions") == [("coated",)]


# -- confirm ----------------------------------------------------------------------------

def test_confirm_refuses_steps_no_decision_applies_to(tmp_path):
    db = crashed(tmp_path, "step.running@image:1")
    assert step_status(db, "day[0].image") == "running" and step_status(db, "move0001.check_in") == "done"
    out = cw("confirm", "R0001", "move0001.check_in", "--redo", "--reason", "x", "--db", str(db), cwd=tmp_path, env=ANN)
    assert out.returncode == 2 and "is done, not in doubt" in out.stderr
    out = cw("confirm", "R0001", "day[0].image", "--done", "--reason", "x", "--db", str(db), cwd=tmp_path, env=ANN)
    assert out.returncode == 2 and "does it again" in out.stderr  # repeatable: resume redoes it by itself
    assert rows(db, "SELECT * FROM operator_actions") == []
    (tmp_path / "feed").mkdir()
    db = crashed(tmp_path / "feed", "step.running@feed:1")
    out = cw("confirm", "R0001", "day[0].feed", "--redo", "--reason", "no fresh medium", "--db", str(db),
              cwd=tmp_path, env=ANN)
    assert out.returncode == 0, out.stderr  # an operator-class step in doubt: what confirm is for
    assert rows(db, "SELECT action, step_key FROM operator_actions") == [("confirm:redo", "day[0].feed")]


def test_confirm_refuses_a_step_a_live_engine_is_running(tmp_path):
    db = crashed(tmp_path, "step.running@feed:1")
    engine = Store(db)
    engine.claim()
    try:
        out = cw("confirm", "R0001", "day[0].feed", "--done", "--reason", "x", "--db", str(db), cwd=tmp_path, env=ANN)
        assert out.returncode == 2 and "in progress" in out.stderr
    finally:
        engine.close()
    assert rows(db, "SELECT * FROM operator_actions") == []


def test_operator_task_takes_done_or_skip_then_resumes(tmp_path):
    db = task_run(tmp_path)
    out = cw("confirm", "R0001", "load_matrigel", "--redo", "--reason", "x", "--db", str(db), cwd=tmp_path, env=ANN)
    assert out.returncode == 2 and "--done or --skip" in out.stderr
    out = cw("confirm", "R0001", "load_matrigel", "--done", "--reason", "coated", "--db", str(db), cwd=tmp_path,
              env=ANN)
    assert out.returncode == 0, out.stderr
    out = cli("resume", "R0001", "--db", str(db), "--json", cwd=tmp_path, env=ANN)
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "completed", out.stderr


# -- pause ------------------------------------------------------------------------------

def test_pause_refuses_a_paused_run_and_a_second_request(tmp_path):
    db = task_run(tmp_path)
    out = cw("pause", "R0001", "--db", str(db), cwd=tmp_path, env=ANN)
    assert out.returncode == 2 and "already paused" in out.stderr and "cellwright resume R0001" in out.stderr
    assert rows(db, "SELECT * FROM operator_actions") == []
    (tmp_path / "c").mkdir()
    db = crashed(tmp_path / "c", "step.running@image:1")
    out = cw("pause", "R0001", "--db", str(db), "--reason", "  hood needed ", cwd=tmp_path, env=ANN)
    assert out.returncode == 0, out.stderr
    out = cw("pause", "R0001", "--db", str(db), cwd=tmp_path, env={"CELLWRIGHT_OPERATOR": "bob"})
    assert out.returncode == 2 and "already requested by ann" in out.stderr
    assert rows(db, "SELECT action, operator, reason FROM operator_actions") == [("pause", "ann", "hood needed")]


# -- status -----------------------------------------------------------------------------

def test_status_says_what_resume_does_with_each_step_in_doubt(tmp_path):
    expected = {"step.running@image:1": ("day[0].image", "repeatable: `cellwright resume R0001` does it again"),
                "step.running@fetch:2": ("move0008.fetch", "`cellwright resume R0001` asks incubator whether"),
                "step.running@feed:1": ("day[0].feed", "check the plate, then: cellwright confirm R0001 'day[0].feed'")}
    for point, (key, hint) in expected.items():
        work = tmp_path / point.replace("@", "-").replace(":", "-")
        work.mkdir()
        db = crashed(work, point)
        out = cw("status", "R0001", "--db", str(db), cwd=work)
        assert out.returncode == 0, out.stderr
        lines = [line for line in out.stdout.splitlines() if line.startswith("in doubt:")]
        assert len(lines) == 1 and lines[0].startswith(f"in doubt: {key} — {hint}"), out.stdout
        assert ("confirm" in lines[0]) == point.endswith("feed:1")
        assert json.loads(cw("status", "R0001", "--db", str(db), "--json", cwd=work).stdout)["in_doubt"] == [key]


def test_status_shows_nothing_in_doubt_for_a_finished_run(tmp_path):
    db = task_run(tmp_path)
    out = cw("status", "R0001", "--db", str(db), cwd=tmp_path)
    assert "waiting for a person: load_matrigel — when it is done: cellwright confirm R0001 'load_matrigel' " \
           "--done|--skip" in out.stdout
    assert cw("abort", "R0001", "--db", str(db), "--reason", "no matrigel", cwd=tmp_path, env=ANN).returncode == 0
    assert cli("resume", "R0001", "--db", str(db), cwd=tmp_path, env=ANN).returncode == 1
    assert step_status(db, "load_matrigel") == "awaiting_operator"  # left as it was by the abort
    out = cw("status", "R0001", "--db", str(db), cwd=tmp_path)
    assert out.returncode == 0 and "aborted" in out.stdout
    assert "load_matrigel" not in out.stdout and "confirm" not in out.stdout
    assert json.loads(cw("status", "R0001", "--db", str(db), "--json", cwd=tmp_path).stdout)["in_doubt"] == []


def test_status_names_a_run_no_engine_is_running(tmp_path):
    db = crashed(tmp_path, "step.running@image:1")
    out = cw("status", "R0001", "--db", str(db), cwd=tmp_path)
    assert "running — no engine is running on this database (crashed?)" in " ".join(out.stdout.split())
    assert "cellwright resume R0001" in out.stdout and "in doubt: day[0].image" in out.stdout
    out = cw("status", "--db", str(db), cwd=tmp_path)
    assert "crashed?" in out.stdout and f"continue with `cellwright resume --db {db}`" in out.stdout
    assert json.loads(cw("status", "--db", str(db), "--json", cwd=tmp_path).stdout)[0]["engine_running"] is False
    engine = Store(db)
    engine.claim()  # as a running engine does
    try:
        out = cw("status", "R0001", "--db", str(db), cwd=tmp_path)
        listing = cw("status", "--db", str(db), "--json", cwd=tmp_path)
    finally:
        engine.close()
    assert out.returncode == 0 and "running" in out.stdout
    assert "crashed" not in out.stdout and "in doubt" not in out.stdout  # its steps are in progress
    assert json.loads(listing.stdout)[0]["engine_running"] is True


# -- status: read-only -----------------------------------------------------------------

def snapshot(folder: Path) -> dict[str, str]:
    """Every file's hash, less the content of ``-shm`` (SQLite's shared memory, which readers use)."""
    return {p.name: "" if p.name.endswith("-shm") else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def test_status_reads_without_writing(tmp_path):
    """Nothing is created or changed (so it works on a read-only filesystem), not even by a
    crashed engine's redo log, which status reports instead of replaying."""
    out = cli("run", PROTOCOL, "-p", "days=1", "--db", "r.db", cwd=tmp_path, env=ANN)
    assert out.returncode == 0, out.stderr
    (tmp_path / "c").mkdir()
    crashed(tmp_path / "c", "step.running@image:1", replay=False)
    for folder, db in ((tmp_path, "r.db"), (tmp_path / "c", "c.db")):
        before = snapshot(folder)
        for args in (("status",), ("status", "R0001"), ("status", "--json"), ("status", "R0001", "--json")):
            out = cw(*args, "--db", db, cwd=folder)
            assert out.returncode == 0, out.stderr
        assert snapshot(folder) == before
    out = cw("status", "R0001", "--db", "c.db", cwd=tmp_path / "c")
    assert "a crashed engine left events in c.db-redo" in out.stderr


# -- audit ------------------------------------------------------------------------------

def test_expect_head_must_be_a_hash(tmp_path):
    assert cli("run", PROTOCOL, "-p", "days=1", "--db", "r.db", cwd=tmp_path, env=ANN).returncode == 0
    head = json.loads(cw("audit", "verify", "--db", "r.db", "--json", cwd=tmp_path).stdout)["head"]
    for bad in ("zzz", head[:-1], f"x:{head}", "", f"{head}0"):
        out = cw("audit", "verify", "--db", "r.db", "--expect-head", bad, cwd=tmp_path)
        assert out.returncode == 2 and "64 hex digits" in out.stderr, bad
    assert cw("audit", "verify", "--db", "r.db", "--expect-head", head.upper(), cwd=tmp_path).returncode == 0
    assert cw("audit", "verify", "--db", "r.db", "--expect-head", f"1:{'0' * 64}", cwd=tmp_path).returncode == 1
