"""Incubator adapter over pylabrobot's ``storage.Incubator`` (Cytomat, Liconic, chatterboxes).

The pylabrobot frontend keeps the resource tree (which plate is in which rack site
or on the loading tray) and updates it only after the backend succeeded — the
commit-after-hardware rule. This adapter adds our contract on top: the plate registry
survives a reconnect, every call has a clock timeout, every failure is mapped into
:mod:`drivers.errors` with the bytes on the wire, and calls that cannot succeed are
refused with :class:`StateError` before any telegram is sent.

Slots are numbered 1.. across the racks in configuration order (the Cytomat
C6000-family absolute numbering ``001``...). A fetched plate is *out*: it was handed
to the workcell at the transfer station (a plate mover takes it from there), so the
registry no longer holds it; whether the station is free is the device's sensor to
tell (Cytomat: the overview register), not the registry's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from drivers.base import Incubator
from drivers.clock import Clock
from drivers.errors import ConnectionLost, InstrumentError, StateError, check_state
from drivers.labware import Plate
from drivers.plr._common import WireTap, quiet, route_plr_logs, tap_backend, timed
from drivers.plr.incubator_config import (  # noqa: F401 (re-exported)
    Backend,
    CytomatEmulatorOptions,
    PLRIncubatorConfig,
    build_backend,
    build_racks,
)
from drivers.plr.labware_map import plr_plate
from drivers.results import Environment, Identity, InstrumentStatus
from drivers.spec import DriverContext

class PLRIncubator(Incubator):
    """Our :class:`~drivers.base.Incubator` over a pylabrobot incubator backend.

    Args:
        name: instrument name.
        clock: the clock all waits go through.
        config: see :class:`PLRIncubatorConfig`.
        make_backend: builds a fresh backend on every connect (default: :func:`build_backend`).

    Implements ``SupportsOutcomeQuery`` (Cytomat backends: from the overview register).
    """

    line_replies = False
    """Read each reply to its line end (see :func:`~drivers.plr._common.tap_backend`)."""

    def __init__(self, name: str, clock: Clock, config: PLRIncubatorConfig,
                 make_backend: Callable[[], Any] | None = None) -> None:
        super().__init__(name, clock, config.durations)
        route_plr_logs()
        self.config = config
        self._make_backend = make_backend or (lambda: build_backend(config))
        self.frontend: Any = None
        self.tap: WireTap | None = None
        self._where: dict[str, int | str] = {}  # plate id -> slot number, or "out" after a fetch
        self._plates: dict[str, Plate] = {}
        self._error: InstrumentError | None = None
        self._busy: str | None = None
        self._in_doubt: dict[str, tuple[str, int | None]] = {}  # plate id -> (action, slot) of a failed move
        self.slots = sum(r.capacity for r in build_racks(config, name))
        chatter = config.backend in ("chatterbox", "cytomat_chatterbox")
        self._quiet = chatter
        self._simulate = chatter if config.simulate_durations is None else config.simulate_durations

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the port, initialise the device and restore the plate registry (idempotent).

        Raises:
            ConfigurationError: bad backend, model or rack names.
            InstrumentError: the device did not come up (mapped, with the bytes seen).
        """
        if self.frontend is not None:
            return
        from pylabrobot.resources import Coordinate
        from pylabrobot.storage import Incubator as PLRFrontend

        backend = self._make_backend()
        tap = tap_backend(backend, flush_before_write=self.config.backend in ("cytomat", "liconic"),
                          line_replies=self.line_replies)
        racks = build_racks(self.config, self.name)
        frontend = PLRFrontend(backend=backend, name=self.name, size_x=860, size_y=550, size_z=900, racks=racks,
                               loading_tray_location=Coordinate(0, 0, 0), model=self.config.model)
        for plate_id, where in self._where.items():
            if isinstance(where, int):
                self._site(frontend, where).assign_child_resource(
                    plr_plate(self._plates[plate_id], self.config.plate_resources))
        try:
            with quiet(self._quiet):
                await timed(self.clock, self.name, frontend.setup(), self.config.connect_timeout_s, tap, "setup")
        except BaseException:
            try:
                await backend.stop()
            except Exception:  # the port may never have opened
                pass
            raise
        self.frontend, self.tap = frontend, tap
        self._error = None

    async def disconnect(self) -> None:
        """Close the port (idempotent; never raises). The plate registry is kept."""
        frontend, self.frontend = self.frontend, None
        if frontend is not None:
            try:
                with quiet(self._quiet):
                    await timed(self.clock, self.name, frontend.backend.stop(), 30.0, self.tap, "stop")
            except Exception:  # a dead port must not make disconnect fail
                pass

    async def identify(self) -> Identity:
        """Vendor and model from the config (the serial protocol has no identity query).

        Raises:
            StateError: not connected.
        """
        self._require_online()
        vendor = "LiCONiC" if self.config.backend == "liconic" else "Thermo Fisher Scientific"
        family = "STX" if self.config.backend == "liconic" else "Cytomat"
        return Identity(vendor, f"{family} {self.config.model} via pylabrobot ({self.config.backend})",
                        self.config.serial or self.config.port, "")

    async def status(self) -> InstrumentStatus:
        """offline / error / busy / idle, with the plates this incubator holds."""
        plates = tuple(sorted(p for p, w in self._where.items() if isinstance(w, int)))
        return InstrumentStatus.of(self.frontend is not None, self._error, self._busy, plates)

    async def abort(self) -> None:
        """No safe mid-move stop exists on these devices: the move finishes (no-op)."""

    async def reset_error(self) -> None:
        """Clear the error (Cytomat: ``rs:be``); after a lost connection, reconnect.

        Raises:
            StateError: not connected.
            InstrumentError: the device refused the reset.
        """
        self._require_online()
        if isinstance(self._error, ConnectionLost):
            await self.disconnect()
            self._error = None
            await self.connect()
            return
        reset = getattr(self.frontend.backend, "reset_error_register", None)
        if reset is not None:
            await timed(self.clock, self.name, reset(), 30.0, self.tap, "reset_error_register")
        self._error = None

    # -- actions -----------------------------------------------------------------------
    async def check_in(self, plate: Plate) -> int:
        """Register a plate an operator put on a shelf: the lowest-numbered free slot
        that fits it (no motion). Returns the slot number.

        Raises:
            StateError: offline, in error, plate already registered, or no free slot.
        """
        self._require_ready()
        if plate.id in self._where:
            raise StateError(self.name, f"plate {plate.id!r} is already in {self._describe(plate.id)}")
        resource = plr_plate(plate, self.config.plate_resources)
        slot = next((n for n in range(1, self.slots + 1)
                     if self._site(self.frontend, n).resource is None and n not in self._where.values()), None)
        if slot is None:
            raise StateError(self.name, f"no free slot (all {self.slots} occupied)")
        self._site(self.frontend, slot).assign_child_resource(resource)
        self._where[plate.id], self._plates[plate.id] = slot, plate
        return slot

    async def fetch(self, plate: Plate) -> None:
        """Bring ``plate`` from its slot to the transfer station (Cytomat ``mv:st``).

        Raises:
            StateError: offline, in error, busy, plate not in a slot, station occupied.
            InstrumentError: the device failed (the registry is unchanged).
        """
        self._require_ready()
        if not isinstance(self._where.get(plate.id), int):
            raise StateError(self.name, f"plate {plate.id!r} is not in a slot ({self._describe(plate.id)})")
        try:
            occupied = await self._station_occupied()
        except InstrumentError as exc:
            self._latch(exc)
            raise
        if occupied:
            raise StateError(self.name, "the transfer station is occupied (its sensor says so)")
        self._in_doubt[plate.id] = ("fetch", None)
        await self._act("fetch", lambda: self.frontend.fetch_plate_to_loading_tray(plate.id))
        self._commit_move(plate.id, "out")
        self._in_doubt.pop(plate.id, None)

    async def store(self, plate: Plate) -> None:
        """Take ``plate`` from the transfer station into the lowest free slot (``mv:ts``).

        Raises:
            StateError: offline, in error, busy, plate not on the station, no free slot.
            InstrumentError: the device failed (the registry is unchanged).
        """
        self._require_ready()
        if self._where.get(plate.id) != "out":
            raise StateError(self.name, f"plate {plate.id!r} was not fetched from this incubator "
                                        f"({self._describe(plate.id)}); check it in instead")
        slot = next((n for n in range(1, self.slots + 1) if self._site(self.frontend, n).resource is None), None)
        if slot is None:
            raise StateError(self.name, f"no free slot (all {self.slots} occupied)")
        tray = self.frontend.loading_tray
        if tray.resource is not None:
            tray.resource.unassign()
        tray.assign_child_resource(plr_plate(plate, self.config.plate_resources))  # the mover put it there
        self._in_doubt[plate.id] = ("store", slot)
        try:
            await self._act("store", lambda: self.frontend.take_in_plate(self._site(self.frontend, slot)))
        finally:
            if tray.resource is not None:
                tray.resource.unassign()
        self._where[plate.id] = slot
        self._in_doubt.pop(plate.id, None)

    async def environment(self) -> Environment:
        """Temperature, CO₂, humidity and door from the device (NaN when the backend
        cannot measure a value, e.g. a chatterbox's CO₂).

        Raises:
            StateError: offline.
            InstrumentError: a read failed.
        """
        self._require_online()
        b = self.frontend.backend

        async def read(getter: str) -> float:
            fn = getattr(b, getter, None)
            if fn is None:
                return float("nan")
            value = await timed(self.clock, self.name, fn(), 30.0, self.tap, getter)
            return float(getattr(value, "actual_value", value))

        with quiet(self._quiet):
            temperature = await read("get_temperature")
            co2 = await read("get_co2") if hasattr(b, "get_co2") else await read("get_co2_level")
            humidity = await read("get_humidity")
            door = False
            if hasattr(b, "get_overview_register") and self.config.backend == "cytomat":
                overview = await timed(self.clock, self.name, b.get_overview_register(), 30.0, self.tap, "ch:bs")
                door = bool(overview.device_door_open or overview.automatic_gate_open)
        return Environment(temperature, co2, humidity, door)

    async def free_slots(self) -> int:
        """Empty slots. Raises StateError when offline."""
        self._require_online()
        return self.slots - sum(1 for w in self._where.values() if isinstance(w, int))

    def slot_of(self, plate_id: str) -> int | None:
        """Slot number of a stored plate (None on the station or unknown)."""
        where = self._where.get(plate_id)
        return where if isinstance(where, int) else None

    async def action_outcome(self, action_name: str, args: Mapping[str, Any]) -> bool | None:
        """Did an interrupted ``fetch``/``store`` happen? Cytomat: the overview register's
        transfer-station bit says (busy: None, ask later); other backends cannot tell.

        When the device says the move happened, the plate registry is corrected to match
        (a reply lost on the wire does not leave the registry wrong)."""
        plate = args.get("plate")
        plate_id = plate.id if isinstance(plate, Plate) else plate if isinstance(plate, str) else None
        if self.frontend is None or self.config.backend != "cytomat" or action_name not in ("fetch", "store"):
            return None
        try:
            overview = await timed(self.clock, self.name, self.frontend.backend.get_overview_register(), 30.0,
                                   self.tap, "ch:bs")
        except InstrumentError:
            return None
        if overview.busy_bit_set:
            return None
        occupied = bool(overview.transfer_station_occupied)
        happened = occupied if action_name == "fetch" else not occupied
        doubt = self._in_doubt.pop(plate_id, None) if plate_id else None
        if happened and doubt is not None and doubt[0] == action_name:
            self._commit_move(plate_id, "out" if action_name == "fetch" else doubt[1])
        return happened

    def _commit_move(self, plate_id: str, where: int | str | None) -> None:
        """Move a plate in the registry and in pylabrobot's resource tree (``out``: it
        leaves the tree, handed over at the transfer station)."""
        if where is None:
            return
        try:
            resource = self.frontend.get_resource(plate_id)
        except Exception:  # ResourceNotFoundError: nothing to move in the tree
            resource = None
        if resource is not None:
            resource.unassign()
            if isinstance(where, int):
                self._site(self.frontend, where).assign_child_resource(resource)
        self._where[plate_id] = where

    async def _station_occupied(self) -> bool:
        """The transfer-station sensor (Cytomat overview register); False when the
        backend has none (the workcell's planner keeps the station free)."""
        backend = self.frontend.backend
        if self.config.backend != "cytomat" or not hasattr(backend, "get_overview_register"):
            return False
        overview = await timed(self.clock, self.name, backend.get_overview_register(), 30.0, self.tap, "ch:bs")
        return bool(overview.transfer_station_occupied)

    # -- helpers -----------------------------------------------------------------------
    async def _act(self, action: str, call: Callable[[], Any]) -> None:
        self._busy = action
        try:
            if self._simulate:
                await self.clock.sleep(self.duration_of(action))
            with quiet(self._quiet):
                await timed(self.clock, self.name, call(), self.config.action_timeout_s, self.tap, action)
        except InstrumentError as exc:
            self._latch(exc)
            raise
        finally:
            self._busy = None

    def _latch(self, exc: InstrumentError) -> None:
        """Enter the error state for faults a plain retry cannot fix (and a lost line)."""
        if not exc.recoverable or isinstance(exc, ConnectionLost):
            self._error = exc

    def _require_online(self) -> None:
        check_state(self.name, self.frontend is not None)

    def _require_ready(self) -> None:
        check_state(self.name, self.frontend is not None, self._error, self._busy)

    def _describe(self, plate_id: str) -> str:
        where = self._where.get(plate_id)
        return "not registered" if where is None else ("out (fetched)" if where == "out" else f"slot {where}")

    @staticmethod
    def _site(frontend: Any, slot: int) -> Any:
        n = slot
        for rack in frontend.racks:
            if n <= rack.capacity:
                return rack.sites[sorted(rack.sites)[n - 1]]
            n -= rack.capacity
        raise StateError(frontend.name, f"no slot {slot}")


def create(config: PLRIncubatorConfig, ctx: DriverContext) -> PLRIncubator:
    """Factory of the real driver (``DriverSpec.create``)."""
    return PLRIncubator(ctx.name, ctx.clock, config)
