"""The iPSC protocol on workcells whose incubator is pylabrobot's unmodified Cytomat
backend talking to the wire emulator, and whose liquid handler is the Opentrons HTTP
driver (against its emulator) or a pylabrobot STAR backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.runner import run_protocol
from orchestrator.store import Store

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("workcell", ["emulated-ipsc.yaml", "plr-ipsc.yaml"])
def test_ipsc_protocol_on_emulated_instruments(tmp_path, workcell):
    db = tmp_path / "e.db"
    result = run_protocol(ROOT / "protocols" / "ipsc-maintenance.yaml", workcell=ROOT / "examples" / "workcells" / workcell,
                          overrides={"days": "2"}, db=db)
    s = result.summary
    assert s["status"] == "completed", s["error"]
    assert s["actions"]["confluence"] == 2 and s["actions"]["exchange_medium"] == 2
    conf = [m["values"]["mean"] for m in s["measurements"] if m["name"] == "confluence"]
    assert conf[1] > conf[0]  # cells grew while the emulated Cytomat held the plate
    store = Store(db)
    identities = {e["subject"]: e["payload"] for e in store.events() if e["kind"] == "instrument.identity"}
    store.close()
    assert '"mode":"emulator"' in identities["incubator"] and "simulators" not in identities["incubator"]
