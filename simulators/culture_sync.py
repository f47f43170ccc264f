"""Keep the shared culture model consistent when real drivers run on emulators.

In a workcell where some instruments are behavioural simulators and others are real
drivers talking to wire-level emulators (``simulate: emulator``), every plate's
location and culture state lives in one :class:`~simulators.culture.CultureModel`
(``ctx.shared["culture"]``). The wrappers here sit around the *unmodified* real driver
and do what the behavioural simulators do around their own actions:

1. check the plate is at the right site and the culture allows the action
   (:class:`~drivers.errors.StateError`, nothing touched);
2. claim the plate, call the real driver (wire traffic, device time);
3. on success apply the same culture effect a simulator would (location move, seed,
   medium exchange...); on failure change nothing.

Anything else (capabilities, ``emulator``, ``transcript``...) is delegated to the
wrapped driver.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from drivers.base import CellCounter, Incubator, Instrument, LiquidHandler, PlateReader
from drivers.errors import StateError
from drivers.labware import Plate
from drivers.results import CellCount, Environment, Identity, InstrumentStatus, PlateReading
from simulators import assays
from simulators.base import plate_id_of
from simulators.culture import CultureModel


class _Synced(Instrument):
    """Delegating base: lifecycle goes to ``inner``; status lists the culture's plates."""

    def __init__(self, inner: Instrument, culture: CultureModel) -> None:
        super().__init__(inner.name, inner.clock, inner.durations)
        self.inner = inner
        self.culture = culture
        if inner.name not in culture.locations.sites:
            culture.locations.register_site(inner.name, 1, owner=inner.name)

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)

    def duration_of(self, action_name: str, **args: Any) -> float:
        return self.inner.duration_of(action_name, **args)

    async def connect(self) -> None:
        await self.inner.connect()

    async def disconnect(self) -> None:
        await self.inner.disconnect()

    async def identify(self) -> Identity:
        return await self.inner.identify()

    async def status(self) -> InstrumentStatus:
        s = await self.inner.status()
        own = [n for n, site in self.culture.locations.sites.items() if site.owner == self.name]
        plates = tuple(sorted(p for n in own for p in self.culture.locations.plates_at(n)))
        return InstrumentStatus(s.state, s.detail, s.error_code, plates)

    async def abort(self) -> None:
        await self.inner.abort()

    async def reset_error(self) -> None:
        await self.inner.reset_error()

    @contextlib.contextmanager
    def _working_on(self, plate: Plate, at: str | None = "") -> Iterator[None]:
        """Check the plate's site (``""`` = this instrument's), claim it for the call."""
        loc = self.culture.locations
        self.culture.plate(plate)
        if at is not None:
            loc.require_at(plate.id, at or self.name, self.name)
        loc.claim(plate.id, self.name)
        try:
            yield
        finally:
            loc.release(plate.id, self.name)


class SyncedLiquidHandler(_Synced, LiquidHandler):
    """A real liquid-handler driver whose successful actions also update the culture."""

    async def seed(self, plate: Plate, cells_per_well: float, volume_ul: float) -> None:
        self.culture.check_seed(plate, cells_per_well, volume_ul, self.name)
        with self._working_on(plate):
            await self.inner.seed(plate, cells_per_well, volume_ul)  # type: ignore[attr-defined]
            self.culture.seed(plate, cells_per_well, volume_ul, device=self.name)

    async def exchange_medium(self, plate: Plate, volume_ul: float, medium: str = "mTeSR Plus") -> None:
        self.culture.check_exchange(plate, volume_ul, self.name)
        with self._working_on(plate):
            await self.inner.exchange_medium(plate, volume_ul, medium)  # type: ignore[attr-defined]
            self.culture.exchange_medium(plate, volume_ul, medium, self.name)

    async def dissociate(self, plate: Plate, volume_ul: float, reagent: str = "accutase") -> None:
        self.culture.check_dissociate(plate, volume_ul, self.name)
        with self._working_on(plate):
            await self.inner.dissociate(plate, volume_ul, reagent)  # type: ignore[attr-defined]
            self.culture.dissociate(plate, volume_ul, reagent, self.name)

    async def harvest(self, plate: Plate, volume_ul: float) -> None:
        self.culture.check_harvest(plate, volume_ul, self.name)
        with self._working_on(plate):
            await self.inner.harvest(plate, volume_ul)  # type: ignore[attr-defined]
            self.culture.harvest(plate, volume_ul, self.name)

    async def reseed(self, plate: Plate, split_ratio: float, volume_ul: float) -> None:
        self.culture.check_reseed(plate, split_ratio, volume_ul, self.name)
        with self._working_on(plate):
            await self.inner.reseed(plate, split_ratio, volume_ul)  # type: ignore[attr-defined]
            self.culture.reseed(plate, split_ratio, volume_ul, device=self.name)

    async def add_reagent(self, plate: Plate, reagent: str, volume_ul: float) -> None:
        self.culture.check_add_reagent(plate, reagent, volume_ul, self.name)
        with self._working_on(plate):
            await self.inner.add_reagent(plate, reagent, volume_ul)  # type: ignore[attr-defined]
            self.culture.add_reagent(plate, reagent, volume_ul, self.name)


class SyncedIncubator(_Synced, Incubator):
    """A real incubator driver (with ``slots`` and ``slot_of``) mirrored into the culture:
    its transfer station is the site ``<name>``, its slots ``<name>:slot N`` (37 °C)."""

    def __init__(self, inner: Instrument, culture: CultureModel) -> None:
        super().__init__(inner, culture)
        for n in range(1, int(self.slots) + 1):
            culture.locations.register_site(f"{self.name}:slot {n}", 1, temperature_c=37.0, reachable=False,
                                            owner=self.name)

    def _sense(self) -> None:
        """Let an emulated device's sensors see the plates other instruments moved."""
        seen = getattr(self.inner, "station_seen", None)
        if seen is not None:
            seen(bool(self.culture.locations.plates_at(self.name)))

    def _slot_site(self, plate_id: str) -> str | None:
        site = self.culture.locations.site_of(plate_id)
        return site if site is not None and site.startswith(f"{self.name}:slot ") else None

    async def check_in(self, plate: Plate) -> int:
        here = self.culture.locations.site_of(plate.id)
        if here is not None:
            raise StateError(self.name, f"plate {plate.id!r} is already at {here!r}")
        slot = await self.inner.check_in(plate)  # type: ignore[attr-defined]
        self.culture.place(plate, f"{self.name}:slot {slot}", self.name)
        return int(slot)

    async def fetch(self, plate: Plate) -> None:
        slot = self._slot_site(plate.id)
        if slot is None:
            raise StateError(self.name, f"plate {plate.id!r} is not in a slot of {self.name!r} "
                                        f"(it is at {self.culture.locations.site_of(plate.id)!r})")
        self.culture.locations.require_room(self.name, self.name)
        self._sense()
        with self._working_on(plate, at=slot):
            await self.inner.fetch(plate)  # type: ignore[attr-defined]
            self.culture.move(plate.id, self.name)

    async def store(self, plate: Plate) -> None:
        self._sense()
        with self._working_on(plate):
            await self.inner.store(plate)  # type: ignore[attr-defined]
            slot = self.inner.slot_of(plate.id)  # type: ignore[attr-defined]
            self.culture.move(plate.id, f"{self.name}:slot {slot}")

    async def action_outcome(self, action_name: str, args: Mapping[str, Any]) -> bool | None:
        """The wrapped driver's answer; when a move did happen, the culture follows."""
        query = getattr(self.inner, "action_outcome", None)
        if query is None:
            return None
        self._sense()
        happened = await query(action_name, args)
        plate_id = plate_id_of(args.get("plate"))
        if happened and plate_id is not None and plate_id not in self.culture.locations.claims:
            if action_name == "fetch" and self._slot_site(plate_id) is not None:
                self.culture.move(plate_id, self.name)
            elif action_name == "store" and self.culture.locations.site_of(plate_id) == self.name:
                slot = self.inner.slot_of(plate_id)  # type: ignore[attr-defined]
                if slot is not None:
                    self.culture.move(plate_id, f"{self.name}:slot {slot}")
        return happened  # type: ignore[no-any-return]

    async def status(self) -> InstrumentStatus:
        self._sense()
        return await super().status()

    async def environment(self) -> Environment:
        self._sense()
        return await self.inner.environment()  # type: ignore[attr-defined, no-any-return]

    async def free_slots(self) -> int:
        return await self.inner.free_slots()  # type: ignore[attr-defined, no-any-return]


class SyncedCellCounter(_Synced, CellCounter):
    """A real counter driver; :meth:`numbers` is what its emulator should report."""

    def __init__(self, inner: Instrument, culture: CultureModel, noise: float = 0.03, sample_ul: float = 0.4) -> None:
        super().__init__(inner, culture)
        self._pending: dict[str, Plate] = {}
        self.noise, self.sample_ul = noise, sample_ul

    def numbers(self, sample: str) -> Mapping[str, float]:
        """Culture-derived count of the plate whose wire sample id is ``sample``."""
        plate = self._pending.get(sample)
        if plate is None:
            raise KeyError(sample)
        c = assays.count(self.culture, plate, self.noise, self.sample_ul, self.name)
        return {"total": c.total_per_ml, "viable": c.viable_per_ml, "viab": c.viability,
                "diam": c.mean_diameter_um, "vol": c.volume_ml}

    async def count(self, plate: Plate) -> CellCount:
        from drivers.serial_counter.protocol import sample_token

        assays.check_count(self.culture, plate, self.name)
        with self._working_on(plate):
            self._pending[sample_token(plate.id)] = plate
            return await self.inner.count(plate)  # type: ignore[attr-defined, no-any-return]


class SyncedPlateReader(_Synced, PlateReader):
    """A real reader driver with a ``preset(mode, per_well)`` hook (chatterbox values),
    preset from the culture before each read."""

    def __init__(self, inner: Instrument, culture: CultureModel, noise: float = 0.03) -> None:
        super().__init__(inner, culture)
        self.noise = noise

    async def read(self, plate: Plate, mode: str = "luminescence", wavelength_nm: float | None = None) -> PlateReading:
        assays.check_mode(mode, self.name)
        with self._working_on(plate):
            expected = assays.read(self.culture, plate, mode, wavelength_nm, self.noise, self.name)
            self.inner.preset(mode, expected.per_well)  # type: ignore[attr-defined]
            return await self.inner.read(plate, mode, wavelength_nm)  # type: ignore[attr-defined, no-any-return]


# -- emulator-mode factories of the pylabrobot drivers ------------------------------------------

_NO_HARDWARE = {"star": "star_chatterbox", "ot2": "ot2_simulator"}


def plr_liquid_handler(config: Any, ctx: Any) -> Instrument:
    """``create_emulator`` of ``plr.liquid_handler``: pylabrobot's unmodified frontend with
    tracking on and a backend that needs no hardware (``star`` -> ``star_chatterbox``,
    which generates the real STAR firmware strings; ``ot2`` -> ``ot2_simulator``), its
    step durations on the clock, mirrored into the culture model; ``auto_replenish`` on
    unless the config sets it."""
    from drivers.plr.liquid_handler import PLRLiquidHandler
    from simulators.culture import culture_of

    update = {"backend": _NO_HARDWARE.get(config.backend, config.backend)}
    if "auto_replenish" not in config.model_fields_set:
        update["auto_replenish"] = True  # a long emulated campaign has an operator refilling the deck
    config = config.model_copy(update=update)
    return SyncedLiquidHandler(PLRLiquidHandler(ctx.name, ctx.clock, config), culture_of(ctx))


def plr_plate_reader(config: Any, ctx: Any) -> Instrument:
    """``create_emulator`` of ``plr.plate_reader``: pylabrobot's frontend on its chatterbox
    backend, preset before each read with the culture model's expected signal."""
    from drivers.plr.plate_reader import PLRPlateReader
    from simulators.culture import culture_of

    config = config.model_copy(update={"backend": "chatterbox"})
    return SyncedPlateReader(PLRPlateReader(ctx.name, ctx.clock, config), culture_of(ctx))
