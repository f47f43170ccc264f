"""Simulated incubator: slots at 37 °C, a transfer station, and an atmosphere that dips
when the door opens.

Sites: the transfer station is the instrument's own site (``name``, reachable by the
plate mover); slots are ``"<name>:slot N"`` (N = 1..slots, 37 °C, not reachable by the
mover). ``check_in`` registers an operator-loaded plate onto the lowest free slot
(no time); ``fetch`` moves a plate from its slot to the station (station must be
empty); ``store`` moves it from the station into a free slot (its previous slot when
free). The door is open while a fetch/store runs: temperature, CO₂ and humidity fall
towards the room's and recover exponentially after it closes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from drivers.base import Incubator
from drivers.errors import StateError
from drivers.labware import Plate
from drivers.results import Environment
from simulators.base import SimConfig, SimulatedInstrument, plate_id_of


class IncubatorConfig(SimConfig):
    """Config of the simulated incubator.

    Attributes:
        slots: number of plate slots.
        temperature_c, co2_percent, humidity_percent: initial set points.
        temperature_sd_c, co2_sd_percent, humidity_sd_percent: sensor noise (SD).
    """

    slots: int = Field(default=44, ge=1, le=10_000)
    temperature_c: float = Field(default=37.0, ge=4.0, le=50.0)
    co2_percent: float = Field(default=5.0, ge=0.0, le=20.0)
    humidity_percent: float = Field(default=95.0, ge=0.0, le=100.0)
    temperature_sd_c: float = Field(default=0.05, ge=0.0)
    co2_sd_percent: float = Field(default=0.05, ge=0.0)
    humidity_sd_percent: float = Field(default=0.5, ge=0.0)


# Door (automatic hatch) disturbance: drop rate while open (per s), deepest drop, recovery
# time constant (s). A 30 s fetch costs ~0.15 °C, ~0.6 % CO₂ and ~3 % RH; CO₂ recovers in
# minutes, humidity slowest.
_DOOR = {
    "t": (-0.005, -4.0, 300.0),
    "co2": (-0.02, -5.0, 480.0),
    "rh": (-0.1, -40.0, 900.0),
}


class SimIncubator(SimulatedInstrument, Incubator):
    """Behavioural incubator; implements ``SupportsCO2``, ``SupportsTemperature`` and
    ``SupportsOutcomeQuery``.

    Actions raise:
        StateError: offline, in error, busy, plate not where the action needs it,
            station occupied, no free slot, plate already placed (check_in).
        InstrumentError: a scripted fault.
    """

    config_model: ClassVar[type[SimConfig]] = IncubatorConfig
    model_name: ClassVar[str] = "SimIncubator automated CO2 incubator"
    config: IncubatorConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.config
        self._setpoint = {"t": cfg.temperature_c, "co2": cfg.co2_percent, "rh": cfg.humidity_percent}
        self._dev = {"t": 0.0, "co2": 0.0, "rh": 0.0}
        self._dev_at = 0.0
        self._door_open = 0
        self._door_since = 0.0
        self._reads = 0
        self._home_slot: dict[str, str] = {}

    # -- sites -------------------------------------------------------------------------
    def _register_sites(self) -> None:
        loc = self.culture.locations
        loc.register_site(self.name, self.config.site_capacity or 1, owner=self.name)
        for slot in self.slot_sites():
            loc.register_site(slot, 1, temperature_c=37.0, reachable=False, owner=self.name)

    def slot_sites(self) -> list[str]:
        """Site names of the slots, ``"<name>:slot 1"`` ... in order."""
        return [f"{self.name}:slot {i}" for i in range(1, self.config.slots + 1)]

    def _free_slot(self, prefer: str | None = None) -> str:
        loc = self.culture.locations
        if prefer is not None and loc.free(prefer) > 0:
            return prefer
        for slot in self.slot_sites():
            if loc.free(slot) > 0:
                return slot
        raise StateError(self.name, f"no free slot (all {len(self.slot_sites())} occupied or reserved)")

    def _slot_of(self, plate_id: str) -> str | None:
        site = self.culture.locations.site_of(plate_id)
        return site if site is not None and site.startswith(f"{self.name}:slot ") else None

    async def free_slots(self) -> int:
        """Number of empty (unreserved) slots. Raises StateError when offline."""
        self._require_online()
        return sum(1 for s in self.slot_sites() if self.culture.locations.free(s) > 0)

    # -- actions -----------------------------------------------------------------------
    async def check_in(self, plate: Plate) -> int:
        """Register an operator-loaded plate on the lowest free slot; returns the slot number (1-based)."""
        self._require_ready()
        here = self.culture.locations.site_of(plate.id)
        if here is not None:
            raise StateError(self.name, f"plate {plate.id!r} is already at {here!r}")
        slot = self._free_slot()

        def effect() -> int:
            self.culture.move(plate.id, slot)
            self._home_slot[plate.id] = slot
            return int(slot.rsplit(" ", 1)[1])

        return await self._run("check_in", effect, plate=plate, at=None, reserve=[slot], args={"plate": plate})

    async def fetch(self, plate: Plate) -> None:
        """Move ``plate`` from its slot to the (empty) transfer station."""
        slot = self._slot_of(plate.id)
        if slot is None:
            where = self.culture.locations.site_of(plate.id)
            raise StateError(self.name, f"plate {plate.id!r} is not in a slot of {self.name!r} (it is at {where!r})")
        self._require_ready()
        self.culture.locations.require_room(self.name, self.name)

        def effect() -> None:
            self._home_slot[plate.id] = slot
            self.culture.move(plate.id, self.name)

        await self._run("fetch", effect, plate=plate, at=slot, reserve=[self.name], args={"plate": plate})

    async def store(self, plate: Plate) -> None:
        """Move ``plate`` from the transfer station into a free slot (its previous one when free)."""
        self._require_ready()
        self.culture.locations.require_at(plate.id, self.name, self.name)
        slot = self._free_slot(self._home_slot.get(plate.id))

        def effect() -> None:
            self._home_slot[plate.id] = slot
            self.culture.move(plate.id, slot)

        await self._run("store", effect, plate=plate, reserve=[slot], args={"plate": plate})

    async def environment(self) -> Environment:
        """Temperature (°C), CO₂ (%), humidity (%) and door state, with small sensor noise and drift."""
        return await self._run("environment", self._environment, physical=False)

    def _environment(self) -> Environment:
        now = self.clock.now()
        rng = random.Random(f"{self.rng_seed}:{self.name}:environment:{self._reads}")
        self._reads += 1
        cfg = self.config
        drift = math.sin(2 * math.pi * now / (6 * 3600.0))  # slow 6 h controller wander
        t = self._setpoint["t"] + self._deviation("t", now) + 0.03 * drift + rng.gauss(0, cfg.temperature_sd_c)
        co2 = self._setpoint["co2"] + self._deviation("co2", now) + 0.02 * drift + rng.gauss(0, cfg.co2_sd_percent)
        rh = self._setpoint["rh"] + self._deviation("rh", now) + rng.gauss(0, cfg.humidity_sd_percent)
        return Environment(
            temperature_c=round(t, 2),
            co2_percent=round(max(0.0, co2), 2),
            humidity_percent=round(min(100.0, max(0.0, rh)), 1),
            door_open=self._door_open > 0,
        )

    # -- atmosphere ----------------------------------------------------------------------
    def _deviation(self, key: str, now: float) -> float:
        rate, floor, tau = _DOOR[key]
        dev = self._dev[key] * math.exp(-(now - self._dev_at) / tau)
        if self._door_open:
            dev += rate * (now - self._door_since)
        return max(floor, dev)

    def _settle(self) -> None:
        now = self.clock.now()
        self._dev = {k: self._deviation(k, now) for k in self._dev}
        self._dev_at = self._door_since = now

    def _activity(self, action: str, started: bool) -> None:
        if action not in ("fetch", "store"):
            return
        self._settle()
        self._door_open += 1 if started else -1

    async def set_co2(self, percent: float) -> None:
        """Set the CO₂ set point (%); the reading approaches it over minutes.

        Raises:
            StateError: offline, in error, or outside 0..20 %.
        """
        self._set("co2", percent, 0.0, 20.0, "CO2 set point %")

    async def set_temperature(self, celsius: float) -> None:
        """Set the temperature set point (°C); the reading approaches it over minutes.

        Raises:
            StateError: offline, in error, or outside 4..50 °C.
        """
        self._set("t", celsius, 4.0, 50.0, "temperature set point °C")

    def _set(self, key: str, value: float, low: float, high: float, what: str) -> None:
        self._require_ready(physical=False)
        if not low <= value <= high:
            raise StateError(self.name, f"{what} {value} outside {low}..{high}")
        self._settle()
        self._dev[key] += self._setpoint[key] - value  # the reading is continuous, then relaxes
        self._setpoint[key] = value

    # -- outcome query ---------------------------------------------------------------------
    async def action_outcome(self, action_name: str, args: Mapping[str, Any]) -> bool | None:
        """Did ``check_in``/``fetch``/``store`` of ``args["plate"]`` take effect? Answered from
        where the plate is now (any state); None when it cannot tell or the action is still running."""
        pid = plate_id_of(args.get("plate"))
        if pid is None or pid in self.culture.locations.claims:
            return None
        site = self.culture.locations.site_of(pid)
        in_slot = self._slot_of(pid) is not None
        at_station = site == self.name
        if action_name == "check_in":
            return True if in_slot or at_station else (False if site is None else None)
        if action_name == "fetch":
            return True if at_station else (False if in_slot else None)
        if action_name == "store":
            return True if in_slot else (False if at_station else None)
        return None
