"""Per-class scenarios of the conformance suite: how to give an instrument a plate,
what its main action is, and how to call it on a plate that is not there.

Plates are staged through the workcell's culture model when the driver put one in
``ctx.shared["culture"]`` (behavioural simulators and emulator modes do): the suite
uses only its public, duck-typed API (``locations.register_site``, ``place``,
``seed``), never imports :mod:`simulators`. Drivers that do not track plate locations
(hardware drivers) cannot say a plate is missing; the suite then skips that check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from drivers.base import Instrument
from drivers.labware import Plate, labware_model
from drivers.results import CellCount, ConfluenceResult, Environment, PlateReading

Call = Callable[[Instrument, Plate], Awaitable[Any]]


def make_plate(tag: str) -> Plate:
    """A fresh 6-well iPSC plate with a unique id."""
    return Plate(f"conformance-{tag}", labware_model("corning_6_wellplate"), cell_line="201B7", cell_type="ipsc")


def culture(shared: dict[str, Any]) -> Any:
    """The shared culture model, or None."""
    return shared.get("culture")


def place(shared: dict[str, Any], plate: Plate, site: str, cells: bool = False) -> bool:
    """Put ``plate`` at ``site`` (registering the site) in the culture model, optionally
    seeded with cells; False when there is no culture model."""
    c = culture(shared)
    if c is None:
        return False
    if site not in c.locations.sites:
        c.locations.register_site(site, 4)
    c.place(plate, site)
    if cells:
        c.seed(plate, 2.0e5, 1500.0)
    return True


@dataclass
class Scenario:
    """What the suite does with one instrument class.

    Attributes:
        prepare: stage a plate so that ``main`` can run (returns False to skip the class).
        main: the main physical action (must take time on the clock).
        check_result: raises AssertionError when ``main``'s result has the wrong shape.
        absent: an action on a plate that is not where it must be (expects StateError);
            None when the driver cannot know (no culture model, no registry of its own).
        main_name: name of the main action.
    """

    prepare: Callable[[Instrument, Plate, dict[str, Any]], Awaitable[bool]]
    main: Call
    main_name: str
    check_result: Callable[[Any, Plate], None]
    absent: Callable[[Instrument, Plate, dict[str, Any]], Awaitable[Any]] | None


async def _at_site(inst: Instrument, plate: Plate, shared: dict[str, Any], cells: bool) -> bool:
    place(shared, plate, inst.name, cells)
    return True


async def _lh_prepare(inst: Instrument, plate: Plate, shared: dict[str, Any]) -> bool:
    return await _at_site(inst, plate, shared, cells=False)


async def _measure_prepare(inst: Instrument, plate: Plate, shared: dict[str, Any]) -> bool:
    return await _at_site(inst, plate, shared, cells=True)


async def _elsewhere(inst: Instrument, plate: Plate, shared: dict[str, Any], call: Call) -> Any:
    if not place(shared, plate, "conformance-elsewhere", cells=True):
        return None
    return await call(inst, plate)


async def _incubator_prepare(inst: Instrument, plate: Plate, shared: dict[str, Any]) -> bool:
    slot = await inst.check_in(plate)  # type: ignore[attr-defined]
    assert isinstance(slot, int) and slot >= 1, f"check_in returned {slot!r}, expected a slot number >= 1"
    return True


def _incubator_result(_: Any, __: Plate) -> None:
    return None


async def _incubator_absent(inst: Instrument, plate: Plate, shared: dict[str, Any]) -> Any:
    return await inst.fetch(plate)  # type: ignore[attr-defined]


async def _mover_prepare(inst: Instrument, plate: Plate, shared: dict[str, Any]) -> bool:
    if not place(shared, plate, "conformance-a"):
        return True  # a mover without a location model: just move between two names
    culture(shared).locations.register_site("conformance-b", 4)
    return True


def _mover_main(inst: Instrument, plate: Plate) -> Awaitable[Any]:
    return inst.transfer(plate, "conformance-a", "conformance-b")  # type: ignore[attr-defined]


async def _mover_absent(inst: Instrument, plate: Plate, shared: dict[str, Any]) -> Any:
    if not place(shared, plate, "conformance-b"):
        return None
    culture(shared).locations.register_site("conformance-a", 4)
    return await inst.transfer(plate, "conformance-a", "conformance-b")  # type: ignore[attr-defined]


def _reading(result: Any, plate: Plate) -> None:
    assert isinstance(result, PlateReading), f"read returned {type(result).__name__}, not PlateReading"
    assert len(result.per_well) == plate.model.wells, f"{len(result.per_well)} values for {plate.model.wells} wells"


def _confluence(result: Any, plate: Plate) -> None:
    assert isinstance(result, ConfluenceResult), f"confluence returned {type(result).__name__}"
    assert len(result.per_well) == plate.model.wells and all(0 <= v <= 1 for v in result.per_well), \
        "confluence per well must be one fraction 0..1 per well"


def _count(result: Any, plate: Plate) -> None:
    assert isinstance(result, CellCount), f"count returned {type(result).__name__}, not CellCount"
    assert 0.0 <= result.viability <= 1.0, f"viability {result.viability} outside 0..1"
    assert result.viable_per_ml <= result.total_per_ml * 1.0001, "more viable than total cells"


def _none(result: Any, plate: Plate) -> None:
    assert result is None, f"returned {result!r}, expected None"


SCENARIOS: dict[str, Scenario] = {
    "liquid_handler": Scenario(
        _lh_prepare, lambda i, p: i.seed(p, 1.0e4, 1500.0), "seed", _none,  # type: ignore[attr-defined]
        lambda i, p, s: _elsewhere(i, p, s, lambda i2, p2: i2.exchange_medium(p2, 1500.0))),  # type: ignore[attr-defined]
    "incubator": Scenario(_incubator_prepare, lambda i, p: i.fetch(p), "fetch",  # type: ignore[attr-defined]
                          _incubator_result, _incubator_absent),
    "plate_reader": Scenario(
        _measure_prepare, lambda i, p: i.read(p, "absorbance"), "read", _reading,  # type: ignore[attr-defined]
        lambda i, p, s: _elsewhere(i, p, s, lambda i2, p2: i2.read(p2, "absorbance"))),  # type: ignore[attr-defined]
    "imager": Scenario(
        _measure_prepare, lambda i, p: i.confluence(p), "confluence", _confluence,  # type: ignore[attr-defined]
        lambda i, p, s: _elsewhere(i, p, s, lambda i2, p2: i2.confluence(p2))),  # type: ignore[attr-defined]
    "cell_counter": Scenario(
        _measure_prepare, lambda i, p: i.count(p), "count", _count,  # type: ignore[attr-defined]
        lambda i, p, s: _elsewhere(i, p, s, lambda i2, p2: i2.count(p2))),  # type: ignore[attr-defined]
    "plate_mover": Scenario(_mover_prepare, _mover_main, "transfer", _none, _mover_absent),
}


def check_environment(env: Any) -> None:
    """Raises AssertionError unless ``env`` is an :class:`Environment` of floats."""
    assert isinstance(env, Environment), f"environment returned {type(env).__name__}"
    assert isinstance(env.temperature_c, float) and isinstance(env.co2_percent, float), "values must be floats"
