"""The conformance suite against every built-in driver, the six simulators, and a broken driver."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from drivers.base import CellCounter
from drivers.clock import Clock
from drivers.labware import Plate
from drivers.results import CellCount, Identity, InstrumentStatus
from drivers.spec import DriverConfig, DriverSpec
from drivers.testing import run_conformance

CASES = [
    ("sim.liquid_handler", "simulator", None),
    ("sim.incubator", "simulator", None),
    ("sim.plate_reader", "simulator", None),
    ("sim.imager", "simulator", None),
    ("sim.cell_counter", "simulator", None),
    ("sim.plate_mover", "simulator", None),
    ("serial.cc1_counter", "emulator", {"read_timeout_s": 0.5}),
    ("serial.cc1_counter", "emulator", {"read_timeout_s": 0.5, "emulator": {"transport": "tcp"}}),
    ("serial.cc1_counter", "simulator", None),
    ("plr.cytomat", "emulator", {"emulator": {"move_s": 6, "init_s": 2}, "action_timeout_s": 60}),
    ("plr.cytomat", "simulator", None),
    ("plr.incubator", "real", {"backend": "chatterbox"}),
    ("plr.liquid_handler", "real", {"backend": "chatterbox"}),
    ("plr.liquid_handler", "emulator", {"backend": "star"}),
    ("plr.liquid_handler", "emulator", {"backend": "ot2"}),
    ("plr.liquid_handler", "simulator", None),
    ("plr.plate_reader", "real", {"backend": "chatterbox"}),
    ("plr.plate_reader", "emulator", {}),
    ("plr.plate_reader", "simulator", None),
    ("opentrons.ot2", "emulator", {"poll_s": 10}),
    ("opentrons.ot2", "simulator", None),
]


@pytest.mark.parametrize("name, mode, config", CASES, ids=[f"{n}-{m}-{i}" for i, (n, m, _) in enumerate(CASES)])
def test_builtin_driver_conforms(name, mode, config):
    report = run_conformance(name, mode, config)
    assert report.ok, report.summary()
    passed = {c.name for c in report.checks if c.status == "pass"}
    assert {"spec", "before_connect", "connect", "main_action", "timeout", "disconnect"} <= passed, report.summary()
    if mode == "emulator" and name != "plr.liquid_handler" and name != "plr.plate_reader":
        assert {"wire_fault", "error_reset"} <= passed, report.summary()


# -- a driver that breaks the contract on purpose -----------------------------------------------

class BrokenCounter(CellCounter):
    """Every classic mistake: no StateError before connect, connect not idempotent, a dict
    instead of a CellCount, time.sleep-free but clock-free (no duration), stays busy."""

    def __init__(self, name: str, clock: Clock) -> None:
        super().__init__(name, clock)
        self.connected = False

    async def connect(self) -> None:
        if self.connected:
            raise RuntimeError("already connected")
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False

    async def identify(self) -> Identity:
        return Identity("", "", "")

    async def status(self) -> InstrumentStatus:
        return InstrumentStatus("ready")

    async def abort(self) -> None:
        pass

    async def reset_error(self) -> None:
        pass

    async def count(self, plate: Plate) -> CellCount:
        return {"viable": 1}  # type: ignore[return-value]


BROKEN = DriverSpec(name="test.broken_counter", instrument_class=CellCounter, config_model=DriverConfig,
                    create=lambda c, ctx: BrokenCounter(ctx.name, ctx.clock),
                    create_simulator=lambda c, ctx: BrokenCounter(ctx.name, ctx.clock),
                    description="deliberately broken")


def test_a_broken_driver_fails_the_suite():
    report = run_conformance("test.broken_counter", spec=BROKEN)
    assert not report.ok
    failed = {c.name for c in report.failed()}
    assert {"before_connect", "connect", "identify", "status", "main_action", "disconnect"} <= failed, report.summary()
    assert "not 'offline'" in report.summary() or "expected 'offline'" in report.summary()


def test_a_spec_that_does_not_build_fails_early():
    bad = DriverSpec(name="test.bad", instrument_class=CellCounter, config_model=DriverConfig,
                     create="nowhere:nothing", create_simulator="nowhere:nothing", description="x")
    report = run_conformance("test.bad", spec=bad)
    assert [c.name for c in report.checks] == ["spec"] and not report.ok


def test_report_forms():
    report = run_conformance("sim.cell_counter")
    data = report.to_dict()
    assert data["ok"] and data["instrument_class"] == "cell_counter"
    assert report.summary().splitlines()[0] == "sim.cell_counter (simulator, cell_counter): PASS"


def test_pytest_plugin(tmp_path):
    (tmp_path / "test_nothing.py").write_text("def test_ok():\n    pass\n")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "drivers.testing.plugin", "--driver", "sim.cell_counter",
         "--driver-mode", "simulator", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 passed, 1 skipped" in result.stdout
