"""Scripted and injected faults, error states and outcome queries."""

from __future__ import annotations

import pytest
from simkit import Workcell, plate, run

from drivers.clock import VirtualClock
from drivers.errors import (
    ChannelError,
    ConfigurationError,
    ConnectionLost,
    DeviceFault,
    InstrumentError,
    InstrumentTimeout,
    StateError,
    WireProtocolError,
)
from simulators.faults import FaultSpec


@pytest.mark.parametrize(
    ("kind", "cls", "recoverable"),
    [
        ("timeout", InstrumentTimeout, True),
        ("device_fault", DeviceFault, False),
        ("connection", ConnectionLost, True),
        ("protocol", WireProtocolError, True),
        ("channel", ChannelError, True),
    ],
)
def test_each_kind_raises_its_class(kind: str, cls: type[InstrumentError], recoverable: bool) -> None:
    async def main(clock: VirtualClock) -> None:
        fault = {"action": "confluence", "on_call": 2, "kind": kind, "code": "E12", "detail": "boom"}
        wc = Workcell(clock, configs={"imager": {"faults": [fault]}})
        await wc.connect()
        p = plate()
        await wc.load_and_seed(p)
        await wc.to(p, "imager")
        await wc.imager.confluence(p)
        with pytest.raises(cls) as info:
            await wc.imager.confluence(p)
        err = info.value
        assert type(err) is cls and err.code == "E12" and err.recoverable is recoverable and err.device == "imager"
        assert err.kind == kind
        state = (await wc.imager.status()).state
        assert state == ("idle" if recoverable else "error")
        if not recoverable:
            with pytest.raises(StateError, match="reset_error"):
                await wc.imager.confluence(p)
            await wc.imager.reset_error()
        await wc.imager.confluence(p)  # the fault fired once

    run(main)


def test_recoverable_override_and_error_until_reset() -> None:
    async def main(clock: VirtualClock) -> None:
        faults = [
            {"action": "exchange_medium", "on_call": 1, "kind": "device_fault", "code": "E12", "recoverable": True}
        ]
        wc = Workcell(clock, configs={"liquid_handler": {"faults": faults}})
        await wc.connect()
        p = plate()
        await wc.load_and_seed(p)
        await wc.to(p, "liquid_handler")
        with pytest.raises(DeviceFault) as info:
            await wc.lh.exchange_medium(p, 1500)
        assert info.value.recoverable and (await wc.lh.status()).state == "idle"
        wc.lh.inject(FaultSpec(action="exchange_medium", kind="timeout", recoverable=False))
        with pytest.raises(InstrumentTimeout):
            await wc.lh.exchange_medium(p, 1500)
        status = await wc.lh.status()
        assert status.state == "error" and status.error_code == "timeout"
        await wc.lh.reset_error()
        await wc.lh.exchange_medium(p, 1500)

    run(main)


@pytest.mark.parametrize("when", ["before", "after"])
def test_transfer_fault_before_or_after_and_outcome_query(when: str) -> None:
    async def main(clock: VirtualClock) -> None:
        faults = [{"action": "transfer", "on_call": 2, "kind": "connection", "when": when}]
        wc = Workcell(clock, configs={"plate_mover": {"faults": faults}})
        await wc.connect()
        p = plate()
        await wc.incubator.check_in(p)
        await wc.incubator.fetch(p)
        await wc.mover.transfer(p, "incubator", "imager")
        t0 = clock.now()
        with pytest.raises(ConnectionLost):
            await wc.mover.transfer(p, "imager", "plate_reader")
        args = {"plate": "P1", "source": "imager", "destination": "plate_reader"}
        moved = await wc.mover.action_outcome("transfer", args)
        if when == "after":
            assert clock.now() - t0 == 20 and moved is True
            assert wc.culture.locations.site_of("P1") == "plate_reader"
        else:
            assert clock.now() == t0 and moved is False
            assert wc.culture.locations.site_of("P1") == "imager"
        assert wc.culture.locations.claims == {}
        assert await wc.mover.action_outcome("transfer", {"plate": "P1", "source": "x", "destination": "y"}) is None

    run(main)


def test_after_fault_applies_the_culture_effect() -> None:
    async def main(clock: VirtualClock) -> None:
        faults = [{"action": "exchange_medium", "on_call": 1, "kind": "timeout", "when": "after"}]
        wc = Workcell(clock, configs={"liquid_handler": {"faults": faults}})
        await wc.connect()
        p = plate()
        await wc.load_and_seed(p)
        await clock.sleep(20 * 3600)
        await wc.to(p, "liquid_handler")
        with pytest.raises(InstrumentTimeout):
            await wc.lh.exchange_medium(p, 1500)
        assert wc.culture.snapshot(p)["medium_age_h"] == 0.0

    run(main)


def test_incubator_outcome_queries_after_fault() -> None:
    async def main(clock: VirtualClock) -> None:
        faults = [{"action": "fetch", "on_call": 1, "kind": "timeout", "when": "after", "recoverable": False}]
        wc = Workcell(clock, configs={"incubator": {"faults": faults}})
        await wc.connect()
        p = plate()
        assert await wc.incubator.action_outcome("check_in", {"plate": p}) is False
        await wc.incubator.check_in(p)
        assert await wc.incubator.action_outcome("check_in", {"plate": {"id": "P1"}}) is True
        assert await wc.incubator.action_outcome("fetch", {"plate": "P1"}) is False
        with pytest.raises(InstrumentTimeout):
            await wc.incubator.fetch(p)
        assert (await wc.incubator.status()).state == "error"
        assert await wc.incubator.action_outcome("fetch", {"plate": "P1"}) is True  # answers in error too
        assert await wc.incubator.action_outcome("store", {"plate": "P1"}) is False
        await wc.incubator.reset_error()
        await wc.incubator.store(p)
        assert await wc.incubator.action_outcome("store", {"plate": "P1"}) is True

    run(main)


def test_timeout_delay_spends_time_before_failing() -> None:
    async def main(clock: VirtualClock) -> None:
        wc = Workcell(clock)
        await wc.connect()
        wc.reader.inject(FaultSpec(action="read", kind="timeout", delay_s=45))
        p = plate()
        await wc.incubator.check_in(p)
        await wc.to(p, "plate_reader")
        t0 = clock.now()
        with pytest.raises(InstrumentTimeout):
            await wc.reader.read(p)
        assert clock.now() - t0 == 45

    run(main)


def _failure_pattern(seed: int) -> list[bool]:
    async def main(clock: VirtualClock) -> list[bool]:
        wc = Workcell(
            clock,
            seed=seed,
            configs={"plate_reader": {"faults": [{"action": "read", "probability": 0.3, "kind": "timeout"}]}},
        )
        await wc.connect()
        p = plate()
        await wc.incubator.check_in(p)
        await wc.to(p, "plate_reader")
        out = []
        for _ in range(60):
            try:
                await wc.reader.read(p, "absorbance")
                out.append(False)
            except InstrumentTimeout:
                out.append(True)
        return out

    return run(main)


def test_probability_faults_are_seeded() -> None:
    a, b = _failure_pattern(1), _failure_pattern(2)
    assert a == _failure_pattern(1) and a != b
    assert 8 <= sum(a) <= 30


def test_bad_fault_and_duration_config() -> None:
    async def main(clock: VirtualClock) -> None:
        with pytest.raises(ConfigurationError, match="not an action"):
            Workcell(clock, configs={"imager": {"faults": [{"action": "read", "on_call": 1}]}})
        with pytest.raises(ConfigurationError, match="not an action"):
            Workcell(clock, configs={"imager": {"durations": {"transfer": 3}}})
        with pytest.raises(ConfigurationError, match="kind"):
            Workcell(clock, configs={"imager": {"faults": [{"action": "confluence", "kind": "meltdown"}]}})
        with pytest.raises(ConfigurationError, match="on_call or probability"):
            Workcell(clock, configs={"imager": {"faults": [{"on_call": 1, "probability": 0.5}]}})

    run(main)
