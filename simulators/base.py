"""The state model every behavioural simulator shares.

State: ``offline → idle ⇄ busy → error → (reset_error) idle``. ``connect`` and
``disconnect`` are idempotent. An action called while offline, in error, or at
capacity (busy) raises :class:`~drivers.errors.StateError` and changes nothing; so do
failed location and culture checks. A running action:

1. checks state, the plate's location and the culture, then counts the call for faults;
2. claims its plate and reserves the destination site;
3. waits ``duration_of(action)`` on the injected clock (``durations`` config overrides);
4. applies its effect atomically (location move, culture change) and returns.

A scripted fault raises its :mod:`drivers.errors` class before step 4 (``when: before``) or
after it (``when: after``); a non-recoverable fault leaves the instrument in ``error``
until :meth:`reset_error`. :meth:`abort` cancels the wait: the action raises
``DeviceFault(code="aborted", recoverable=True)`` with no effect applied.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Self, TypeVar

from pydantic import Field

from drivers.actions import actions_of
from drivers.base import Instrument
from drivers.clock import Clock
from drivers.errors import ConfigurationError, DeviceFault, InstrumentError, StateError
from drivers.labware import Plate
from drivers.results import Identity, InstrumentStatus
from drivers.spec import DriverConfig, DriverContext
from simulators.culture import CultureModel, culture_of
from simulators.faults import FaultPlan, FaultSpec

T = TypeVar("T")
SIMULATOR_VERSION = "0.1.0"


class SimConfig(DriverConfig):
    """Config common to every simulator.

    Attributes:
        durations: per-action duration overrides, s (from :class:`DriverConfig`).
        faults: scripted faults (:class:`~simulators.faults.FaultSpec`).
        capacity: plates (actions) handled at once; another call while full is a StateError.
        site_capacity: plates that can sit at the instrument's site (default: ``capacity``).
    """

    faults: list[FaultSpec] = Field(default_factory=list)
    capacity: int = Field(default=1, ge=1)
    site_capacity: int | None = Field(default=None, ge=1)


class MeasureConfig(SimConfig):
    """Config of a measuring simulator.

    Attributes:
        noise: relative SD of the measurement noise (0.03 = 3 %).
    """

    noise: float = Field(default=0.03, ge=0.0, le=1.0)


def plate_id_of(value: Any) -> str | None:
    """A plate id from a :class:`Plate`, a string, or a mapping with ``id`` (journaled args)."""
    if isinstance(value, Plate):
        return value.id
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


class SimulatedInstrument(Instrument):
    """Base of the six simulators (see the module docstring for the state model).

    Args:
        name: instrument name (also the name of its site).
        clock: clock every wait goes through.
        config: its config model (defaults when None).
        culture: the workcell's culture model (a private one when None).
        seed: workcell seed (faults and identity).

    Raises:
        ConfigurationError: a ``durations`` key or fault ``action`` that is not an action of the class.
    """

    config_model: ClassVar[type[SimConfig]] = SimConfig
    model_name: ClassVar[str] = "Simulated instrument"

    def __init__(
        self,
        name: str,
        clock: Clock,
        config: SimConfig | None = None,
        *,
        culture: CultureModel | None = None,
        seed: int = 0,
    ) -> None:
        cfg = config if config is not None else self.config_model()
        super().__init__(name, clock, cfg.durations)
        known = set(actions_of(type(self)))
        for key in list(cfg.durations) + [f.action for f in cfg.faults if f.action != "*"]:
            if key not in known:
                raise ConfigurationError(
                    f"{name}: {key!r} is not an action of {self.instrument_class}; known: {', '.join(sorted(known))}"
                )
        self.config = cfg
        self.rng_seed = seed
        self.culture = culture if culture is not None else CultureModel(clock, seed)
        self.faults = FaultPlan(name, cfg.faults, seed)
        self._connected = False
        self._error: InstrumentError | None = None
        self._running: dict[int, str] = {}
        self._aborted: set[asyncio.Task[None]] = set()
        self._waits: set[asyncio.Task[None]] = set()
        self._register_sites()

    @classmethod
    def from_context(cls, config: Any, ctx: DriverContext) -> Self:
        """Build from a config (model instance or mapping) and a driver context (shared culture)."""
        if not isinstance(config, cls.config_model):
            raw = config.model_dump() if isinstance(config, DriverConfig) else dict(config or {})
            config = cls.config_model.model_validate(raw)
        return cls(ctx.name, ctx.clock, config, culture=culture_of(ctx), seed=ctx.seed)

    # -- sites -------------------------------------------------------------------------
    @property
    def site_capacity(self) -> int:
        """Plates that can sit at this instrument's site."""
        return self.config.site_capacity or self.config.capacity

    def _register_sites(self) -> None:
        self.culture.locations.register_site(self.name, self.site_capacity, owner=self.name)

    def _own_sites(self) -> list[str]:
        return [s.name for s in self.culture.locations.sites.values() if s.owner == self.name]

    # -- state -------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """``offline``, ``error``, ``busy`` or ``idle``."""
        if not self._connected:
            return "offline"
        if self._error is not None:
            return "error"
        return "busy" if self._running else "idle"

    def inject(self, fault: FaultSpec) -> None:
        """Arm a fault at run time (its ``on_call`` counts from now)."""
        if fault.action != "*" and fault.action not in actions_of(type(self)):
            raise ConfigurationError(f"{self.name}: {fault.action!r} is not an action of {self.instrument_class}")
        self.faults.inject(fault)

    def _require_online(self) -> None:
        if not self._connected:
            raise StateError(self.name, "offline; connect first")

    def _require_ready(self, physical: bool = True) -> None:
        self._require_online()
        if self._error is not None:
            raise StateError(self.name, f"in error [{self._error.code}] {self._error.detail}; reset_error first")
        if physical and len(self._running) >= self.config.capacity:
            raise StateError(self.name, f"busy ({', '.join(self._running.values())}); capacity {self.config.capacity}")

    # -- Instrument --------------------------------------------------------------------
    async def connect(self) -> None:
        """Go online (idempotent; an uncleared error stays)."""
        self._connected = True

    async def disconnect(self) -> None:
        """Go offline (idempotent).

        Raises:
            StateError: an action is running (abort it first).
        """
        if self._running:
            raise StateError(self.name, f"busy ({', '.join(self._running.values())}); abort before disconnecting")
        self._connected = False

    async def identify(self) -> Identity:
        """Simulated vendor/model/serial; the serial contains the instrument name.

        Raises:
            StateError: offline.
        """
        self._require_online()
        tag = hashlib.sha256(f"{self.name}:{self.rng_seed}".encode()).hexdigest()[:6].upper()
        return Identity(
            vendor="cellwright simulators",
            model=self.model_name,
            serial=f"SIM-{self.name}-{tag}",
            firmware=f"sim-{SIMULATOR_VERSION}",
        )

    async def status(self) -> InstrumentStatus:
        """State, what is running or the error, and the plates at this instrument's sites (any state)."""
        plates = tuple(sorted(p for s in self._own_sites() for p in self.culture.locations.plates_at(s)))
        err = self._error
        detail = f"[{err.code}] {err.detail}" if err else ", ".join(self._running.values())
        return InstrumentStatus(self.state, detail, err.code if err else None, plates)

    async def abort(self) -> None:
        """Cancel every running action (no-op when idle or offline); they raise an ``aborted`` DeviceFault."""
        for task in list(self._waits):
            self._aborted.add(task)
            task.cancel()

    async def reset_error(self) -> None:
        """Clear the error state (no-op when not in error).

        Raises:
            StateError: offline.
        """
        self._require_online()
        self._error = None

    # -- running actions ---------------------------------------------------------------
    async def _wait(self, seconds: float) -> None:
        """Wait on the clock; raises an ``aborted`` DeviceFault when :meth:`abort` cancels it."""
        task: asyncio.Task[None] = asyncio.ensure_future(self.clock.sleep(seconds))
        self._waits.add(task)
        try:
            await task
        except asyncio.CancelledError:
            if task in self._aborted:
                raise DeviceFault(self.name, "action aborted on request", code="aborted", recoverable=True) from None
            raise
        finally:
            self._waits.discard(task)
            self._aborted.discard(task)

    def _activity(self, action: str, started: bool) -> None:
        """Hook called when an action's physical motion starts/ends (the incubator's door)."""

    def _fail(self, fault: FaultSpec, action: str) -> InstrumentError:
        err = fault.error(self.name, action)
        if not fault.is_recoverable:
            self._error = err
        return err

    async def _run(
        self,
        action: str,
        effect: Callable[[], T],
        *,
        plate: Plate | None = None,
        at: str | None = "",
        check: Callable[[], None] | None = None,
        reserve: Iterable[str] = (),
        physical: bool = True,
        args: Mapping[str, Any] | None = None,
        duration: float | None = None,
    ) -> T:
        """Run one action through the state model (see the module docstring).

        Args:
            action: action name (for durations and faults).
            effect: applies the physical change at the end; its value is returned.
            plate: the plate worked on (claimed for the duration).
            at: site the plate must be at ("" = this instrument's site, None = no check).
            check: raises StateError when the action is not possible now.
            reserve: sites to hold for the plate's arrival.
            physical: False for queries (not limited by capacity, no busy state).
            args: the action's arguments (passed to :meth:`duration_of`).
            duration: explicit duration, s (for non-action operations such as ``shake``).
        """
        self._require_ready(physical)
        locations = self.culture.locations
        if plate is not None:
            self.culture.plate(plate)
            if at is not None:
                locations.require_at(plate.id, at or self.name, self.name)
            locations.require_unclaimed(plate.id, self.name)
        if check is not None:
            check()
        if duration is None:
            duration = self.duration_of(action, **dict(args or {}))
        fault = self.faults.draw(action)
        held = list(reserve)
        if plate is not None:
            locations.claim(plate.id, self.name)
        for site in held:
            locations.reserve(site)
        token = object()
        if physical:
            self._running[id(token)] = action if plate is None else f"{action} {plate.id}"
        try:
            self._activity(action, True)
            try:
                if fault is not None and fault.when == "before":
                    await self._wait(fault.delay_s)
                    raise self._fail(fault, action)
                await self._wait(duration)
            finally:
                self._activity(action, False)
            for site in held:
                locations.unreserve(site)
            held = []
            result = effect()
            if physical:
                self.culture.record_effect(self.name, action, plate.id if plate is not None else None)
            if fault is not None:
                raise self._fail(fault, action)
            return result
        finally:
            for site in held:
                locations.unreserve(site)
            if plate is not None:
                locations.release(plate.id, self.name)
            self._running.pop(id(token), None)
