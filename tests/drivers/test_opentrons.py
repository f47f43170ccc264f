"""opentrons.ot2: preflight with opentrons.simulate, the HTTP driver against the loopback robot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from drivers.errors import ConfigurationError, ConnectionLost, DeviceFault, InstrumentTimeout, StateError, WireProtocolError
from drivers.opentrons import SPEC
from drivers.opentrons.driver import OpentronsConfig
from drivers.opentrons.preflight import estimate_seconds, parse_parameters, preflight
from drivers.spec import DriverContext

DATA = Path(__file__).parent / "data"


def test_outside_protocols_validate_and_simulate():
    dilution = preflight(DATA / "serial_dilution.py")
    exchange = preflight(DATA / "medium_exchange.py")
    assert dilution.ok and exchange.ok, (dilution.errors, exchange.errors)
    assert (dilution.api_level, exchange.api_level) == ("2.18", "2.15")
    assert dilution.commands > 30 and exchange.commands == 24 * 4 + 2 + 24 * 2 + 1
    # 24 wells x (pick 6 + asp 3 + 800/137.35 + disp 2.5 + 800/274.7 + drop 5) + ... + the 30 s delay
    assert 850 < exchange.simulated_duration_s < 1000
    assert any(t.startswith("Delaying") for t in exchange.log)


def test_runtime_parameters_change_the_run():
    short = preflight(DATA / "serial_dilution.py", "columns=3")
    long = preflight(DATA / "serial_dilution.py", {"columns": 12, "transfer_ul": 50.0})
    assert short.ok and long.ok and long.commands > short.commands
    assert long.simulated_duration_s > short.simulated_duration_s
    bad = preflight(DATA / "serial_dilution.py", "columns=40")
    assert not bad.ok and "between" in bad.errors[0]


def test_broken_protocols_are_reported_not_raised(tmp_path):
    (tmp_path / "old.py").write_text("metadata = {'apiLevel': '2.15'}\ndef run(ctx):\n    ctx.load_labware('no_such_labware', 1)\n")
    (tmp_path / "syntax.py").write_text("def run(ctx:\n")
    for name in ("old.py", "syntax.py", "missing.py"):
        report = preflight(tmp_path / name)
        assert not report.ok and report.errors and report.simulated_duration_s == 0


def test_parameter_parsing():
    assert parse_parameters("a=1, b=2.5; c=true, d=text") == {"a": 1, "b": 2.5, "c": True, "d": "text"}
    assert parse_parameters('{"x": [1]}') == {"x": [1]}
    with pytest.raises(ValueError):
        parse_parameters("nonsense")
    log = [{"level": 0, "payload": {"text": "Transferring"}},
           {"level": 1, "payload": {"text": "Aspirating 100.0 uL from A1 at 50.0 uL/sec", "volume": 100}},
           {"level": 0, "payload": {"text": "Delaying for 1 minutes", "minutes": 1, "seconds": 0}}]
    assert estimate_seconds(log)[:2] == (3.0 + 2.0 + 60.0, 2)


def build(vclock, **cfg):
    ctx = DriverContext("ot2", vclock)
    driver = SPEC.build("emulator", SPEC.parse_config({"poll_s": 10, **cfg}), ctx)
    return driver, driver.inner.emulator, ctx.shared["culture"]


def test_run_an_outside_protocol_over_http(vclock):
    drv, em, _ = build(vclock, protocol_dirs=[str(DATA)])

    async def main():
        await drv.connect()
        t0 = vclock.now()
        await drv.run_opentrons_protocol("medium_exchange.py")
        took = vclock.now() - t0
        ident = await drv.identify()
        await drv.disconnect()
        return took, ident

    took, ident = vclock.run(main)
    expected = preflight(DATA / "medium_exchange.py").simulated_duration_s
    assert expected <= took <= expected + 10
    assert ident.model == "OT-2 Standard"
    assert [m for m, p in em.requests] == ["GET", "POST", "POST", "POST", "GET"]
    assert [p.split("/")[1] for _, p in em.requests] == ["health", "protocols", "runs", "runs", "runs"]
    (run,) = em.runs.values()
    assert run.status == "succeeded" and run.actions[0]["actionType"] == "play"


def test_culture_actions_carry_runtime_parameters(plate, vclock):
    drv, em, culture = build(vclock)

    async def main():
        await drv.connect()
        culture.place(plate, "ot2")
        await drv.seed(plate, 1.3e4, 1500)
        await drv.exchange_medium(plate, 1200, medium="mTeSR Plus")
        await drv.disconnect()

    vclock.run(main)
    seed, exchange = em.runs.values()
    assert seed.values == {"operation": "seed", "volume_ul": 1500.0, "wells": 6, "source": 3, "medium": 1,
                           "split_ratio": 1.0}
    assert exchange.values["operation"] == "exchange_medium" and exchange.values["volume_ul"] == 1200.0
    assert len(em.protocols) == 1  # uploaded once, run twice
    assert culture.snapshot(plate)["phase"] == "attached"


def test_robot_side_failures(plate, vclock):
    drv, em, culture = build(vclock)

    async def main():
        await drv.connect()
        culture.place(plate, "ot2")
        em.fail_next_run(0.5, "2001", "tip not picked up")
        with pytest.raises(DeviceFault) as failed:
            await drv.seed(plate, 1e4, 1500)
        assert (await drv.status()).state == "error" and culture.snapshot(plate)["phase"] == "empty"
        await drv.reset_error()
        em.recover_next_run()
        with pytest.raises(DeviceFault) as recovery:
            await drv.seed(plate, 1e4, 1500)
        await drv.reset_error()
        outcome = await drv.action_outcome("seed", {"plate": plate})
        em.http_error_next(500, "4000", "robot server crashed")
        with pytest.raises(DeviceFault) as http:
            await drv.seed(plate, 1e4, 1500)
        em.garble_next()
        with pytest.raises(WireProtocolError) as garbled:
            await drv.seed(plate, 1e4, 1500)
        em.drop_next()
        with pytest.raises(ConnectionLost):
            await drv.seed(plate, 1e4, 1500)
        await drv.seed(plate, 1e4, 1500)  # all of those left the robot usable
        await drv.disconnect()
        return failed.value, recovery.value, outcome, http.value, garbled.value

    failed, recovery, outcome, http, garbled = vclock.run(main)
    assert failed.code == "2001" and "tip not picked up" in failed.detail and not failed.recoverable
    assert recovery.code == "awaiting-recovery" and outcome is False  # the driver stopped that run
    assert http.recoverable and b"robot server crashed" in http.raw
    assert garbled.raw.startswith(b"<html>")
    assert culture.snapshot(plate)["phase"] == "attached"


def test_a_slow_run_times_out_and_is_stopped(plate, vclock):
    drv, em, culture = build(vclock, run_timeout_factor=1.5, run_timeout_margin_s=0)

    async def main():
        await drv.connect()
        culture.place(plate, "ot2")
        em.speed = 3.0  # the robot takes three times the preflight estimate
        with pytest.raises(InstrumentTimeout):
            await drv.seed(plate, 1e4, 1500)
        await drv.disconnect()

    vclock.run(main)
    (run,) = em.runs.values()
    assert run.status == "stopped" and [a["actionType"] for a in run.actions] == ["play", "stop"]


def test_refusals_before_the_robot_is_touched(tmp_path, plate, vclock):
    drv, em, _ = build(vclock, protocol_dirs=[str(tmp_path)])
    (tmp_path / "bad.py").write_text("requirements = {'apiLevel': '2.18'}\ndef run(ctx):\n    ctx.load_labware('nope', 1)\n")

    async def main():
        with pytest.raises(StateError):
            await drv.run_opentrons_protocol("bad.py")  # not connected
        await drv.connect()
        sent = len(em.requests)
        with pytest.raises(StateError, match="fails preflight"):
            await drv.run_opentrons_protocol("bad.py")
        with pytest.raises(ConfigurationError):
            await drv.run_opentrons_protocol("nowhere.py")
        with pytest.raises(ConfigurationError):
            await drv.run_opentrons_protocol("bad.py", "not a parameter list")
        assert len(em.requests) == sent
        await drv.disconnect()

    vclock.run(main)


def test_action_metadata_and_duration(plate, vclock):
    from drivers.actions import actions_of
    from drivers.opentrons.driver import OpentronsLiquidHandler

    info = actions_of(OpentronsLiquidHandler)["run_opentrons_protocol"]
    assert info.recovery == "operator" and [p.name for p in info.params] == ["file", "parameters"]
    drv = SPEC.build("real", OpentronsConfig(protocol_dirs=[str(DATA)]), DriverContext("ot2", vclock))
    assert drv.duration_of("run_opentrons_protocol", file="serial_dilution.py") == \
        preflight(DATA / "serial_dilution.py").simulated_duration_s
    assert drv.duration_of("seed", plate=plate, cells_per_well=1e4, volume_ul=1500) > 60


def test_importing_the_drivers_does_not_import_opentrons():
    code = ("import sys, drivers.opentrons, drivers.plr, drivers.serial_counter, drivers.testing; "
            "from drivers.spec import registry; registry(); "
            "sys.exit(1 if 'opentrons' in sys.modules or 'pylabrobot' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
