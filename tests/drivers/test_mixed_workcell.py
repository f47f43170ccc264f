"""A workcell of behavioural simulators plus real drivers on emulators: one culture, one truth.

The plate goes incubator (pylabrobot Cytomat on its emulator) -> mover (simulator) ->
liquid handler (OT-2 HTTP driver on the loopback robot) -> mover -> counter (CC-1 on
its emulator), and every location and culture change is the shared model's.
"""

from __future__ import annotations

from drivers.spec import DriverContext, get_driver


def test_plate_journey_across_emulated_and_simulated_instruments(plate, vclock):
    shared: dict = {}

    def make(name, driver, mode, config=None):
        spec = get_driver(driver)
        return spec.build(mode, spec.parse_config(config or {}), DriverContext(name, vclock, 3, shared))

    incubator = make("incubator", "plr.cytomat", "emulator", {"emulator": {"move_s": 20, "init_s": 2}})
    mover = make("mover", "sim.plate_mover", "simulator")
    lh = make("lh", "opentrons.ot2", "emulator", {"poll_s": 15})
    counter = make("counter", "serial.cc1_counter", "emulator", {"read_timeout_s": 0.5})
    culture = shared["culture"]

    async def main():
        for inst in (incubator, mover, lh, counter):
            await inst.connect()
        slot = await incubator.check_in(plate)
        await incubator.fetch(plate)
        await mover.transfer(plate, "incubator", "lh")
        await lh.seed(plate, 1.3e4, 1500)
        await mover.transfer(plate, "lh", "incubator")
        await incubator.store(plate)
        await vclock.sleep(3 * 86400)  # three days in the incubator at 37 °C
        await incubator.fetch(plate)
        await mover.transfer(plate, "incubator", "counter")
        count = await counter.count(plate)
        statuses = [await i.status() for i in (incubator, mover, lh, counter)]
        for inst in (incubator, mover, lh, counter):
            await inst.disconnect()
        return slot, count, statuses

    slot, count, statuses = vclock.run(main)
    assert slot == 1 and culture.locations.site_of(plate.id) == "counter"
    snap = culture.snapshot(plate)
    assert snap["phase"] == "attached" and snap["viable"] > 6 * 1.3e4  # grew over three days
    assert count.viable_per_ml > 0 and 0.5 < count.viability <= 1  # the emulator counted the culture's cells
    assert [s.state for s in statuses] == ["idle"] * 4 and statuses[3].plates == ("P1",)
    assert incubator.emulator.state.transfer is False  # the plate left the transfer station on the mover


def test_example_workcells_validate_and_build(vclock):
    from pathlib import Path

    from orchestrator.workcell import load_workcell

    root = Path(__file__).resolve().parents[2] / "examples" / "workcells"
    for name in ("emulated-ipsc.yaml", "plr-ipsc.yaml"):
        cell = load_workcell(root / name)
        shared: dict = {}
        built = {n: i.driver.build(i.mode, i.config, DriverContext(n, vclock, 0, shared))
                 for n, i in cell.instruments.items()}
        assert {i.mode for i in cell.instruments.values()} >= {"emulator", "simulator"}
        assert built["incubator"].instrument_class == "incubator" and "culture" in shared
