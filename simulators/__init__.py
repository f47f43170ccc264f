"""Behavioural simulators for every instrument class, the shared culture model and
fault injection. See ``docs/simulators.md``.

Build a simulated workcell through the registry specs (:mod:`simulators.specs`) with one
``shared`` dict for all instruments, so they share one culture and location model.
"""

from simulators.base import MeasureConfig, SimConfig, SimulatedInstrument
from simulators.culture import CultureModel, culture_of
from simulators.faults import FaultPlan, FaultSpec

__all__ = ["CultureModel", "FaultPlan", "FaultSpec", "MeasureConfig", "SimConfig", "SimulatedInstrument", "culture_of"]
