"""``opentrons.ot2``: an OT-2 / Flex liquid handler over the robot's HTTP API.

Nothing here imports ``opentrons`` at import time: :mod:`drivers.opentrons.preflight`
imports ``opentrons.simulate`` (~1.8 s) only when a protocol is simulated.
"""

from __future__ import annotations

from drivers.base import LiquidHandler
from drivers.opentrons.driver import OpentronsConfig, OpentronsLiquidHandler
from drivers.opentrons.preflight import PreflightReport, preflight
from drivers.spec import DriverSpec

SPEC = DriverSpec(
    name="opentrons.ot2",
    instrument_class=LiquidHandler,
    config_model=OpentronsConfig,
    create="drivers.opentrons.driver:create",
    create_simulator="drivers.plr.sim:liquid_handler",
    create_emulator="simulators.opentrons_emulator:create_emulated",
    description="Opentrons OT-2 / Flex over the robot HTTP API (port 31950); opentrons.simulate preflight",
    transport="http",
    driver_class=OpentronsLiquidHandler,
    preflight="drivers.opentrons.preflight:check_step",
)

__all__ = ["SPEC", "OpentronsConfig", "OpentronsLiquidHandler", "PreflightReport", "preflight"]
