"""Adapters over pylabrobot 0.2.2: liquid handlers, incubators, plate readers.

Importing this package imports no pylabrobot code; the adapters import it when a
driver is created. Registry names:

* ``plr.liquid_handler`` — :mod:`drivers.plr.liquid_handler` (STAR/STARlet, OT-2 via
  pylabrobot, chatterboxes), volume and tip tracking on;
* ``plr.cytomat`` — :mod:`drivers.plr.incubator` with a Cytomat backend; its emulator
  mode runs pylabrobot's unmodified ``CytomatBackend`` against
  :mod:`simulators.cytomat_emulator` on a pty;
* ``plr.incubator`` — the same adapter, any backend (``liconic``, chatterboxes);
* ``plr.plate_reader`` — :mod:`drivers.plr.plate_reader` (CLARIOstar, Cytation 5,
  Synergy H1, chatterbox).
"""

from __future__ import annotations

from dataclasses import replace

from drivers.base import Incubator, LiquidHandler, PlateReader
from drivers.plr.incubator import PLRIncubator, PLRIncubatorConfig
from drivers.plr.liquid_handler import PLRLiquidHandler, PLRLiquidHandlerConfig
from drivers.plr.plate_reader import PLRPlateReader, PLRPlateReaderConfig
from drivers.spec import DriverSpec

LIQUID_HANDLER = DriverSpec(
    name="plr.liquid_handler",
    instrument_class=LiquidHandler,
    config_model=PLRLiquidHandlerConfig,
    create="drivers.plr.liquid_handler:create",
    create_simulator="drivers.plr.sim:liquid_handler",
    create_emulator="simulators.culture_sync:plr_liquid_handler",
    description="pylabrobot LiquidHandler (STAR/STARlet, OT-2, chatterbox) with volume and tip tracking",
    transport="usb",
    driver_class=PLRLiquidHandler,
)


class CytomatConfig(PLRIncubatorConfig):
    """``plr.cytomat`` config: :class:`PLRIncubatorConfig` (backend defaults to ``cytomat``)."""


INCUBATOR = DriverSpec(
    name="plr.incubator",
    instrument_class=Incubator,
    config_model=PLRIncubatorConfig,
    create="drivers.plr.incubator:create",
    create_simulator="drivers.plr.sim:incubator",
    create_emulator="simulators.cytomat_emulator:create_emulated",
    description="pylabrobot storage.Incubator (Cytomat, Liconic, chatterbox); emulator: Cytomat on a pty",
    transport="serial",
    driver_class=PLRIncubator,
)

CYTOMAT = replace(
    INCUBATOR,
    name="plr.cytomat",
    config_model=CytomatConfig,
    description="Thermo Cytomat through pylabrobot's CytomatBackend (serial); emulator on a pty",
)
"""``plr.incubator`` under the Cytomat name, config model and description."""

PLATE_READER = DriverSpec(
    name="plr.plate_reader",
    instrument_class=PlateReader,
    config_model=PLRPlateReaderConfig,
    create="drivers.plr.plate_reader:create",
    create_simulator="drivers.plr.sim:plate_reader",
    create_emulator="simulators.culture_sync:plr_plate_reader",
    description="pylabrobot PlateReader (CLARIOstar, Cytation 5, Synergy H1, chatterbox)",
    transport="usb",
    driver_class=PLRPlateReader,
)

__all__ = ["CYTOMAT", "INCUBATOR", "LIQUID_HANDLER", "PLATE_READER", "PLRIncubator", "PLRLiquidHandler",
           "PLRPlateReader"]
