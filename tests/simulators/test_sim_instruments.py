"""The six simulators: durations, state machine, locations, environment, identity."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from simkit import HOUR, Workcell, plate, run

from drivers.base import (
    CellCounter,
    Imager,
    Incubator,
    LiquidHandler,
    PlateMover,
    PlateReader,
    SupportsCO2,
    SupportsOutcomeQuery,
    SupportsTemperature,
)
from drivers.clock import VirtualClock
from drivers.errors import DeviceFault, StateError

DEFAULTS = {
    "incubator": {"check_in": 0, "fetch": 30, "store": 30, "environment": 0},
    "plate_mover": {"transfer": 20},
    "liquid_handler": {
        "seed": 300,
        "exchange_medium": 300,
        "dissociate": 180,
        "harvest": 240,
        "reseed": 240,
        "add_reagent": 120,
    },
    "imager": {"confluence": 240},
    "plate_reader": {"read": 120},
    "cell_counter": {"count": 90},
}


@pytest.mark.parametrize("override", [False, True])
def test_durations_advance_the_clock_exactly(override: bool) -> None:
    expected = {k: {a: d + 7.0 * override for a, d in v.items()} for k, v in DEFAULTS.items()}
    configs = {k: {"durations": v} for k, v in expected.items()} if override else {}
    seen: dict[tuple[str, str], float] = {}

    async def main(clock: VirtualClock) -> None:
        wc = Workcell(clock, configs=configs)
        await wc.connect()
        p = plate()

        async def timed(kind: str, action: str, call: Any) -> Any:
            t0 = clock.now()
            out = await call
            seen[(kind, action)] = clock.now() - t0
            return out

        inc, lh, mv = wc.incubator, wc.lh, wc.mover
        await timed("incubator", "check_in", inc.check_in(p))
        await timed("incubator", "fetch", inc.fetch(p))
        await timed("incubator", "environment", inc.environment())
        await timed("plate_mover", "transfer", mv.transfer(p, "incubator", "liquid_handler"))
        await timed("liquid_handler", "seed", lh.seed(p, 1e5, 1500))
        await timed("liquid_handler", "exchange_medium", lh.exchange_medium(p, 1500))
        await mv.transfer(p, "liquid_handler", "imager")
        await timed("imager", "confluence", wc.imager.confluence(p))
        await mv.transfer(p, "imager", "liquid_handler")
        await timed("liquid_handler", "dissociate", lh.dissociate(p, 1000))
        await timed("liquid_handler", "harvest", lh.harvest(p, 1000))
        await mv.transfer(p, "liquid_handler", "cell_counter")
        await timed("cell_counter", "count", wc.counter.count(p))
        await mv.transfer(p, "cell_counter", "liquid_handler")
        await timed("liquid_handler", "reseed", lh.reseed(p, 3, 1500))
        await timed("liquid_handler", "add_reagent", lh.add_reagent(p, "celltiter_glo", 500))
        await mv.transfer(p, "liquid_handler", "plate_reader")
        await timed("plate_reader", "read", wc.reader.read(p))
        await mv.transfer(p, "plate_reader", "incubator")
        await timed("incubator", "store", inc.store(p))

    run(main)
    assert seen == {(k, a): d for k, v in expected.items() for a, d in v.items()}


def test_interfaces_and_capabilities() -> None:
    async def main(clock: VirtualClock) -> None:
        wc = Workcell(clock)
        for inst, iface in zip(wc.all, (Incubator, LiquidHandler, PlateMover, Imager, PlateReader, CellCounter)):
            assert isinstance(inst, iface)
        assert isinstance(wc.incubator, (SupportsCO2)) and isinstance(wc.incubator, SupportsTemperature)
        assert isinstance(wc.incubator, SupportsOutcomeQuery) and isinstance(wc.mover, SupportsOutcomeQuery)

    run(main)


def test_state_machine() -> None:
    async def main(clock: VirtualClock) -> None:
        wc = Workcell(clock)
        im, p = wc.imager, plate()
        assert (await im.status()).state == "offline"
        with pytest.raises(StateError, match="offline"):
            await im.confluence(p)
        with pytest.raises(StateError, match="offline"):
            await im.identify()
        await im.connect()
        await im.connect()
        assert (await im.status()).state == "idle"
        ident = await im.identify()
        assert "imager" in ident.serial and ident.vendor
        await im.disconnect()
        await im.disconnect()
        assert (await im.status()).state == "offline"

    run(main)


def test_busy_rejects_second_plate_and_capacity_two_allows_it() -> None:
    async def main(clock: VirtualClock) -> None:
        for capacity in (1, 2):
            wc = Workcell(clock, configs={"imager": {"capacity": capacity}})
            await wc.connect()
            a, b = plate("A"), plate("B")
            for p in (a, b):
                await wc.load_and_seed(p)
                await wc.to(p, "imager")  # site capacity defaults to capacity
                if capacity == 1:
                    break
            first = asyncio.ensure_future(wc.imager.confluence(a))
            await clock.sleep(10)
            status = await wc.imager.status()
            assert status.state == "busy" and "A" in status.detail
            if capacity == 1:
                with pytest.raises(StateError, match="busy"):
                    await wc.imager.confluence(a)
                assert wc.culture.locations.claims == {"A": "imager"}
            else:
                await wc.imager.confluence(b)
            await first
            assert (await wc.imager.status()).state == "idle"

    run(main)


def test_abort_cancels_without_effect() -> None:
    async def main(clock: VirtualClock) -> None:
        wc = Workcell(clock)
        await wc.connect()
        p = plate()
        await wc.load_and_seed(p)
        await wc.incubator.fetch(p)
        task = asyncio.ensure_future(wc.mover.transfer(p, "incubator", "imager"))
        await clock.sleep(5)
        t0 = clock.now()
        await wc.mover.abort()
        with pytest.raises(DeviceFault) as info:
            await task
        assert info.value.code == "aborted" and info.value.recoverable
        assert clock.now() == t0
        assert wc.culture.locations.site_of("P1") == "incubator"
        assert (await wc.mover.status()).state == "idle"
        await wc.mover.transfer(p, "incubator", "imager")  # the reservation was released

    run(main)


def test_location_checks_raise_before_anything_changes() -> None:
    async def main(clock: VirtualClock) -> None:
        wc = Workcell(clock, configs={"incubator": {"slots": 2}})
        await wc.connect()
        a, b, c = plate("A"), plate("B"), plate("C")
        await wc.load_and_seed(a)
        await wc.incubator.check_in(b)
        loc = wc.culture.locations

        def state() -> tuple[Any, ...]:
            return dict(loc.where), dict(loc.claims), {s: v.reserved for s, v in loc.sites.items()}, clock.now()

        before = state()
        cases = [
            wc.incubator.check_in(c),  # full
            wc.incubator.check_in(a),  # already placed
            wc.incubator.store(a),  # not at the station
            wc.lh.exchange_medium(a, 1500),  # not at the liquid handler
            wc.mover.transfer(a, "incubator", "imager"),  # still in its slot
            wc.mover.transfer(a, "incubator:slot 1", "imager"),  # slots are not reachable
            wc.imager.confluence(c),  # never placed
        ]
        for call in cases:
            with pytest.raises(StateError):
                await call
            assert state() == before
        await wc.incubator.fetch(a)
        await wc.mover.transfer(a, "incubator", "imager")
        await wc.incubator.fetch(b)
        await wc.incubator.check_in(c)
        before = state()
        with pytest.raises(StateError, match="full"):
            await wc.mover.transfer(b, "incubator", "imager")  # imager site holds one plate
        with pytest.raises(StateError, match="full"):
            await wc.incubator.fetch(c)  # the station holds b
        with pytest.raises(StateError, match="not in a slot"):
            await wc.incubator.fetch(a)
        with pytest.raises(StateError, match="unknown site"):
            await wc.mover.transfer(b, "incubator", "nowhere")
        with pytest.raises(StateError):
            await wc.lh.seed(a, 1e5, 1500)  # at the imager, and already seeded
        assert state() == before

    run(main)


def test_store_returns_plate_to_its_slot_and_free_slots() -> None:
    async def main(clock: VirtualClock) -> None:
        wc = Workcell(clock, configs={"incubator": {"slots": 3}})
        await wc.connect()
        a, b = plate("A"), plate("B")
        assert await wc.incubator.check_in(a) == 1
        assert await wc.incubator.check_in(b) == 2
        assert await wc.incubator.free_slots() == 1
        await wc.incubator.fetch(a)
        assert await wc.incubator.free_slots() == 2
        await wc.incubator.store(a)
        assert wc.culture.locations.site_of("A") == "incubator:slot 1"
        assert set((await wc.incubator.status()).plates) == {"A", "B"}

    run(main)


def test_environment_door_dip_and_set_points() -> None:
    async def main(clock: VirtualClock) -> None:
        wc = Workcell(clock, seed=5)
        inc = wc.incubator
        await wc.connect()
        steady = await inc.environment()
        assert steady.temperature_c == pytest.approx(37.0, abs=0.3)
        assert steady.co2_percent == pytest.approx(5.0, abs=0.3) and not steady.door_open
        await inc.check_in(plate())
        task = asyncio.ensure_future(inc.fetch(plate()))
        await clock.sleep(25)
        during = await inc.environment()  # queries work while busy
        assert during.door_open and during.co2_percent < 4.8
        await task
        await clock.sleep(HOUR)
        after = await inc.environment()
        assert not after.door_open and after.co2_percent == pytest.approx(5.0, abs=0.3)
        await inc.set_co2(8.0)
        await inc.set_temperature(33.0)
        await clock.sleep(2 * HOUR)
        env = await inc.environment()
        assert env.co2_percent == pytest.approx(8.0, abs=0.3) and env.temperature_c == pytest.approx(33.0, abs=0.3)
        with pytest.raises(StateError):
            await inc.set_co2(40.0)

    run(main)
