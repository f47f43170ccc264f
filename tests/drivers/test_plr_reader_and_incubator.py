"""plr.plate_reader and the chatterbox side of plr.incubator; error mapping of pylabrobot exceptions."""

from __future__ import annotations

import pytest

from drivers.errors import ChannelError, ConnectionLost, DeviceFault, InstrumentTimeout, StateError, WireProtocolError
from drivers.plr import INCUBATOR, PLATE_READER
from drivers.plr._common import WireTap, map_error
from drivers.spec import DriverContext


def test_reader_returns_one_value_per_well_in_our_order(plate, vclock):
    reader = PLATE_READER.build("real", PLATE_READER.parse_config({}), DriverContext("reader", vclock))

    async def main():
        await reader.connect()
        reader.preset("luminescence", [1, 2, 3, 4, 5, 6])
        t0 = vclock.now()
        lum = await reader.read(plate)
        took = vclock.now() - t0
        od = await reader.read(plate, "absorbance")
        with pytest.raises(StateError):
            await reader.read(plate, "raman")
        await reader.disconnect()
        return lum, took, od

    lum, took, od = vclock.run(main)
    assert lum.per_well == (1, 2, 3, 4, 5, 6) and lum.unit_name == "RLU" and took == 120
    assert od.wavelength_nm == 600 and len(od.per_well) == 6


def test_reader_emulator_mode_reads_the_culture(plate, vclock):
    ctx = DriverContext("reader", vclock)
    reader = PLATE_READER.build("emulator", PLATE_READER.parse_config({}), ctx)
    culture = ctx.shared["culture"]

    async def main():
        await reader.connect()
        culture.locations.register_site("bench", 4)
        culture.place(plate, "reader")
        culture.seed(plate, 2e5, 1500)
        culture.add_reagent(plate, "celltiter_glo", 100)
        await vclock.sleep(600)
        reading = await reader.read(plate, "luminescence")
        await reader.disconnect()
        return reading

    assert vclock.run(main).mean > 1000  # ATP signal of the seeded cells, not the chatterbox's zeros


def test_chatterbox_incubator_keeps_its_registry_across_reconnects(plate, vclock):
    inc = INCUBATOR.build("real", INCUBATOR.parse_config({"backend": "chatterbox", "racks": ["cytomat_rack_23mm_21"]}),
                          DriverContext("incubator", vclock))

    async def main():
        await inc.connect()
        assert await inc.check_in(plate) == 1 and await inc.free_slots() == 20
        await inc.fetch(plate)
        await inc.disconnect()
        await inc.connect()
        with pytest.raises(StateError, match="not in a slot"):
            await inc.fetch(plate)
        await inc.store(plate)
        env = await inc.environment()
        status = await inc.status()
        await inc.disconnect()
        return env, status

    env, status = vclock.run(main)
    assert env.temperature_c == 37.0 and env.co2_percent != env.co2_percent  # NaN: a chatterbox has no CO2 sensor
    assert status.plates == ("P1",)


def test_pylabrobot_exceptions_map_into_our_tree():
    import serial
    from pylabrobot.liquid_handling.errors import ChannelizedError
    from pylabrobot.resources.errors import TooLittleLiquidError
    from pylabrobot.storage.cytomat.errors import error_map, error_register_map

    assert isinstance(map_error("d", serial.SerialException("gone")), ConnectionLost)
    assert isinstance(map_error("d", TimeoutError()), InstrumentTimeout)
    assert isinstance(map_error("d", RuntimeError("Cytomat did not respond to command, is it turned on?"), b""),
                      InstrumentTimeout)
    assert isinstance(map_error("d", Exception("Unknown response from cytomat: zz"), b"zz\r\n"), WireProtocolError)
    busy = map_error("d", error_map[0x01])
    assert isinstance(busy, DeviceFault) and busy.code == "01" and busy.recoverable
    location = map_error("d", error_map[0x05], b"er 05\r\n")
    assert location.code == "05" and not location.recoverable and location.raw == b"er 05\r\n"
    (reg, exc), = [(r, e) for r, e in error_register_map.items() if r.value == "0D"]
    assert map_error("d", exc).code == "ER0D"
    channel = map_error("d", ChannelizedError(errors={0: RuntimeError("clot")}))
    assert isinstance(channel, ChannelError) and "clot" in channel.detail
    assert isinstance(map_error("d", TooLittleLiquidError("x")), ChannelError)


def test_wire_tap_keeps_what_a_failed_call_received():
    class FakeIO:
        def __init__(self):
            self.replies = [b"bs 01\r\n", b"er 05\r\n"]

        async def write(self, data):
            pass

        async def read(self, n=1):
            return self.replies.pop(0)

    import asyncio

    tap = WireTap(FakeIO())

    async def main():
        mark = tap.mark()
        await tap.write(b"ch:bs\r\n")
        await tap.read(128)
        await tap.write(b"mv:st 001\r\n")
        await tap.read(128)
        return tap.since(mark), tap.last_reply

    since, last = asyncio.run(main())
    assert since == b"bs 01\r\ner 05\r\n" and last == b"er 05\r\n"
    assert [d for d, _ in tap.transcript] == ["tx", "rx", "tx", "rx"]
