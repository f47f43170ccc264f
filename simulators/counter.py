"""Simulated automated cell counter (trypan blue / AO-PI).

Counts the plate's harvested suspension, or with none the cells of its wells in their
medium, with Poisson counting error in the imaged sample volume plus instrument noise.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from drivers.base import CellCounter
from drivers.labware import Plate
from drivers.results import CellCount
from simulators import assays
from simulators.base import MeasureConfig, SimConfig, SimulatedInstrument


class CellCounterConfig(MeasureConfig):
    """Config of the simulated counter.

    Attributes:
        noise: instrument relative SD on top of counting statistics.
        sample_ul: volume actually imaged per count, µL (sets the Poisson error).
    """

    sample_ul: float = Field(default=0.4, gt=0.0, le=100.0)


class SimCellCounter(SimulatedInstrument, CellCounter):
    """Behavioural cell counter.

    ``count`` raises:
        StateError: offline, in error, busy, plate not at the counter or in use, no cells.
        InstrumentError: a scripted fault.
    """

    config_model: ClassVar[type[SimConfig]] = CellCounterConfig
    model_name: ClassVar[str] = "SimCounter AO/PI"
    config: CellCounterConfig

    async def count(self, plate: Plate) -> CellCount:
        """Total and viable cells per mL, viability and mean diameter (µm) of the sample."""
        cfg = self.config
        return await self._run(
            "count",
            lambda: assays.count(self.culture, plate, cfg.noise, cfg.sample_ul, self.name),
            plate=plate,
            check=lambda: assays.check_count(self.culture, plate, self.name),
            args={"plate": plate},
        )
