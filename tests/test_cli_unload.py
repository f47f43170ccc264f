"""`cellwright unload`: a person took a plate off the workcell."""

from __future__ import annotations

from tests.test_cli import ROOT, cli


def test_unload_records_who_and_why_and_refuses_bad_requests(tmp_path):
    out = cli("run", str(ROOT / "protocols" / "ipsc-maintenance.yaml"), "-p", "days=1", "--db", "r.db",
              "--operator", "alice", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for args, expected in ((["R0001.plate"], "anonymous"),
                           (["R0001.plate", "--operator", "alice"], "needs --reason"),
                           (["R0001.plate", "--operator", "alice", "--reason", "  "], "needs --reason"),
                           (["R9.plate", "--operator", "alice", "--reason", "x"], "no plate 'R9.plate'")):
        out = cli("unload", *args, "--db", "r.db", cwd=tmp_path)
        assert out.returncode == 2 and expected in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
    out = cli("unload", "R0001.plate", "--operator", "alice", "--reason", "to the freezer", "--db", "r.db",
              cwd=tmp_path)
    assert out.returncode == 0 and "unloaded from incubator:slot" in out.stdout, out.stderr
    out = cli("unload", "R0001.plate", "--operator", "alice", "--reason", "again", "--db", "r.db", cwd=tmp_path)
    assert out.returncode == 2 and "already unloaded" in out.stderr
    out = cli("audit", "verify", "--db", "r.db", cwd=tmp_path)
    assert out.returncode == 0, out.stdout
