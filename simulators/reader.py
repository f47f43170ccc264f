"""Simulated plate reader: luminescence (ATP), fluorescence (resazurin), absorbance.

Signals come from the culture model (:func:`simulators.assays.read`); the plate must be
at the reader's site.
"""

from __future__ import annotations

from typing import ClassVar

from drivers.base import PlateReader
from drivers.errors import StateError
from drivers.labware import Plate
from drivers.results import PlateReading
from simulators import assays
from simulators.base import MeasureConfig, SimConfig, SimulatedInstrument


class PlateReaderConfig(MeasureConfig):
    """Config of the simulated plate reader (``noise``: relative SD of the signal)."""


class SimPlateReader(SimulatedInstrument, PlateReader):
    """Behavioural plate reader; implements ``SupportsShaking``.

    ``read`` raises:
        StateError: offline, in error, busy, plate not here or in use, unknown mode.
        InstrumentError: a scripted fault.
    """

    config_model: ClassVar[type[SimConfig]] = PlateReaderConfig
    model_name: ClassVar[str] = "SimReader multimode"
    config: PlateReaderConfig

    async def read(self, plate: Plate, mode: str = "luminescence", wavelength_nm: float | None = None) -> PlateReading:
        """Read every well in ``mode``: RLU ∝ viable cells after CellTiter-Glo, RFU, or OD."""
        return await self._run(
            "read",
            lambda: assays.read(self.culture, plate, mode, wavelength_nm, self.config.noise, self.name),
            plate=plate,
            check=lambda: assays.check_mode(mode, self.name),
            args={"plate": plate, "mode": mode, "wavelength_nm": wavelength_nm},
        )

    async def shake(self, seconds: float, rpm: float) -> None:
        """Shake the plate carrier for ``seconds`` s at ``rpm`` (takes ``seconds`` on the clock).

        Raises:
            StateError: offline, in error, busy, or non-positive arguments.
        """

        def check() -> None:
            if seconds < 0 or rpm <= 0:
                raise StateError(self.name, f"shake needs seconds >= 0 and rpm > 0 (got {seconds}, {rpm})")

        await self._run("shake", lambda: None, check=check, duration=seconds)
