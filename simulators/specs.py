"""Registry entries of the six behavioural simulators (``sim.<instrument_class>``).

For a pure simulator ``create`` and ``create_simulator`` are the same factory: it
builds the simulator from its config and a :class:`~drivers.spec.DriverContext`,
sharing the workcell's culture model through ``ctx.shared["culture"]``.
"""

from __future__ import annotations

from typing import Any

from drivers.base import CellCounter, Imager, Incubator, Instrument, LiquidHandler, PlateMover, PlateReader
from drivers.spec import DriverContext, DriverSpec
from simulators.base import SimulatedInstrument
from simulators.counter import CellCounterConfig, SimCellCounter
from simulators.imager import ImagerConfig, SimImager
from simulators.incubator import IncubatorConfig, SimIncubator
from simulators.liquid_handler import LiquidHandlerConfig, SimLiquidHandler
from simulators.mover import PlateMoverConfig, SimPlateMover
from simulators.reader import PlateReaderConfig, SimPlateReader


def _spec(interface: type[Any], cls: type[SimulatedInstrument], config: type[Any], description: str) -> DriverSpec:
    """A spec whose real and simulator factories are both ``cls.from_context``."""

    def create(cfg: Any, ctx: DriverContext) -> Instrument:
        return cls.from_context(cfg, ctx)

    return DriverSpec(
        name=f"sim.{interface.instrument_class}",
        instrument_class=interface,
        config_model=config,
        create=create,
        create_simulator=create,
        description=description,
        transport="in-process",
        driver_class=cls,
    )


LIQUID_HANDLER = _spec(
    LiquidHandler, SimLiquidHandler, LiquidHandlerConfig, "Behavioural liquid handler over the shared culture model"
)
INCUBATOR = _spec(
    Incubator, SimIncubator, IncubatorConfig, "Behavioural incubator: slots, transfer station, atmosphere"
)
PLATE_READER = _spec(PlateReader, SimPlateReader, PlateReaderConfig, "Behavioural plate reader: ATP, resazurin, OD")
IMAGER = _spec(Imager, SimImager, ImagerConfig, "Behavioural imager reporting confluence with seeded noise")
CELL_COUNTER = _spec(CellCounter, SimCellCounter, CellCounterConfig, "Behavioural cell counter with counting noise")
PLATE_MOVER = _spec(PlateMover, SimPlateMover, PlateMoverConfig, "Behavioural plate mover between instrument sites")

SPECS: dict[str, DriverSpec] = {
    s.name: s for s in (LIQUID_HANDLER, INCUBATOR, PLATE_READER, IMAGER, CELL_COUNTER, PLATE_MOVER)
}
"""Every simulator spec by registry name."""
