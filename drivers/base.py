"""Instrument interfaces: one abstract class per instrument class, all async.

Units: volumes µL, lengths mm, temperatures °C, durations s. Every method a protocol
may call is marked with :func:`action`; its signature (after ``self``) is what a
protocol's ``with:`` may pass, and its metadata gives the recovery class and nominal
duration. Optional features are capability protocols (``SupportsShaking`` ...), never
methods that raise ``NotImplementedError``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

from drivers.clock import Clock
from drivers.labware import Plate
from drivers.results import CellCount, ConfluenceResult, Environment, Identity, InstrumentStatus, PlateReading

RecoveryClass = Literal["query", "repeatable", "operator"]
"""How an interrupted call is resolved after a crash:

* ``query`` — ask the instrument whether it happened;
* ``repeatable`` — safe to do again (a read, an image);
* ``operator`` — a person confirms; never repeated silently.
"""

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ActionMeta:
    """What the engine needs to know about one action.

    Attributes:
        recovery: see :data:`RecoveryClass`.
        duration_s: nominal duration in seconds (simulators default to it, the
            planner uses it unless the workcell overrides it).
        moves_plate: the action moves its ``plate`` between sites itself.
        physical: False for pure queries that change nothing.
        summary: one line for ``cellwright drivers`` and docs.
    """

    recovery: RecoveryClass
    duration_s: float
    summary: str
    moves_plate: bool = False
    physical: bool = True


def action(
    *,
    recovery: RecoveryClass,
    duration_s: float,
    summary: str,
    moves_plate: bool = False,
    physical: bool = True,
) -> Callable[[F], F]:
    """Mark an interface method as a protocol action (see :class:`ActionMeta`)."""

    def mark(fn: F) -> F:
        fn.__cellwright_action__ = ActionMeta(  # type: ignore[attr-defined]
            recovery=recovery, duration_s=duration_s, summary=summary, moves_plate=moves_plate, physical=physical
        )
        return fn

    return mark


class Instrument(abc.ABC):
    """Base of every driver.

    Args:
        name: the instrument's name in the workcell.
        clock: the clock all waiting goes through.
        durations: per-action duration overrides in seconds.

    ``connect``/``disconnect`` are idempotent. ``abort`` stops the current action as
    soon as it is safe. ``reset_error`` clears a recoverable error state.
    """

    instrument_class: ClassVar[str] = ""

    def __init__(self, name: str, clock: Clock, durations: Mapping[str, float] | None = None) -> None:
        self.name = name
        self.clock = clock
        self.durations: dict[str, float] = dict(durations or {})

    def duration_of(self, action_name: str, **args: Any) -> float:
        """Expected duration (s) of ``action_name`` with ``args`` on this instrument.

        Raises:
            KeyError: when the class has no such action.
        """
        if action_name in self.durations:
            return float(self.durations[action_name])
        return actions_of(type(self))[action_name].duration_s

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection and initialise (idempotent)."""

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Close the connection (idempotent)."""

    @abc.abstractmethod
    async def identify(self) -> Identity:
        """Vendor, model, serial number and firmware."""

    @abc.abstractmethod
    async def status(self) -> InstrumentStatus:
        """Current state (offline, idle, busy, error, maintenance)."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Stop the current action as soon as it is safe."""

    @abc.abstractmethod
    async def reset_error(self) -> None:
        """Clear a recoverable error; afterwards ``status().state`` is ``idle``."""


class LiquidHandler(Instrument):
    """Pipetting robot working on plates at its deck site."""

    instrument_class = "liquid_handler"

    @abc.abstractmethod
    @action(recovery="operator", duration_s=300, summary="seed cells into every well")
    async def seed(self, plate: Plate, cells_per_well: float, volume_ul: float) -> None:
        """Seed ``cells_per_well`` cells in ``volume_ul`` µL of medium into every well."""

    @abc.abstractmethod
    @action(recovery="operator", duration_s=300, summary="replace spent medium in every well")
    async def exchange_medium(self, plate: Plate, volume_ul: float, medium: str = "mTeSR Plus") -> None:
        """Aspirate spent medium and dispense ``volume_ul`` µL of fresh ``medium`` per well."""

    @abc.abstractmethod
    @action(recovery="operator", duration_s=180, summary="aspirate medium, add dissociation reagent")
    async def dissociate(self, plate: Plate, volume_ul: float, reagent: str = "accutase") -> None:
        """Remove medium and add ``volume_ul`` µL of dissociation ``reagent`` per well."""

    @abc.abstractmethod
    @action(recovery="operator", duration_s=240, summary="detach and collect cells into suspension")
    async def harvest(self, plate: Plate, volume_ul: float) -> None:
        """Neutralise with ``volume_ul`` µL medium per well and collect all cells (suspension)."""

    @abc.abstractmethod
    @action(recovery="operator", duration_s=240, summary="reseed harvested cells at a split ratio")
    async def reseed(self, plate: Plate, split_ratio: float, volume_ul: float) -> None:
        """Reseed ``1/split_ratio`` of the harvested cells into the plate's wells in ``volume_ul`` µL."""

    @abc.abstractmethod
    @action(recovery="operator", duration_s=120, summary="add an assay reagent to every well")
    async def add_reagent(self, plate: Plate, reagent: str, volume_ul: float) -> None:
        """Add ``volume_ul`` µL of ``reagent`` (e.g. ``celltiter_glo``) to every well."""


class Incubator(Instrument):
    """Plate hotel with controlled atmosphere; its site is the transfer station."""

    instrument_class = "incubator"

    @abc.abstractmethod
    @action(recovery="query", duration_s=0, summary="register a plate an operator loaded", moves_plate=True)
    async def check_in(self, plate: Plate) -> int:
        """Record that ``plate`` is on a shelf; returns its slot number (1-based)."""

    @abc.abstractmethod
    @action(recovery="query", duration_s=30, summary="bring a plate to the transfer station", moves_plate=True)
    async def fetch(self, plate: Plate) -> None:
        """Move ``plate`` from its slot to the transfer station."""

    @abc.abstractmethod
    @action(recovery="query", duration_s=30, summary="take a plate from the transfer station to a slot", moves_plate=True)
    async def store(self, plate: Plate) -> None:
        """Move ``plate`` from the transfer station into a free slot."""

    @abc.abstractmethod
    @action(recovery="repeatable", duration_s=0, summary="temperature, CO2, humidity, door", physical=False)
    async def environment(self) -> Environment:
        """Read temperature (°C), CO₂ (%), humidity (%) and door state."""

    @abc.abstractmethod
    async def free_slots(self) -> int:
        """Number of empty slots."""


class PlateReader(Instrument):
    """Absorbance / fluorescence / luminescence reader."""

    instrument_class = "plate_reader"

    @abc.abstractmethod
    @action(recovery="repeatable", duration_s=120, summary="read every well")
    async def read(self, plate: Plate, mode: str = "luminescence", wavelength_nm: float | None = None) -> PlateReading:
        """Read every well in ``mode`` (``luminescence``, ``absorbance``, ``fluorescence``)."""


class Imager(Instrument):
    """Brightfield imager that segments cells and reports confluence."""

    instrument_class = "imager"

    @abc.abstractmethod
    @action(recovery="repeatable", duration_s=240, summary="image every well, report confluence")
    async def confluence(self, plate: Plate) -> ConfluenceResult:
        """Image every well; confluence per well as a fraction 0..1."""


class CellCounter(Instrument):
    """Automated cell counter (trypan blue / AO-PI)."""

    instrument_class = "cell_counter"

    @abc.abstractmethod
    @action(recovery="repeatable", duration_s=90, summary="count total and viable cells in a sample")
    async def count(self, plate: Plate) -> CellCount:
        """Count the plate's harvested suspension, or a sample of its wells if none."""


class PlateMover(Instrument):
    """Robot arm moving plates between instrument sites."""

    instrument_class = "plate_mover"

    @abc.abstractmethod
    @action(recovery="query", duration_s=20, summary="move a plate between two sites", moves_plate=True)
    async def transfer(self, plate: Plate, source: str, destination: str) -> None:
        """Move ``plate`` from site ``source`` to site ``destination`` (instrument names)."""


INSTRUMENT_CLASSES: dict[str, type[Instrument]] = {
    cls.instrument_class: cls for cls in (LiquidHandler, Incubator, PlateReader, Imager, CellCounter, PlateMover)
}


# -- capabilities -------------------------------------------------------------------


@runtime_checkable
class SupportsShaking(Protocol):
    """Instrument that can shake its plate."""

    async def shake(self, seconds: float, rpm: float) -> None:
        """Shake for ``seconds`` at ``rpm``."""


@runtime_checkable
class SupportsCO2(Protocol):
    """Instrument with a CO₂ set point."""

    async def set_co2(self, percent: float) -> None:
        """Set the CO₂ set point in %."""


@runtime_checkable
class SupportsTemperature(Protocol):
    """Instrument with a temperature set point."""

    async def set_temperature(self, celsius: float) -> None:
        """Set the temperature set point in °C."""


@runtime_checkable
class SupportsOutcomeQuery(Protocol):
    """Instrument that can tell whether an interrupted action took effect.

    Used after a crash for actions of recovery class ``query``.
    """

    async def action_outcome(self, action_name: str, args: Mapping[str, Any]) -> bool | None:
        """True if it happened, False if not, None if the instrument cannot tell."""


CAPABILITIES: dict[str, type] = {
    "shaking": SupportsShaking,
    "co2": SupportsCO2,
    "temperature": SupportsTemperature,
    "outcome_query": SupportsOutcomeQuery,
}


def capabilities_of(obj_or_cls: object) -> list[str]:
    """Names of the capability protocols an instrument (class or instance) implements."""
    return [name for name, proto in CAPABILITIES.items() if all(hasattr(obj_or_cls, m) for m in _members(proto))]


def _members(proto: type) -> list[str]:
    return [m for m in vars(proto) if not m.startswith("_")]


# Imported last: the catalogue introspects the classes above.
from drivers.actions import actions_of  # noqa: E402
