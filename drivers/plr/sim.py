"""Simulator mode of the pylabrobot drivers: the registry's behavioural simulators.

The behavioural simulators live in :mod:`simulators` and are reached through the
registry (``sim.<instrument_class>``), so this package never imports them.
"""

from __future__ import annotations

from drivers.base import Instrument
from drivers.spec import DriverConfig, DriverContext, get_driver


def simulated(instrument_class: str, config: DriverConfig, ctx: DriverContext) -> Instrument:
    """Build ``sim.<instrument_class>`` with this config's duration overrides."""
    spec = get_driver(f"sim.{instrument_class}")
    return spec.build("simulator", spec.parse_config({"durations": dict(config.durations)}), ctx)


def liquid_handler(config: DriverConfig, ctx: DriverContext) -> Instrument:
    """``create_simulator`` of ``plr.liquid_handler``."""
    return simulated("liquid_handler", config, ctx)


def incubator(config: DriverConfig, ctx: DriverContext) -> Instrument:
    """``create_simulator`` of ``plr.cytomat`` / ``plr.incubator``: ``sim.incubator`` with as many slots."""
    from drivers.plr.incubator import PLRIncubatorConfig, build_racks

    spec = get_driver("sim.incubator")
    raw: dict[str, object] = {"durations": dict(config.durations)}
    if isinstance(config, PLRIncubatorConfig):
        raw["slots"] = sum(r.capacity for r in build_racks(config, ctx.name))
    return spec.build("simulator", spec.parse_config(raw), ctx)


def plate_reader(config: DriverConfig, ctx: DriverContext) -> Instrument:
    """``create_simulator`` of ``plr.plate_reader``."""
    return simulated("plate_reader", config, ctx)
