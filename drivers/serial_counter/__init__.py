"""``serial.cc1_counter``: a cell counter on the CC-1 line protocol over pyserial.

See :mod:`drivers.serial_counter.protocol` for the bytes and
:mod:`drivers.serial_counter.driver` for the driver. The emulator lives in
:mod:`simulators.counter_emulator` and is named here only as a string.
"""

from __future__ import annotations

from drivers.base import CellCounter
from drivers.serial_counter.driver import SerialCellCounter, SerialCounterConfig
from drivers.spec import DriverSpec

SPEC = DriverSpec(
    name="serial.cc1_counter",
    instrument_class=CellCounter,
    config_model=SerialCounterConfig,
    create="drivers.serial_counter.driver:create",
    create_simulator="drivers.serial_counter.sim:create_simulator",
    create_emulator="simulators.counter_emulator:create_emulated",
    description="cell counter on the CC-1 ASCII line protocol (pyserial serial_for_url: tty, socket://)",
    transport="serial",
    driver_class=SerialCellCounter,
)

__all__ = ["SPEC", "SerialCellCounter", "SerialCounterConfig"]
