"""Simulator mode of ``serial.cc1_counter``: the behavioural ``sim.cell_counter``."""

from __future__ import annotations

from drivers.base import Instrument
from drivers.serial_counter.driver import SerialCounterConfig
from drivers.spec import DriverContext, get_driver


def create_simulator(config: SerialCounterConfig, ctx: DriverContext) -> Instrument:
    """Build the registry's ``sim.cell_counter`` with this config's duration overrides."""
    spec = get_driver("sim.cell_counter")
    return spec.build("simulator", spec.parse_config({"durations": dict(config.durations)}), ctx)
