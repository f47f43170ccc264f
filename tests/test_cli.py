"""The `cellwright` command as a user meets it: exit codes, located errors, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "protocol" / "bad"
OP = {"CELLWRIGHT_OPERATOR": "tester"}  # `run` records who started it


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CELLWRIGHT")}
    base["XDG_CONFIG_HOME"] = str(cwd / "no-config")  # the user's own config never leaks in
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120, env={**base, **(env or {})})


@pytest.mark.parametrize("bad", sorted(p.name for p in BAD.glob("*.yaml")))
def test_validate_bad_protocols_exit_2_located_no_traceback(bad, tmp_path):
    out = cli("validate", str(BAD / bad), cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    first = out.stderr.splitlines()[0]
    path, line, col, _ = first.split(":", 3)
    assert path.endswith(".yaml") and line.isdigit() and col.isdigit()


def test_validate_good_protocol(tmp_path):
    out = cli("validate", str(ROOT / "protocols" / "ipsc-maintenance.yaml"), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["valid"] is True


def test_bad_override_and_bad_workcell(tmp_path):
    out = cli("validate", str(ROOT / "protocols" / "ipsc-maintenance.yaml"), "-p", "days=abc", cwd=tmp_path)
    assert out.returncode == 2 and "days" in out.stderr and "Traceback" not in out.stderr
    wc = tmp_path / "wc.yaml"
    wc.write_text("workcell: x\ninstruments:\n  lh: {class: liquid_handler, driver: sim.liquid_handlr}\n")
    out = cli("validate", str(ROOT / "protocols" / "ipsc-maintenance.yaml"), "--workcell", str(wc), cwd=tmp_path)
    assert out.returncode == 2
    assert f"{wc}:3:" in out.stderr and "did you mean sim.liquid_handler" in out.stderr
    assert "needs an incubator" in out.stderr


def test_run_json_summary_fields(tmp_path):
    out = cli("run", str(ROOT / "protocols" / "ipsc-maintenance.yaml"), "-p", "days=3", "--db", "r.db", "--json",
              cwd=tmp_path, env=OP)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    for field in ("status", "steps_done", "steps_failed", "sim_seconds", "wall_seconds", "qc", "measurements"):
        assert field in summary
    assert summary["status"] == "completed"
    assert (tmp_path / "r.db").exists() and Path(tmp_path / summary["log"]).exists()


def test_operator_commands_need_identity(tmp_path):
    cli("run", str(ROOT / "protocols" / "ipsc-maintenance.yaml"), "-p", "days=1", "--db", "r.db", "--json",
        cwd=tmp_path, env=OP)
    out = cli("pause", "R0001", "--db", "r.db", cwd=tmp_path)
    assert out.returncode == 2 and "anonymous" in out.stderr
    out = cli("abort", "R0001", "--db", "r.db", "--reason", "x", cwd=tmp_path, env={"CELLWRIGHT_OPERATOR": "alice"})
    assert out.returncode == 2 and "completed" in out.stderr  # a finished run cannot be changed


def test_status_and_missing_db(tmp_path):
    out = cli("status", "--db", "nope.db", cwd=tmp_path)
    assert out.returncode == 2 and "no such database" in out.stderr
    cli("run", str(ROOT / "protocols" / "ipsc-maintenance.yaml"), "-p", "days=1", "--db", "r.db", "--json",
        cwd=tmp_path, env=OP)
    out = cli("status", "--db", "r.db", "--json", cwd=tmp_path)
    assert json.loads(out.stdout)[0]["status"] == "completed"


def test_drivers_listing(tmp_path):
    out = cli("drivers", "--json", cwd=tmp_path)
    names = {d["name"]: d for d in json.loads(out.stdout)}
    for cls in ("liquid_handler", "incubator", "plate_reader", "imager", "cell_counter", "plate_mover"):
        assert names[f"sim.{cls}"]["class"] == cls and names[f"sim.{cls}"]["simulator"]


def test_opentrons_protocol_steps_are_simulated_at_validate_time(tmp_path):
    workcell = ROOT / "examples" / "workcells" / "emulated-ipsc.yaml"
    good = ROOT / "examples" / "protocols" / "outside-ot2-protocol.yaml"
    out = cli("validate", str(good), "--workcell", str(workcell), cwd=ROOT)
    assert out.returncode == 0, out.stderr
    broken = tmp_path / "broken_ot.py"
    broken.write_text('metadata = {"apiLevel": "2.15"}\n\ndef run(ctx):\n'
                      '    plate = ctx.load_labware("corning_96_wellplate_360ul_flat", 1)\n'
                      '    pipette = ctx.load_instrument("p300_single_gen2", "left")\n'
                      '    pipette.aspirate(100, plate["A1"])  # no tip picked up\n')
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("tests/drivers/data/serial_dilution.py", str(broken)))
    out = cli("validate", str(bad), "--workcell", str(workcell), cwd=ROOT)
    assert out.returncode == 2
    assert f"{bad}:9:5: step dilution on lh1: opentrons.simulate:" in out.stderr
    assert "TipNotAttachedError" in out.stderr and "Traceback" not in out.stderr


def test_drivers_check(tmp_path):
    out = cli("drivers", "check", "sim.imager", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] is True and len(report["checks"]) >= 5
    out = cli("drivers", "check", "sim.imagr", cwd=tmp_path)
    assert out.returncode == 2 and "did you mean sim.imager" in out.stderr


def test_audit_verify_and_report(tmp_path):
    import sqlite3

    cli("run", str(ROOT / "protocols" / "ipsc-maintenance.yaml"), "-p", "days=2", "--db", "r.db", "--json",
        cwd=tmp_path, env=OP)
    out = cli("audit", "verify", "--db", "r.db", cwd=tmp_path)
    assert out.returncode == 0 and "OK" in out.stdout
    out = cli("report", "R0001", "--db", "r.db", "--out", "rep", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "rep" / "R0001-batch-record.html").read_text()
    assert "R0001" in html and "http://" not in html and "https://" not in html
    conn = sqlite3.connect(tmp_path / "r.db")
    conn.execute("UPDATE measurements SET value = value * 2 WHERE id = 1")
    conn.commit()
    conn.close()
    out = cli("audit", "verify", "--db", "r.db", cwd=tmp_path)
    assert out.returncode == 1 and "measurements" in out.stdout
    out = cli("report", "R9999", "--db", "r.db", cwd=tmp_path)
    assert out.returncode == 2 and "no run" in out.stderr


def test_one_engine_per_database(tmp_path):
    from orchestrator.store import Store

    db = tmp_path / "busy.db"
    protocol = str(ROOT / "protocols" / "ipsc-maintenance.yaml")
    first = cli("run", protocol, "-p", "days=2", "--db", str(db), "--json", cwd=tmp_path, env=OP)
    assert first.returncode == 0, first.stderr
    engine = Store(db)
    engine.claim()  # as a running engine does
    try:
        env = {"CELLWRIGHT_OPERATOR": "ann"}
        for args in (("run", protocol, "-p", "days=2"), ("resume", "R0001")):
            out = cli(*args, "--db", str(db), cwd=tmp_path, env=env)
            assert out.returncode == 1, out.stdout + out.stderr
            assert "another cellwright engine is running on" in out.stderr and "Traceback" not in out.stderr
        other = Store(tmp_path / "busy.db")
        with pytest.raises(Exception, match="another cellwright engine"):
            other.claim()
        other.close()
        assert len(engine.runs()) == 1  # nothing was recorded
    finally:
        engine.close()
