"""plr.cytomat: pylabrobot's unmodified CytomatBackend against the wire-level emulator."""

from __future__ import annotations

import pytest

from drivers.clock import WallClock
from drivers.errors import ConnectionLost, DeviceFault, InstrumentTimeout, StateError, WireProtocolError
from drivers.plr import CYTOMAT
from drivers.plr.incubator import PLRIncubatorConfig
from drivers.spec import DriverContext
from simulators.cytomat_emulator import CytomatEmulator, create_emulated


def build(clock, move_s=5.0, init_s=2.0, **cfg):
    ctx = DriverContext("incubator", clock)
    config = PLRIncubatorConfig(emulator={"move_s": move_s, "init_s": init_s}, action_timeout_s=60, **cfg)
    return create_emulated(config, ctx), ctx.shared["culture"]


def test_fetch_store_bytes_timing_and_culture(plate, vclock):
    drv, culture = build(vclock)

    async def main():
        await drv.connect()
        slot = await drv.check_in(plate)
        t0 = vclock.now()
        await drv.fetch(plate)
        took = vclock.now() - t0
        at_station = culture.locations.site_of(plate.id)
        env = await drv.environment()
        await drv.store(plate)
        status = await drv.status()
        await drv.disconnect()
        return slot, took, at_station, env, status

    slot, took, at_station, env, status = vclock.run(main)
    em = drv.emulator
    assert slot == 1 and at_station == "incubator"
    assert culture.locations.site_of(plate.id) == "incubator:slot 1"
    assert 5.0 <= took <= 7.0  # the move time, polled with pylabrobot's 1 s sleeps on the virtual clock
    assert b"ll:in\r\n" in em.received and b"mv:st 001\r\n" in em.received and b"mv:ts 001\r\n" in em.received
    assert em.state.slots[1] and not em.state.transfer
    assert (env.temperature_c, env.co2_percent, env.humidity_percent, env.door_open) == (37.0, 5.0, 95.0, False)
    assert status.plates == ("P1",) and not em.running


def test_refused_calls_touch_nothing(plate, vclock):
    drv, culture = build(vclock)

    async def main():
        await drv.connect()
        sent = len(drv.emulator.received)
        with pytest.raises(StateError):
            await drv.fetch(plate)  # never checked in
        with pytest.raises(StateError):
            await drv.store(plate)
        await drv.check_in(plate)
        with pytest.raises(StateError):
            await drv.check_in(plate)
        assert len(drv.emulator.received) == sent  # not one telegram
        await drv.disconnect()

    vclock.run(main)


@pytest.mark.parametrize("fault, error", [("no_reply", InstrumentTimeout), ("garbled", WireProtocolError)])
def test_wire_faults(fault, error, plate, vclock):
    drv, culture = build(vclock)

    async def main():
        await drv.connect()
        await drv.check_in(plate)
        drv.emulator.inject(fault)
        with pytest.raises(error) as info:
            await drv.fetch(plate)
        await drv.disconnect()
        return info.value

    exc = vclock.run(main)
    assert exc.raw is not None and exc.recoverable
    assert culture.locations.site_of(plate.id) == "incubator:slot 1"  # nothing committed


def test_truncated_ack_is_still_an_ack(plate, vclock):
    """``ok 01`` cut to ``ok``: pylabrobot accepts it (the key is all it checks) and the move completes."""
    drv, culture = build(vclock)

    async def main():
        await drv.connect()
        await drv.check_in(plate)
        drv.emulator.inject("partial", skip=1)  # the sensor read passes, the move's ack is cut
        await drv.fetch(plate)
        await drv.disconnect()

    vclock.run(main)
    assert b"ok " in drv.emulator.sent and culture.locations.site_of(plate.id) == "incubator"


def test_device_error_code_and_reset(plate, vclock):
    drv, _ = build(vclock)

    async def main():
        await drv.connect()
        await drv.check_in(plate)
        drv.emulator.reply_error_next("05", on="mv")
        with pytest.raises(DeviceFault) as info:
            await drv.fetch(plate)
        assert (await drv.status()).state == "error"
        await drv.reset_error()
        await drv.fetch(plate)
        await drv.disconnect()
        return info.value

    exc = vclock.run(main)
    assert exc.code == "05" and b"er 05\r\n" in exc.raw


def test_failed_move_sets_the_error_register(plate, vclock):
    drv, culture = build(vclock)

    async def main():
        await drv.connect()
        await drv.check_in(plate)
        drv.emulator.fail_next_move("02")
        with pytest.raises(DeviceFault) as info:
            await drv.fetch(plate)
        await drv.disconnect()
        return info.value

    exc = vclock.run(main)
    assert exc.code == "ER02" and b"be 02\r\n" in exc.raw
    assert culture.locations.site_of(plate.id) == "incubator:slot 1"


def test_jammed_handler_times_out_and_outcome_query(plate, vclock):
    drv, culture = build(vclock)

    async def main():
        await drv.connect()
        await drv.check_in(plate)
        drv.inner.config = drv.inner.config.model_copy(update={"action_timeout_s": 30})
        drv.emulator.jam_next_move()
        with pytest.raises(InstrumentTimeout):
            await drv.fetch(plate)
        busy = await drv.action_outcome("fetch", {"plate": plate})
        drv.emulator.unjam()
        not_done = await drv.action_outcome("fetch", {"plate": plate})
        # a fetch whose reply is lost: the device did it, the driver does not know yet
        drv.emulator.inject("garbled", skip=1)  # the ack of the move is lost
        with pytest.raises(WireProtocolError):
            await drv.fetch(plate)
        await vclock.sleep(15)
        done = await drv.action_outcome("fetch", {"plate": plate})
        await drv.disconnect()
        return busy, not_done, done

    assert vclock.run(main) == (None, False, True)
    assert culture.locations.site_of(plate.id) == "incubator"  # reconciled from the device


def test_door_open_refuses_moves(plate, vclock):
    drv, _ = build(vclock)

    async def main():
        await drv.connect()
        await drv.check_in(plate)
        drv.emulator.open_device_door()
        with pytest.raises(DeviceFault) as info:
            await drv.fetch(plate)
        env = await drv.environment()
        await drv.disconnect()
        return info.value, env

    exc, env = vclock.run(main)
    assert exc.code == "01" and exc.recoverable and env.door_open


def test_disconnect_mid_command(plate, vclock):
    drv, _ = build(vclock)

    async def main():
        await drv.connect()
        await drv.check_in(plate)
        drv.emulator.inject("disconnect", skip=1)  # hang up on the move telegram
        with pytest.raises(ConnectionLost):
            await drv.fetch(plate)
        assert (await drv.status()).state == "error"
        await drv.disconnect()
        await drv.connect()  # a new line to the same device
        await drv.fetch(plate)
        await drv.disconnect()

    vclock.run(main)


def test_wall_clock_and_co2_reading(plate):
    clock = WallClock()
    drv, _ = build(clock, move_s=0.2, init_s=0.1)

    async def main():
        await drv.connect()
        drv.emulator.set_co2(3.1)
        await drv.check_in(plate)
        await drv.fetch(plate)
        env = await drv.environment()
        await drv.disconnect()
        return env

    assert clock.run(main).co2_percent == pytest.approx(3.1)


def test_c2c_425_rack_site_addressing():
    now = [0.0]
    em = CytomatEmulator([10, 10], time_fn=lambda: now[0], move_s=5)
    em.state.initialised = True
    em.load(12)
    assert em.handle(b"mv:st 01 01") == b"ok 01\r\n"  # rack 1 site 1 = absolute slot 12
    assert em.handle(b"ch:bs") == b"bs 01\r\n"  # busy
    now[0] = 5.0
    assert em.handle(b"ch:bs") == b"bs 82\r\n"  # transfer occupied + ready
    assert em.handle(b"mv:st 05 01") == b"er 05\r\n"
    assert em.handle(b"xx") == b"er 03\r\n"


def test_spec_modes(vclock):
    assert CYTOMAT.transport == "serial"
    ctx = DriverContext("incubator", vclock)
    assert type(CYTOMAT.build("real", CYTOMAT.parse_config({"port": "/dev/ttyUSB9"}), ctx)).__name__ == "PLRIncubator"
    assert CYTOMAT.build("simulator", CYTOMAT.parse_config({}), ctx).instrument_class == "incubator"
