"""Liquid-handler adapter over pylabrobot's ``LiquidHandler`` frontend.

Our actions (seed, exchange_medium, dissociate, harvest, reseed, add_reagent) become
single-channel aspirate/dispense plans (:mod:`drivers.plr.lh_plan`) on a deck of
:mod:`drivers.plr.decks`, run through pylabrobot with its volume and tip tracking ON:
pylabrobot changes a tracker only after the backend reported success and rolls it
back otherwise (its issue #427), so the deck model always matches what the hardware
did — also after a failure halfway through a plate. Every call that cannot finish
(liquid, room, tips, reagent trough) is refused with ``StateError`` before anything
moves; failures during the run become :mod:`drivers.errors` errors naming the well.

Backends: ``chatterbox`` (prints), ``star_chatterbox`` (STAR firmware strings, no
hardware), ``star`` (Hamilton STAR/STARlet over USB), ``ot2_simulator``,
``ot2_chatterbox`` and ``ot2`` (an OT-2 driven by pylabrobot over HTTP at ``host``).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal

from pydantic import Field

from drivers.base import LiquidHandler
from drivers.clock import Clock
from drivers.errors import ConfigurationError, InstrumentError, StateError, check_state
from drivers.labware import Plate
from drivers.plr._common import map_error, quiet, route_plr_logs, timed, tracking_off, tracking_on
from drivers.plr.decks import DeckKind, Layout, build_layout
from drivers.plr.labware_map import plr_plate
from drivers.plr.lh_plan import Op, Planner, Timing, problems
from drivers.results import Identity, InstrumentStatus
from drivers.spec import DriverConfig, DriverContext

Backend = Literal["chatterbox", "star_chatterbox", "star", "ot2_simulator", "ot2_chatterbox", "ot2"]
_SIMULATED = {"chatterbox", "star_chatterbox", "ot2_simulator", "ot2_chatterbox"}
log = logging.getLogger("cellwright.drivers.plr")


def reagent_key(name: str) -> str:
    """``"mTeSR Plus"`` -> ``"mtesr_plus"`` (how trough names are matched)."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


class PLRLiquidHandlerConfig(DriverConfig):
    """Workcell config of ``plr.liquid_handler``.

    Attributes:
        backend: see the module docstring.
        deck: ``starlet``, ``star`` or ``ot2`` (default: ``ot2`` for OT-2 backends, else ``starlet``).
        host: OT-2 address (backend ``ot2``).
        tip_racks: number of 96-tip racks on the deck.
        tip_rack: tip rack resource (default: Hamilton 1000 µL filter / Opentrons 1000 µL).
        reservoir, waste, collection: trough-plate resources (pylabrobot functions).
        troughs: reagent name -> trough number (1-based) of the reservoir; ``cells`` is the
            seeding suspension; names match case- and space-insensitively.
        neutralise_with: the trough ``harvest`` neutralises with.
        fill_ul: initial volume per trough, µL (default: 90 % of its capacity).
        timing: seconds per step for estimates and simulated waits.
        simulate_durations: wait each step's duration on the clock (default: for
            backends that take no time of their own).
        action_timeout_s: clock seconds per action (default: 3 x estimate + 120).
        channels: channels of the chatterbox backend.
        plate_resources: labware model -> pylabrobot plate function.
        auto_replenish: when troughs run short, waste would overflow or tips run out,
            assume an operator refilled the deck (logged) instead of refusing with
            StateError. Off for hardware; the emulator mode turns it on.
    """

    backend: Backend = "chatterbox"
    deck: DeckKind | None = None
    host: str = "169.254.1.1"
    tip_racks: int = Field(2, ge=1, le=5)
    tip_rack: str | None = None
    reservoir: str = "agenbio_4_troughplate_75mL_Vb"
    waste: str = "agenbio_1_troughplate_190mL_Fl"
    collection: str = "agenbio_1_troughplate_100mL_Fl"
    troughs: dict[str, int] = {"mTeSR Plus": 1, "accutase": 2, "cells": 3, "celltiter_glo": 4}
    neutralise_with: str = "mTeSR Plus"
    fill_ul: dict[str, float] = {}
    timing: dict[str, float] = {}
    simulate_durations: bool | None = None
    action_timeout_s: float | None = Field(None, gt=0)
    channels: int = Field(8, ge=1, le=16)
    plate_resources: dict[str, str] = {}
    auto_replenish: bool = False


def build_backend(config: PLRLiquidHandlerConfig) -> Any:
    """The pylabrobot backend the config names (not set up)."""
    from pylabrobot.liquid_handling import backends as b

    if config.backend == "chatterbox":
        return b.LiquidHandlerChatterboxBackend(num_channels=config.channels)
    if config.backend == "star_chatterbox":
        from pylabrobot.liquid_handling.backends.hamilton.STAR_chatterbox import STARChatterboxBackend

        return STARChatterboxBackend()
    if config.backend == "star":
        return b.STARBackend()
    pipettes = {"left_pipette_name": "p1000_single_gen2", "right_pipette_name": "p300_single_gen2"}
    if config.backend == "ot2_simulator":
        return b.OpentronsOT2Simulator(**pipettes)
    if config.backend == "ot2_chatterbox":
        return b.OpentronsOT2ChatterboxBackend(**pipettes)
    return b.OpentronsOT2Backend(host=config.host)


class PLRLiquidHandler(LiquidHandler):
    """Our :class:`~drivers.base.LiquidHandler` over a pylabrobot backend and deck.

    Args:
        name: instrument name.
        clock: the clock every wait goes through.
        config: see :class:`PLRLiquidHandlerConfig`.
        backend: a ready-made pylabrobot backend (default: :func:`build_backend`).

    Attributes:
        lh: the pylabrobot ``LiquidHandler`` (its deck and trackers are the truth).
        layout: the deck roles (:class:`~drivers.plr.decks.Layout`).
    """

    def __init__(self, name: str, clock: Clock, config: PLRLiquidHandlerConfig, backend: Any = None) -> None:
        super().__init__(name, clock, config.durations)
        route_plr_logs()
        from pylabrobot.liquid_handling import LiquidHandler as PLRFrontend

        self.config = config
        kind = config.deck or ("ot2" if config.backend.startswith("ot2") else "starlet")
        self.layout: Layout = build_layout(kind, config.tip_racks, config.reservoir, config.waste,
                                           config.collection, config.tip_rack)
        self.troughs = {reagent_key(k): v for k, v in config.troughs.items()}
        for reagent, number in self.troughs.items():
            if not 1 <= number <= self.layout.reservoir.num_items:
                raise ConfigurationError(f"trough {number} for {reagent!r}: the reservoir has "
                                         f"{self.layout.reservoir.num_items} troughs")
        self.timing = Timing(**config.timing)
        self._tip_volume = self.layout.tip_volume_ul
        self.lh = PLRFrontend(backend=backend if backend is not None else build_backend(config), deck=self.layout.deck)
        self._quiet = config.backend in _SIMULATED
        self._simulate = config.backend in _SIMULATED if config.simulate_durations is None else config.simulate_durations
        self._plates: dict[str, Any] = {}
        self._connected = False
        self._filled = False
        self._busy: str | None = None
        self._error: InstrumentError | None = None

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Set the robot up, turn tracking on, fill the troughs on first connect (idempotent).

        Raises:
            InstrumentError: the backend did not come up.
        """
        if self._connected:
            return
        tracking_on()
        try:
            with quiet(self._quiet):
                await timed(self.clock, self.name, self.lh.setup(), 600.0, None, "setup")
        except BaseException:
            tracking_off()
            raise
        self._connected = True
        if not self._filled:
            self.refill()
            self._filled = True

    async def disconnect(self) -> None:
        """Stop the robot (idempotent; never raises)."""
        if not self._connected:
            return
        self._connected = False
        tracking_off()
        try:
            with quiet(self._quiet):
                await timed(self.clock, self.name, self.lh.stop(), 60.0, None, "stop")
        except Exception:  # a dead backend must not make disconnect fail
            pass

    def refill(self, fill_ul: dict[str, float] | None = None) -> None:
        """Operator refilled the troughs and emptied waste and collection: reset the trackers."""
        wanted = {reagent_key(k): v for k, v in (fill_ul or self.config.fill_ul).items()}
        for reagent, number in self.troughs.items():
            well = self.layout.reservoir.get_well(number - 1)
            well.tracker.set_volume(min(well.max_volume, wanted.get(reagent, 0.9 * well.max_volume)))
        for trough in (self.layout.waste, self.layout.collection):
            trough.get_well(0).tracker.set_volume(0.0)

    def replace_tips(self) -> None:
        """Operator put full tip racks on the deck."""
        for rack in self.layout.tip_racks:
            rack.fill()

    async def identify(self) -> Identity:
        """The backend's class and the deck (these backends have no identity query).

        Raises:
            StateError: not connected.
        """
        self._require_online()
        return Identity("pylabrobot", f"{type(self.lh.backend).__name__} on {type(self.layout.deck).__name__}",
                        self.config.host if self.config.backend == "ot2" else self.name, "pylabrobot 0.2.2")

    async def status(self) -> InstrumentStatus:
        """offline / error / busy / idle with the plate on the deck."""
        current = self.layout.current_plate()
        plates = (current.name,) if current is not None else ()
        return InstrumentStatus.of(self._connected, self._error, self._busy, plates)

    async def abort(self) -> None:
        """No mid-step stop through pylabrobot: the current step finishes (no-op)."""

    async def reset_error(self) -> None:
        """Discard a tip left on a channel and clear the error.

        Raises:
            StateError: not connected.
        """
        self._require_online()
        await self._discard_mounted_tips()
        self._error = None

    # -- actions -----------------------------------------------------------------------
    async def seed(self, plate: Plate, cells_per_well: float, volume_ul: float) -> None:
        """Dispense ``volume_ul`` µL of the ``cells`` trough's suspension into every well
        (the suspension is prepared at the density giving ``cells_per_well``)."""
        if cells_per_well <= 0:
            raise StateError(self.name, f"cells_per_well must be > 0 (got {cells_per_well})")
        await self._execute("seed", plate, volume_ul=volume_ul)

    async def exchange_medium(self, plate: Plate, volume_ul: float, medium: str = "mTeSR Plus") -> None:
        """Aspirate each well to waste (fresh tip per well), dispense ``volume_ul`` µL of ``medium``."""
        await self._execute("exchange_medium", plate, volume_ul=volume_ul, reagent=medium)

    async def dissociate(self, plate: Plate, volume_ul: float, reagent: str = "accutase") -> None:
        """Aspirate each well to waste, dispense ``volume_ul`` µL of ``reagent``."""
        await self._execute("dissociate", plate, volume_ul=volume_ul, reagent=reagent)

    async def harvest(self, plate: Plate, volume_ul: float) -> None:
        """Add ``volume_ul`` µL of the neutralising medium per well, pool all wells into
        the collection trough."""
        await self._execute("harvest", plate, volume_ul=volume_ul, reagent=self.config.neutralise_with)

    async def reseed(self, plate: Plate, split_ratio: float, volume_ul: float) -> None:
        """Put ``1/split_ratio`` of the collection back spread over the wells, top up with
        medium to ``volume_ul`` µL, discard the rest of the collection to waste."""
        if split_ratio < 1:
            raise StateError(self.name, f"split_ratio must be >= 1 (got {split_ratio})")
        await self._execute("reseed", plate, volume_ul=volume_ul, reagent=self.config.neutralise_with,
                            split_ratio=split_ratio)

    async def add_reagent(self, plate: Plate, reagent: str, volume_ul: float) -> None:
        """Dispense ``volume_ul`` µL of ``reagent`` into every well (one tip)."""
        await self._execute("add_reagent", plate, volume_ul=volume_ul, reagent=reagent)

    def duration_of(self, action_name: str, **args: Any) -> float:
        """Estimated duration (s) from the plan when ``plate`` is given, else nominal."""
        plate = args.get("plate")
        if action_name in self.durations or not isinstance(plate, Plate):
            return super().duration_of(action_name, **args)
        defaults = {"exchange_medium": "mTeSR Plus", "dissociate": "accutase"}
        reagent = args.get("reagent") or args.get("medium") or defaults.get(action_name, self.config.neutralise_with)
        try:
            ops = self._plan(action_name, plate, float(args.get("volume_ul", 0.0)), reagent,
                             float(args.get("split_ratio", 1.0)))
        except (StateError, ConfigurationError):
            return super().duration_of(action_name, **args)
        return sum(self.timing.of(op) for op in ops)

    # -- machinery ---------------------------------------------------------------------
    def _resource(self, plate: Plate) -> Any:
        """The pylabrobot plate of ``plate`` (kept across visits: its trackers are its history)."""
        resource = self._plates.get(plate.id)
        if resource is None:
            resource = self._plates[plate.id] = plr_plate(plate, self.config.plate_resources)
        return resource

    def _plan(self, action: str, plate: Plate, volume_ul: float, reagent: str | None, split_ratio: float) -> list[Op]:
        if volume_ul <= 0:
            raise StateError(self.name, f"volume_ul must be > 0 (got {volume_ul})")
        resource = self._resource(plate)
        wells = [(name, resource.get_well(name)) for name in plate.model.well_names()]
        volumes = {name: w.tracker.get_used_volume() for name, w in wells}
        lay = self.layout
        p = Planner(lay, chunk_ul=math.floor(0.95 * self._tip_volume)).start()
        waste, collection = lay.waste.get_well(0), lay.collection.get_well(0)
        if action == "seed":
            p.fill_wells(wells, self._trough("cells"), volume_ul)
        elif action in ("exchange_medium", "dissociate"):
            p.empty_wells(wells, volumes, waste)
            p.fill_wells(wells, self._trough(reagent or ""), volume_ul)
        elif action == "add_reagent":
            p.fill_wells(wells, self._trough(reagent or ""), volume_ul)
        elif action == "harvest":
            with p.with_tip():
                for name, well in wells:
                    p.move(self._trough(reagent or ""), well, volume_ul, name)
                for name, well in wells:
                    p.move(well, collection, volumes[name] + volume_ul, name)
        elif action == "reseed":
            pooled = collection.tracker.get_used_volume()
            if pooled <= 0:
                raise StateError(self.name, "the collection trough is empty: harvest before reseeding")
            share = min(pooled / split_ratio / len(wells), volume_ul)
            with p.with_tip():
                for name, well in wells:
                    p.move(collection, well, share, name)
            p.fill_wells(wells, self._trough(reagent or ""), volume_ul - share)
            rest = pooled - share * len(wells)
            if rest > 0.5:
                with p.with_tip():
                    p.move(collection, waste, rest)
        else:
            raise ConfigurationError(f"{self.name}: no plan for action {action!r}")
        return p.ops

    def _trough(self, reagent: str) -> Any:
        number = self.troughs.get(reagent_key(reagent))
        if number is None:
            raise StateError(self.name, f"no trough holds {reagent!r}; configured: {', '.join(self.troughs)}")
        return self.layout.reservoir.get_well(number - 1)

    async def _execute(self, action: str, plate: Plate, volume_ul: float, reagent: str | None = None,
                       split_ratio: float = 1.0) -> None:
        check_state(self.name, self._connected, self._error, self._busy)
        ops = self._plan(action, plate, volume_ul, reagent, split_ratio)
        self.layout.place_plate(self._resource(plate))  # the mover put it on the deck
        found = problems(ops, self.layout)
        if found and self.config.auto_replenish:
            log.warning("%s: %s; replenishing the deck (operator task on hardware)", self.name, "; ".join(found))
            self.refill()
            self.replace_tips()
            found = problems(ops, self.layout)
        if found:
            more = f"; and {len(found) - 3} more" if len(found) > 3 else ""
            raise StateError(self.name, f"{action} on {plate.id}: " + "; ".join(found[:3]) + more)
        timeout = self.config.action_timeout_s or 3 * sum(self.timing.of(op) for op in ops) + 120.0
        self._busy = f"{action} {plate.id}"
        try:
            await self.clock.wait_for(self._run_ops(action, plate, ops), timeout)
        except TimeoutError:
            error: InstrumentError = map_error(self.name, TimeoutError(f"{action} not done within {timeout:.0f} s"))
            self._error = error
            raise error from None
        except InstrumentError as exc:
            if not exc.recoverable:
                self._error = exc
            raise
        finally:
            self._busy = None

    async def _run_ops(self, action: str, plate: Plate, ops: list[Op]) -> None:
        done_wells: list[str] = []
        for op in ops:
            if self._simulate:
                await self.clock.sleep(self.timing.of(op))
            try:
                with quiet(self._quiet):
                    await self._do(op)
            except Exception as exc:
                error = map_error(self.name, exc)
                progress = f"{len(set(done_wells))}/{plate.model.wells} wells done"
                error.detail = f"{action} on {plate.id} failed at {op.kind} {op.well or ''} ({progress}): {error.detail}"
                error.args = (f"{self.name}: [{error.code}] {error.detail}",)
                await self._discard_mounted_tips()
                raise error from exc
            if op.kind == "disp" and op.well:
                done_wells.append(op.well)

    async def _do(self, op: Op) -> None:
        if op.kind == "pick":
            await self.lh.pick_up_tips([self.layout.next_tip()], use_channels=[0])
        elif op.kind == "drop":
            await self.lh.discard_tips(use_channels=[0])
        elif op.kind == "asp":
            await self.lh.aspirate([op.container], vols=[op.volume_ul], use_channels=[0])
        else:
            await self.lh.dispense([op.container], vols=[op.volume_ul], use_channels=[0])

    async def _discard_mounted_tips(self) -> None:
        try:
            if any(t.has_tip for t in self.lh.head.values()):
                with quiet(self._quiet):
                    await self.lh.discard_tips()
        except Exception:  # best effort: an operator clears a stuck tip
            pass

    def _require_online(self) -> None:
        check_state(self.name, self._connected)


def create(config: PLRLiquidHandlerConfig, ctx: DriverContext) -> PLRLiquidHandler:
    """Factory of the real driver (``DriverSpec.create``)."""
    return PLRLiquidHandler(ctx.name, ctx.clock, config)
