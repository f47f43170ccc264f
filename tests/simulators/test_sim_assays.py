"""Measurements through the instruments: ATP, confluence noise, counts, registry specs."""

from __future__ import annotations

import statistics

import pytest
from simkit import HOUR, Workcell, plate, run

from drivers.clock import VirtualClock
from drivers.errors import StateError
from drivers.spec import DriverContext, get_driver
from simulators import assays
from simulators.culture import CultureModel, culture_of


def test_atp_luminescence_proportional_to_viable_cells_and_decays() -> None:
    async def main(clock: VirtualClock) -> tuple[list[float], list[float], float]:
        wc = Workcell(clock, seed=2)
        await wc.connect()
        plates = [plate(f"P{n}", "corning_96_wellplate") for n in range(3)]
        viable, rlu = [], []
        for n, p in enumerate(plates):
            await wc.load_and_seed(p, cells_per_well=2e3 * (n + 1), volume_ul=100)
        await clock.sleep(24 * HOUR)
        for p in plates:
            await wc.to(p, "liquid_handler")
            viable.append(wc.culture.snapshot(p)["viable"] / 96)
            await wc.lh.add_reagent(p, "CellTiter-Glo", 100)
            await wc.to(p, "plate_reader")
            await clock.sleep(600)
            rlu.append((await wc.reader.read(p, "luminescence")).mean)
            await wc.to(p, "incubator:slot")
        await clock.sleep(5 * HOUR)
        await wc.to(plates[0], "plate_reader")
        later = (await wc.reader.read(plates[0], "luminescence")).mean
        assert wc.culture.snapshot(plates[0])["viable"] == 0  # lytic end-point assay
        return viable, rlu, later / rlu[0]

    viable, rlu, decay = run(main)
    per_cell = [(r - assays.LUMINESCENCE_BACKGROUND_RLU) / v for r, v in zip(rlu, viable)]
    assert (
        statistics.pstdev(per_cell) / statistics.fmean(per_cell) < 0.03
    )  # proportional (noise averages over 96 wells)
    assert statistics.fmean(per_cell) == pytest.approx(assays.RLU_PER_CELL, rel=0.05)
    assert decay == pytest.approx(0.5, rel=0.08)  # ~5 h half-life (+ a few minutes of moves)


def test_luminescence_without_reagent_is_background_and_bad_mode() -> None:
    async def main(clock: VirtualClock) -> None:
        c, p = CultureModel(clock), plate()
        c.seed(p, 1e5, 1500)
        reading = assays.read(c, p, "luminescence")
        assert reading.mean < 2 * assays.LUMINESCENCE_BACKGROUND_RLU and reading.unit_name == "RLU"
        assert assays.read(c, p, "absorbance").wavelength_nm == 600.0
        with pytest.raises(StateError, match="unknown read mode"):
            assays.read(c, p, "raman")

    run(main)


def test_resazurin_fluorescence_tracks_viable_cells() -> None:
    async def main(clock: VirtualClock) -> tuple[float, float]:
        c = CultureModel(clock)
        lo, hi = plate("LO"), plate("HI")
        c.seed(lo, 5e4, 1500)
        c.seed(hi, 2e5, 1500)
        for p in (lo, hi):
            c.add_reagent(p, "alamarBlue", 150)
        await clock.sleep(2 * HOUR)
        return assays.read(c, lo, "fluorescence").mean, assays.read(c, hi, "fluorescence").mean

    lo, hi = run(main)
    bg = assays.FLUORESCENCE_BACKGROUND_RFU
    assert (hi - bg) / (lo - bg) == pytest.approx(4.0, rel=0.1)


def test_confluence_noise_is_about_three_percent() -> None:
    async def main(clock: VirtualClock) -> tuple[list[float], list[float]]:
        c, p = CultureModel(clock, seed=9), plate("P", "corning_96_wellplate")
        c.seed(p, 8e3, 100, cv=0.0)
        await clock.sleep(24 * HOUR)
        true = assays.true_confluence(c.plate(p))
        return true, list(assays.confluence(c, p).per_well)

    true, seen = run(main)
    ratios = [s / t for s, t in zip(seen, true)]
    assert 0.02 < statistics.pstdev(ratios) < 0.045 and statistics.fmean(ratios) == pytest.approx(1.0, abs=0.015)


def test_counter_reports_suspension_or_wells() -> None:
    async def main(clock: VirtualClock) -> None:
        wc = Workcell(clock, seed=4)
        await wc.connect()
        p = plate()
        await wc.incubator.check_in(p)
        await wc.to(p, "cell_counter")
        with pytest.raises(StateError, match="no cells"):
            await wc.counter.count(p)
        await wc.to(p, "liquid_handler")
        await wc.lh.seed(p, 2e5, 1500)
        await clock.sleep(48 * HOUR)
        await wc.to(p, "cell_counter")
        wells = await wc.counter.count(p)
        truth = wc.culture.snapshot(p)
        assert wells.volume_ml == pytest.approx(9.0)
        assert wells.viable_per_ml * 9.0 == pytest.approx(truth["viable"], rel=0.1)
        await wc.to(p, "liquid_handler")
        await wc.lh.dissociate(p, 1000)
        await clock.sleep(420)
        await wc.lh.harvest(p, 2000)
        await wc.to(p, "cell_counter")
        susp = await wc.counter.count(p)
        truth = wc.culture.snapshot(p)
        assert susp.volume_ml == pytest.approx(18.0)
        assert susp.viable_cells == pytest.approx(truth["suspension_viable"], rel=0.1)
        assert susp.viability == pytest.approx(truth["viability"], abs=0.03)
        assert 10 < susp.mean_diameter_um < 15

    run(main)


def test_registry_specs_build_a_workcell_sharing_one_culture() -> None:
    async def main(clock: VirtualClock) -> None:
        shared: dict[str, object] = {}
        names = ["liquid_handler", "incubator", "plate_reader", "imager", "cell_counter", "plate_mover"]
        sims = {}
        for n in names:
            spec = get_driver(f"sim.{n}")
            assert spec.driver_class is not None and spec.create is spec.create_simulator
            sims[n] = spec.create_simulator(
                spec.parse_config({}), DriverContext(name=n, clock=clock, seed=1, shared=shared)
            )
            assert sims[n].instrument_class == n
        assert all(s.culture is shared["culture"] for s in sims.values())  # type: ignore[attr-defined]
        assert culture_of(DriverContext("x", clock, 1, shared)) is shared["culture"]
        assert get_driver("sim.incubator").capabilities() == ["co2", "temperature", "outcome_query"]
        assert get_driver("sim.incubator").parse_config({"slots": 12}).slots == 12  # type: ignore[attr-defined]

    run(main)
