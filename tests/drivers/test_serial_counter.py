"""CC-1 counter: the exact bytes, the grammar, every wire failure, both clocks, both transports."""

from __future__ import annotations

import pytest

from drivers.clock import WallClock
from drivers.errors import ConnectionLost, DeviceFault, InstrumentTimeout, StateError, WireProtocolError
from drivers.serial_counter import SPEC
from drivers.serial_counter import protocol as cc1
from drivers.serial_counter.driver import SerialCellCounter, SerialCounterConfig
from drivers.spec import DriverContext
from simulators.counter_emulator import CounterEmulator, EmulatedCellCounter


def make(clock, transport="pty", count_s=90.0, **cfg):
    config = SerialCounterConfig(read_timeout_s=0.3, emulator={"transport": transport, "count_s": count_s}, **cfg)
    emulator = CounterEmulator(time_fn=clock.now, count_s=count_s, seed=1)
    return EmulatedCellCounter("counter", clock, config, emulator, transport)


# -- the vocabulary ------------------------------------------------------------------------

def test_request_bytes_are_exact():
    assert cc1.encode_request(cc1.COUNT, "P1") == b"COUNT P1\r\n"
    assert cc1.encode_request(cc1.RESULT, "7") == b"RESULT 7\r\n"
    assert cc1.encode_request(cc1.IDN) == b"IDN?\r\n"
    with pytest.raises(cc1.ProtocolViolation):
        cc1.encode_request(cc1.COUNT, "bad id with spaces")
    with pytest.raises(cc1.ProtocolViolation):
        cc1.encode_request("FORMAT")


def test_reply_grammar():
    r = cc1.decode_reply(b"OK total=1.2e+06 viable=1.1e+06 viab=0.92 diam=12.5 vol=1\r\n")
    assert r.head == "OK" and r.number("viab") == pytest.approx(0.92)
    e = cc1.decode_reply(b"ERR E10 no sample in the chamber\r\n")
    assert (e.code, e.text) == ("E10", "no sample in the chamber")
    for bad in (b"OK total=1\n", b"HELLO\r\n", b"OK total\r\n", b"ERR X1 what\r\n", b"OK \xff=1\r\n"):
        with pytest.raises(cc1.ProtocolViolation):
            cc1.decode_reply(bad)
    assert cc1.sample_token("run 1/plate#2") == "run_1_plate_2"


# -- the driver on the emulator --------------------------------------------------------------

@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_count_sends_exact_bytes_and_waits_on_the_clock(transport, plate, vclock):
    drv = make(vclock, transport)

    async def main():
        await drv.connect()
        t0 = vclock.now()
        count = await drv.count(plate)
        took = vclock.now() - t0
        await drv.disconnect()
        return count, took

    count, took = vclock.run(main)
    assert took == pytest.approx(90.0)
    assert 0.5 <= count.viability <= 1 and count.total_per_ml > 0
    assert drv.emulator.received == [b"IDN?\r\n", b"COUNT P1\r\n", b"RESULT 1\r\n"]
    assert [d for d, _ in drv.transcript] == ["tx", "rx", "tx", "rx", "tx", "rx"]
    assert drv.transcript[2] == ("tx", b"COUNT P1\r\n")
    assert drv.transcript[3][1] == b"OK job=1 eta=90\r\n"
    assert not drv.emulator.running  # the emulator stops on disconnect


def test_wall_clock(plate):
    clock = WallClock()
    drv = make(clock, count_s=0.2, poll_s=0.1)

    async def main():
        await drv.connect()
        c = await drv.count(plate)
        await drv.disconnect()
        return c

    assert clock.run(main).viable_per_ml > 0


@pytest.mark.parametrize("fault, error, raw", [
    ("no_reply", InstrumentTimeout, b""),
    ("garbled", WireProtocolError, b"\x02?\xff\xfe#~\r\n"),
    ("partial", InstrumentTimeout, b"OK job=1"),
])
def test_wire_faults_become_errors_with_the_bytes(fault, error, raw, plate, vclock):
    drv = make(vclock)

    async def main():
        await drv.connect()
        drv.emulator.inject(fault)
        with pytest.raises(error) as info:
            await drv.count(plate)
        status = await drv.status()
        again = await drv.count(plate)  # recoverable: the driver is usable at once
        await drv.disconnect()
        return info.value, status, again

    exc, status, again = vclock.run(main)
    assert exc.raw == raw and exc.recoverable
    assert status.state == "idle" and again.total_per_ml > 0


def test_device_error_latches_until_reset(plate, vclock):
    drv = make(vclock)

    async def main():
        await drv.connect()
        drv.emulator.fail_next("E20")
        with pytest.raises(DeviceFault) as info:
            await drv.count(plate)
        assert (await drv.status()).state == "error"
        with pytest.raises(StateError):
            await drv.count(plate)
        await drv.reset_error()
        assert (await drv.status()).state == "idle"
        await drv.count(plate)
        await drv.disconnect()
        return info.value

    exc = vclock.run(main)
    assert exc.code == "E20" and exc.raw == b"ERR E20 lamp failure\r\n" and not exc.recoverable


def test_hung_count_times_out_on_the_clock_and_aborts(plate, vclock):
    drv = make(vclock, count_timeout_s=300)

    async def main():
        await drv.connect()
        drv.emulator.hang_next_count()
        t0 = vclock.now()
        with pytest.raises(InstrumentTimeout):
            await drv.count(plate)
        took = vclock.now() - t0
        await drv.count(plate)  # the hung job was aborted: the device takes a new one
        await drv.disconnect()
        return took

    assert vclock.run(main) == pytest.approx(300, abs=6)
    assert b"ABORT\r\n" in drv.emulator.received


def test_disconnect_mid_command_is_connection_lost_then_reconnects(plate, vclock):
    drv = make(vclock, transport="tcp")

    async def main():
        await drv.connect()
        drv.emulator.inject("disconnect")
        with pytest.raises(ConnectionLost):
            await drv.count(plate)
        return await drv.count(plate)  # reopens the port by itself

    assert vclock.run(main).total_per_ml > 0


def test_calls_before_connect_and_bad_port(plate, vclock):
    drv = SerialCellCounter("counter", vclock, SerialCounterConfig(url="/dev/nonexistent-tty", read_timeout_s=0.1))

    async def main():
        with pytest.raises(StateError):
            await drv.count(plate)
        with pytest.raises(ConnectionLost):
            await drv.connect()
        assert (await drv.status()).state == "offline"

    vclock.run(main)


def test_spec_builds_every_mode(vclock):
    ctx = DriverContext("counter", vclock)
    cfg = SPEC.parse_config({"url": "loop://"})
    assert SPEC.transport == "serial" and SPEC.create_emulator
    assert type(SPEC.build("real", cfg, ctx)).__name__ == "SerialCellCounter"
    assert SPEC.build("simulator", cfg, ctx).instrument_class == "cell_counter"
    emulated = SPEC.build("emulator", cfg, DriverContext("counter", vclock))
    assert type(emulated.inner).__name__ == "EmulatedCellCounter"  # wrapped for the culture model
