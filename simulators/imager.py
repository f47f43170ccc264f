"""Simulated brightfield imager: confluence per well from the culture model with
seeded multiplicative noise (``noise``, default 3 %)."""

from __future__ import annotations

from typing import ClassVar

from drivers.base import Imager
from drivers.labware import Plate
from drivers.results import ConfluenceResult
from simulators import assays
from simulators.base import MeasureConfig, SimConfig, SimulatedInstrument


class ImagerConfig(MeasureConfig):
    """Config of the simulated imager (``noise``: relative SD of confluence per well)."""


class SimImager(SimulatedInstrument, Imager):
    """Behavioural imager.

    ``confluence`` raises:
        StateError: offline, in error, busy, plate not at the imager or in use.
        InstrumentError: a scripted fault.
    """

    config_model: ClassVar[type[SimConfig]] = ImagerConfig
    model_name: ClassVar[str] = "SimImager brightfield"
    config: ImagerConfig

    async def confluence(self, plate: Plate) -> ConfluenceResult:
        """Image every well; confluence per well as a fraction 0..1 (rounded cells read lower while dissociated)."""
        return await self._run(
            "confluence",
            lambda: assays.confluence(self.culture, plate, self.config.noise),
            plate=plate,
            args={"plate": plate},
        )
