"""Helpers for the simulator tests: a whole simulated workcell in virtual time."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from drivers.clock import VirtualClock
from drivers.labware import LabwareModel, Plate, labware_model
from drivers.spec import DriverContext
from simulators.counter import SimCellCounter
from simulators.culture import CultureModel, culture_of
from simulators.imager import SimImager
from simulators.incubator import SimIncubator
from simulators.liquid_handler import SimLiquidHandler
from simulators.mover import SimPlateMover
from simulators.reader import SimPlateReader
from simulators.specs import SPECS

T = TypeVar("T")
HOUR = 3600.0
ONE_WELL = LabwareModel("test_1_well", 1, 1, 9.5, 3000.0)


def plate(pid: str = "P1", model: str | LabwareModel = "corning_6_wellplate", cell_type: str | None = "ipsc") -> Plate:
    m = labware_model(model) if isinstance(model, str) else model
    return Plate(pid, m, cell_line="201B7", cell_type=cell_type, home="incubator")


@dataclass
class Workcell:
    """Six simulators named after their class, sharing one culture model."""

    clock: VirtualClock
    seed: int = 0
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        def make(kind: str) -> Any:
            spec = SPECS[f"sim.{kind}"]
            ctx = DriverContext(name=kind, clock=self.clock, seed=self.seed, shared=self.shared)
            return spec.create_simulator(spec.parse_config(self.configs.get(kind, {})), ctx)

        self.incubator: SimIncubator = make("incubator")
        self.lh: SimLiquidHandler = make("liquid_handler")
        self.mover: SimPlateMover = make("plate_mover")
        self.imager: SimImager = make("imager")
        self.reader: SimPlateReader = make("plate_reader")
        self.counter: SimCellCounter = make("cell_counter")
        self.culture: CultureModel = culture_of(DriverContext("test", self.clock, self.seed, self.shared))

    @property
    def all(self) -> list[Any]:
        return [self.incubator, self.lh, self.mover, self.imager, self.reader, self.counter]

    async def connect(self) -> None:
        for inst in self.all:
            await inst.connect()

    async def to(self, p: Plate, destination: str) -> None:
        """Move a plate to ``destination`` through the mover (fetching/storing at the incubator)."""
        here = self.culture.locations.site_of(p.id)
        assert here is not None
        if here.startswith("incubator:slot"):
            await self.incubator.fetch(p)
            here = "incubator"
        if destination == "incubator:slot":
            if here != "incubator":
                await self.mover.transfer(p, here, "incubator")
            await self.incubator.store(p)
            return
        if here != destination:
            await self.mover.transfer(p, here, destination)

    async def load_and_seed(self, p: Plate, cells_per_well: float = 1.3e5, volume_ul: float = 1500.0) -> None:
        """check_in -> fetch -> liquid handler -> seed -> back to a slot."""
        await self.incubator.check_in(p)
        await self.to(p, "liquid_handler")
        await self.lh.seed(p, cells_per_well, volume_ul)
        await self.to(p, "incubator:slot")


def run(main: Callable[[VirtualClock], Coroutine[Any, Any, T]]) -> T:
    """Run ``main(clock)`` on a fresh virtual clock."""
    clock = VirtualClock()
    return clock.run(main(clock))
