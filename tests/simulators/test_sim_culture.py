"""The culture model: growth, viability, passage, determinism, StateError discipline."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
from simkit import HOUR, ONE_WELL, plate, run

from drivers.clock import VirtualClock
from drivers.errors import StateError
from simulators import cells as bio
from simulators.culture import CultureModel

IPSC = bio.CELL_TYPES["ipsc"]
K_ONE = ONE_WELL.well_area_cm2 * IPSC.confluent_per_cm2


def rk4_reference(v0: float, hours: float, dt: float = 60.0) -> float:
    """Independent numeric solution of dV/dt = r·g(s)·V(1 − V/K_log) − δ₀V."""
    r, lag, k = IPSC.growth_rate_per_s, IPSC.lag_h * HOUR, IPSC.logistic_capacity(K_ONE)
    d0 = bio.BASELINE_DEATH_PER_H / HOUR

    def f(t: float, v: float) -> float:
        return r * (1 - math.exp(-t / lag)) * v * (1 - v / k) - d0 * v

    v, t = v0, 0.0
    while t < hours * HOUR - 1e-9:
        k1 = f(t, v)
        k2 = f(t + dt / 2, v + dt / 2 * k1)
        k3 = f(t + dt / 2, v + dt / 2 * k2)
        k4 = f(t + dt, v + dt * k3)
        v += dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        t += dt
    return v


def test_pure_logistic_closed_form() -> None:
    k, v0, r = 1e6, 1e4, math.log(2) / (20 * HOUR)
    for hours in (0, 10, 40, 200):
        g = r * hours * HOUR
        assert bio.bernoulli_step(v0, k, g, 0.0) == pytest.approx(k / (1 + (k / v0 - 1) * math.exp(-g)))
    assert bio.bernoulli_step(v0, k, 0.0, 0.3) == pytest.approx(v0 * math.exp(-0.3))
    assert bio.lag_integral(100 * HOUR, 8 * HOUR) == pytest.approx(92 * HOUR, rel=1e-6)


def test_growth_matches_ode_and_is_independent_of_evaluation_points() -> None:
    async def main(clock: VirtualClock) -> tuple[float, float]:
        a, b = CultureModel(clock, 1), CultureModel(clock, 1)
        for c in (a, b):
            c.seed(plate("P", ONE_WELL), 2e4, 2000, cv=0.0)
        for _ in range(20):  # b is looked at every 1.7 h, a only at the end (34 h: medium still fresh)
            await clock.sleep(1.7 * HOUR)
            b.snapshot("P")
        return a.snapshot("P")["viable"], b.snapshot("P")["viable"]

    va, vb = run(main)
    assert va == pytest.approx(vb, rel=1e-6)
    assert va == pytest.approx(rk4_reference(2e4, 34.0), rel=2e-3)


def test_net_doubling_time_after_lag() -> None:
    async def main(clock: VirtualClock) -> float:
        c = CultureModel(clock)
        c.seed(plate("P", ONE_WELL), 1e3, 2000, cv=0.0)  # far below K: exponential
        await clock.sleep(30 * HOUR)
        c.exchange_medium(plate("P", ONE_WELL), 2000)  # keep the medium young
        v1 = c.snapshot("P")["viable"]
        await clock.sleep(IPSC.doubling_h * HOUR)
        return c.snapshot("P")["viable"] / v1

    assert run(main) == pytest.approx(2.0, rel=0.01)


def test_confluence_rises_then_saturates() -> None:
    async def main(clock: VirtualClock) -> list[float]:
        c, p, out = CultureModel(clock), plate(), []
        c.seed(p, 1e5, 1500)
        for _ in range(12):
            await clock.sleep(24 * HOUR)
            c.exchange_medium(p, 1500)
            out.append(sum(c.snapshot(p)["confluence"]) / 6)
        return out

    conf = run(main)
    assert all(b >= a for a, b in itertools.pairwise(conf[:8]))
    assert conf[0] < 0.2 and conf[-1] > 0.9 and max(conf) <= 1.0
    assert abs(conf[-1] - conf[-2]) < 0.02


def test_old_medium_lowers_viability() -> None:
    async def main(clock: VirtualClock) -> tuple[float, float]:
        fed, starved = CultureModel(clock), CultureModel(clock)
        for c in (fed, starved):
            c.seed(plate(), 1e5, 1500)
        for _ in range(3):
            await clock.sleep(24 * HOUR)
            fed.exchange_medium(plate(), 1500)
        return fed.snapshot("P1")["viability"], starved.snapshot("P1")["viability"]

    fed, starved = run(main)
    assert fed > 0.93
    assert starved < fed - 0.25  # 72 h without a feed


def test_overconfluence_lowers_viability() -> None:
    async def main(clock: VirtualClock) -> list[float]:
        c, out = CultureModel(clock), []
        c.seed(plate(), 1.5e6, 1500)
        for _ in range(6):
            await clock.sleep(24 * HOUR)
            out.append(c.snapshot("P1")["viability"])
            c.exchange_medium(plate(), 1500)
        return out

    v = run(main)
    assert v[-1] < 0.85 and v[-1] < v[0] - 0.05


def _passage(second_dose: bool = False, wait_min: float = 8.0) -> dict[str, float]:
    async def main(clock: VirtualClock) -> dict[str, float]:
        c, p = CultureModel(clock), plate()
        c.locations.register_site("inc:slot 1", temperature_c=37.0)
        c.place(p, "inc:slot 1")  # dissociation runs at 37 °C
        c.seed(p, 2e5, 1500)
        await clock.sleep(48 * HOUR)
        c.exchange_medium(p, 1500)
        await clock.sleep(24 * HOUR)
        before = c.snapshot(p)["viable"]
        c.dissociate(p, 1000)
        if second_dose:
            await clock.sleep(180)
            c.dissociate(p, 1000)
        await clock.sleep(wait_min * 60)
        c.harvest(p, 2000)
        s = c.snapshot(p)
        harvested, viability = s["suspension_viable"], s["viability"]
        c.reseed(p, 6, 1500)
        return {"before": before, "harvested": harvested, "viability": viability, "after": c.snapshot(p)["viable"]}

    return run(main)


def test_passage_splits_by_ratio() -> None:
    r = _passage()
    assert 0.85 < r["harvested"] / r["before"] < 0.95  # loss + damage on harvest
    assert r["after"] == pytest.approx(r["harvested"] / 6, rel=0.05)  # per-well CV 5 % over 6 wells
    assert r["viability"] > 0.88


def test_double_dissociation_crashes_viability() -> None:
    ok, ruined = _passage(), _passage(second_dose=True)
    assert ruined["viability"] < 0.45
    assert ok["viability"] > 0.88


def test_passage_window_matters() -> None:
    short, ok, long = _passage(wait_min=1), _passage(wait_min=8), _passage(wait_min=40)
    assert short["harvested"] < 0.5 * ok["harvested"]  # most cells still attached
    assert long["viability"] < ok["viability"] - 0.1  # over-digested


def _numbers(seed: int, interleave: bool) -> list[float]:
    async def main(clock: VirtualClock) -> list[float]:
        from simulators import assays

        c, p, q = CultureModel(clock, seed), plate("P1"), plate("P2")
        c.seed(p, 1e5, 1500)
        if interleave:
            c.seed(q, 3e5, 1500)
        await clock.sleep(30 * HOUR)
        if interleave:
            assays.confluence(c, q)
            assays.count(c, q)
        return list(assays.confluence(c, p).per_well) + [assays.count(c, p).viable_per_ml]

    return run(main)


def test_same_seed_same_numbers_regardless_of_other_plates() -> None:
    assert _numbers(3, False) == _numbers(3, True)
    assert _numbers(3, False) != _numbers(4, False)


@pytest.mark.parametrize(
    "op",
    [
        lambda c, p: c.seed(p, 1e5, 1500),  # occupied plate
        lambda c, p: c.reseed(p, 4, 1500),  # no harvest
        lambda c, p: c.harvest(p, 1000),  # not dissociated
        lambda c, p: c.exchange_medium(p, 5000),  # over the working volume
        lambda c, p: c.add_reagent(p, "celltiter_glo", 2000),  # would overflow
    ],
)
def test_state_errors_change_nothing(op: object) -> None:
    async def main(clock: VirtualClock) -> None:
        c, p = CultureModel(clock), plate()
        c.seed(p, 1e5, 1500)
        await clock.sleep(HOUR)
        c.snapshot(p)  # evolve to now: lazy evaluation is not a change
        before = copy.deepcopy(c.plates["P1"].__dict__)
        with pytest.raises(StateError):
            op(c, p)  # type: ignore[operator]
        assert c.plates["P1"].__dict__ == before

    run(main)


def test_empty_plate_errors() -> None:
    async def main(clock: VirtualClock) -> None:
        c, p = CultureModel(clock), plate()
        with pytest.raises(StateError, match="no cells"):
            c.exchange_medium(p, 1500)
        with pytest.raises(StateError, match="no cells"):
            c.dissociate(p, 1000)
        assert c.snapshot(p)["phase"] == "empty"

    run(main)


def test_a_torn_world_record_is_cut_off_so_later_records_stay_readable(tmp_path) -> None:
    """A crash mid-write leaves a torn record; the next world restores without it and appends
    after the last whole one, so every later restore reads every record."""
    from simulators.culture import load_effect_log

    path = tmp_path / "world.pkl"
    world = CultureModel(VirtualClock(), seed=1)
    world.state_path = path
    world.record_effect("lh1", "seed", None)
    with open(path, "ab") as f:
        f.write((1000).to_bytes(8, "little") + b"half a record")  # the process died here
    again = CultureModel(VirtualClock(), seed=1)
    again.state_path = path
    again.restore(path)
    again.record_effect("imager", "image", None)
    assert [e["action"] for e in load_effect_log(path)] == ["seed", "image"]
