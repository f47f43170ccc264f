"""cellwright driver SDK: instrument interfaces, typed results, errors, clocks, registry.

Importing this package is cheap: no vendor library is imported until a driver that
needs it is created.
"""

from drivers.base import (
    CellCounter,
    Imager,
    Incubator,
    Instrument,
    LiquidHandler,
    PlateMover,
    PlateReader,
    action,
)
from drivers.clock import Clock, VirtualClock, WallClock
from drivers.errors import (
    ChannelError,
    ConfigurationError,
    ConnectionLost,
    DeviceFault,
    InstrumentError,
    InstrumentTimeout,
    StateError,
    WireProtocolError,
)
from drivers.labware import Plate
from drivers.results import CellCount, ConfluenceResult, Environment, Identity, InstrumentStatus, PlateReading

__all__ = [
    "CellCount", "CellCounter", "ChannelError", "Clock", "ConfigurationError", "ConfluenceResult",
    "ConnectionLost", "DeviceFault", "Environment", "Identity", "Imager", "Incubator", "Instrument",
    "InstrumentError", "InstrumentStatus", "InstrumentTimeout", "LiquidHandler", "Plate", "PlateMover",
    "PlateReader", "PlateReading", "StateError", "VirtualClock", "WallClock", "WireProtocolError", "action",
]
