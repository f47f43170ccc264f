"""Simulated plate mover (robot arm) moving plates between sites.

``transfer(plate, source, destination)`` needs the plate at ``source``, both sites known
and reachable (instrument sites and the extra ``sites`` of this config; incubator slots
are not reachable), and room at ``destination`` (reserved for the duration). The plate
arrives when the duration has passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from drivers.base import PlateMover
from drivers.errors import StateError
from drivers.labware import Plate
from simulators.base import SimConfig, SimulatedInstrument, plate_id_of


class PlateMoverConfig(SimConfig):
    """Config of the simulated mover.

    Attributes:
        sites: extra sites the arm serves that are not instruments (hotels, benches) and
            their capacities, e.g. ``{hotel: 10}``.
    """

    sites: dict[str, int] = Field(default_factory=dict)


class SimPlateMover(SimulatedInstrument, PlateMover):
    """Behavioural plate mover; implements ``SupportsOutcomeQuery``.

    ``transfer`` raises:
        StateError: offline, in error, busy, unknown or unreachable site, source equals
            destination, plate not at ``source`` or in use, ``destination`` full.
        InstrumentError: a scripted fault (``when: after`` = the plate did arrive).
    """

    config_model: ClassVar[type[SimConfig]] = PlateMoverConfig
    model_name: ClassVar[str] = "SimMover 4-axis plate handler"
    config: PlateMoverConfig

    def _register_sites(self) -> None:
        for site, capacity in self.config.sites.items():
            self.culture.locations.register_site(site, max(1, capacity), owner=self.name)

    async def transfer(self, plate: Plate, source: str, destination: str) -> None:
        """Move ``plate`` from site ``source`` to site ``destination``."""
        self._require_ready()

        def check() -> None:
            loc = self.culture.locations
            if source == destination:
                raise StateError(self.name, f"source and destination are both {source!r}")
            for site in (source, destination):
                if not loc.site(site, self.name).reachable:
                    raise StateError(self.name, f"site {site!r} is not reachable by the plate mover")
            loc.require_room(destination, self.name)

        await self._run(
            "transfer",
            lambda: self.culture.move(plate.id, destination),
            plate=plate,
            at=source,
            check=check,
            reserve=[destination],
            args={"plate": plate, "source": source, "destination": destination},
        )

    async def action_outcome(self, action_name: str, args: Mapping[str, Any]) -> bool | None:
        """Did ``transfer`` of ``args["plate"]`` to ``args["destination"]`` happen? True when the
        plate is there, False when still at ``source``, None otherwise or while running (any state)."""
        pid = plate_id_of(args.get("plate"))
        if action_name != "transfer" or pid is None or pid in self.culture.locations.claims:
            return None
        site = self.culture.locations.site_of(pid)
        if site is not None and site == args.get("destination"):
            return True
        if site is not None and site == args.get("source"):
            return False
        return None
