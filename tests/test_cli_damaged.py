"""Commands on damaged or foreign database files: a clear error, exit 2, nothing written."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from tests.test_cli import ROOT, cli


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_dropped_table_fails_verify_and_every_command_says_so(tmp_path):
    out = cli("run", str(ROOT / "protocols" / "ipsc-maintenance.yaml"), "-p", "days=1", "--db", "r.db",
              "--operator", "alice", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(tmp_path / "r.db") as conn:
        conn.execute("DROP TABLE measurements")
    conn.close()
    before = _digest(tmp_path / "r.db")
    out = cli("audit", "verify", "--db", "r.db", cwd=tmp_path)
    assert out.returncode == 1 and "table measurements is missing" in out.stdout + out.stderr
    for command in (["status"], ["status", "R0001"], ["report", "R0001", "--out", "rep"],
                    ["pause", "R0001", "--operator", "alice"]):
        out = cli(*command, "--db", "r.db", cwd=tmp_path)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert "table measurements is missing" in out.stderr and "Traceback" not in out.stderr, command
    assert _digest(tmp_path / "r.db") == before and not (tmp_path / "rep").exists()


def test_empty_and_foreign_files_are_not_taken_for_databases(tmp_path):
    (tmp_path / "empty.db").write_bytes(b"")
    for name, version in (("other.db", 0), ("versioned.db", 1)):  # another application's databases
        with sqlite3.connect(tmp_path / name) as conn:
            conn.execute("CREATE TABLE inventory (item TEXT)")
            conn.execute(f"PRAGMA user_version = {version}")
        conn.close()
    run = ["run", str(ROOT / "protocols" / "ipsc-maintenance.yaml"), "-p", "days=1", "--operator", "alice"]
    for name in ("empty.db", "other.db", "versioned.db"):
        before = _digest(tmp_path / name)
        for command in (["status"], ["pause", "R0001", "--operator", "alice"], ["resume", "--operator", "alice"],
                        ["report", "R0001", "--out", "rep"], *([run] if name != "empty.db" else [])):
            out = cli(*command, "--db", name, cwd=tmp_path)
            assert out.returncode == 2, (name, command, out.stdout, out.stderr)
            assert "not a cellwright database" in out.stderr and "Traceback" not in out.stderr, (name, command)
        assert _digest(tmp_path / name) == before
        assert not list(tmp_path.glob(f"{name}-*")), name  # no side files either
    out = cli("audit", "verify", "--db", "empty.db", cwd=tmp_path)
    assert out.returncode == 2 and "not a cellwright database" in out.stderr
