"""Simulated liquid handler: seeding, feeding and passaging plates at its deck site.

Every action needs the plate at this instrument's site (moved there by the plate
mover) and checks the culture first (:class:`~simulators.culture.CultureModel`); the
effect is applied when the action's duration has passed.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from drivers.base import LiquidHandler
from drivers.labware import Plate
from simulators.base import SimConfig, SimulatedInstrument


class LiquidHandlerConfig(SimConfig):
    """Config of the simulated liquid handler.

    Attributes:
        seeding_cv: relative SD of the cells dispensed per well (seed and reseed).
    """

    seeding_cv: float = Field(default=0.05, ge=0.0, le=0.5)


class SimLiquidHandler(SimulatedInstrument, LiquidHandler):
    """Behavioural liquid handler (durations from ``drivers.base`` unless overridden).

    All actions raise:
        StateError: offline, in error, busy, plate not at this site or in use, or the
            culture does not allow it (seeding an occupied plate, reseeding without a
            harvest, exchanging medium with no cells, volume over the well's working volume).
        InstrumentError: a scripted fault (its class follows the fault's ``kind``).
    """

    config_model: ClassVar[type[SimConfig]] = LiquidHandlerConfig
    model_name: ClassVar[str] = "SimLiquidHandler 8-channel"
    config: LiquidHandlerConfig

    async def seed(self, plate: Plate, cells_per_well: float, volume_ul: float) -> None:
        """Seed ``cells_per_well`` viable cells in ``volume_ul`` µL per well into an empty plate."""
        c, cv = self.culture, self.config.seeding_cv
        await self._run(
            "seed",
            lambda: c.seed(plate, cells_per_well, volume_ul, cv, self.name),
            plate=plate,
            check=lambda: c.check_seed(plate, cells_per_well, volume_ul, self.name),
            args={"plate": plate, "cells_per_well": cells_per_well, "volume_ul": volume_ul},
        )

    async def exchange_medium(self, plate: Plate, volume_ul: float, medium: str = "mTeSR Plus") -> None:
        """Replace spent medium with ``volume_ul`` µL of fresh ``medium`` per well (resets medium age)."""
        c = self.culture
        await self._run(
            "exchange_medium",
            lambda: c.exchange_medium(plate, volume_ul, medium, self.name),
            plate=plate,
            check=lambda: c.check_exchange(plate, volume_ul, self.name),
            args={"plate": plate, "volume_ul": volume_ul, "medium": medium},
        )

    async def dissociate(self, plate: Plate, volume_ul: float, reagent: str = "accutase") -> None:
        """Replace medium by ``volume_ul`` µL of ``reagent``; a second dose on detached cells crashes viability."""
        c = self.culture
        await self._run(
            "dissociate",
            lambda: c.dissociate(plate, volume_ul, reagent, self.name),
            plate=plate,
            check=lambda: c.check_dissociate(plate, volume_ul, self.name),
            args={"plate": plate, "volume_ul": volume_ul, "reagent": reagent},
        )

    async def harvest(self, plate: Plate, volume_ul: float) -> None:
        """Neutralise with ``volume_ul`` µL per well and collect every well into one suspension."""
        c = self.culture
        await self._run(
            "harvest",
            lambda: c.harvest(plate, volume_ul, self.name),
            plate=plate,
            check=lambda: c.check_harvest(plate, volume_ul, self.name),
            args={"plate": plate, "volume_ul": volume_ul},
        )

    async def reseed(self, plate: Plate, split_ratio: float, volume_ul: float) -> None:
        """Reseed ``1/split_ratio`` of the harvested suspension into the plate's wells in ``volume_ul`` µL."""
        c, cv = self.culture, self.config.seeding_cv
        await self._run(
            "reseed",
            lambda: c.reseed(plate, split_ratio, volume_ul, cv, self.name),
            plate=plate,
            check=lambda: c.check_reseed(plate, split_ratio, volume_ul, self.name),
            args={"plate": plate, "split_ratio": split_ratio, "volume_ul": volume_ul},
        )

    async def add_reagent(self, plate: Plate, reagent: str, volume_ul: float) -> None:
        """Add ``volume_ul`` µL of ``reagent`` per well (CellTiter-Glo lyses the cells: end-point assay)."""
        c = self.culture
        await self._run(
            "add_reagent",
            lambda: c.add_reagent(plate, reagent, volume_ul, self.name),
            plate=plate,
            check=lambda: c.check_add_reagent(plate, reagent, volume_ul, self.name),
            args={"plate": plate, "reagent": reagent, "volume_ul": volume_ul},
        )
