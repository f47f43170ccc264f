"""Deck layouts for the liquid-handler adapter, built from pylabrobot's resource
library (and, for the OT-2, the labware definitions shipped in
``opentrons_shared_data`` — nothing is fetched from the network).

Every layout has the same roles:

* ``plate site`` — where the culture plate sits while the robot works on it;
* ``reservoir`` — a multi-trough plate: one trough per medium / reagent / cell stock;
* ``waste`` — a 1-trough plate receiving spent medium and reagents;
* ``collection`` — a 1-trough plate receiving harvested cell suspension;
* ``tip racks`` — 1000 µL tips, used one channel at a time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from drivers.errors import ConfigurationError
from drivers.plr._common import resource_factory

DeckKind = Literal["starlet", "star", "ot2"]


@dataclass
class Layout:
    """A built deck and the resources the adapter uses.

    Attributes:
        deck: the pylabrobot deck.
        plate_site: resource holder the culture plate is assigned to (None on an
            OT-2: the plate goes straight into ``plate_slot``).
        plate_slot: OT-2 slot number of the plate.
        reservoir, waste, collection: trough plates (see module docstring).
        tip_racks: tip racks in use order.
    """

    deck: Any
    plate_site: Any
    reservoir: Any
    waste: Any
    collection: Any
    tip_racks: list[Any]
    plate_slot: int | None = None

    @property
    def tip_volume_ul(self) -> float:
        """Capacity of the racks' tips, µL."""
        return float(self.tip_racks[0].get_all_items()[0].make_tip().maximal_volume)

    def place_plate(self, plate: Any) -> None:
        """Put ``plate`` (a pylabrobot Plate) on the plate site, removing what was there."""
        current = self.current_plate()
        if current is plate:
            return
        if current is not None:
            current.unassign()
        if plate.parent is not None:
            plate.unassign()
        if self.plate_slot is not None:
            self.deck.assign_child_at_slot(plate, self.plate_slot)
        else:
            self.plate_site.assign_child_resource(plate)

    def current_plate(self) -> Any:
        """The plate on the plate site, or None."""
        if self.plate_slot is not None:
            return self.deck.slots[self.plate_slot - 1]
        return self.plate_site.resource

    def free_tips(self) -> int:
        """Tips left in the racks (tip tracking)."""
        return sum(1 for rack in self.tip_racks for spot in rack.get_all_items() if spot.tracker.has_tip)

    def next_tip(self) -> Any:
        """The first tip spot that still holds a tip.

        Raises:
            StopIteration: none left (callers check :meth:`free_tips` first).
        """
        return next(spot for rack in self.tip_racks for spot in rack.get_all_items() if spot.tracker.has_tip)


def build_layout(kind: DeckKind, tip_racks: int = 2, reservoir: str = "agenbio_4_troughplate_75mL_Vb",
                 waste: str = "agenbio_1_troughplate_190mL_Fl", collection: str = "agenbio_1_troughplate_100mL_Fl",
                 tip_rack: str | None = None) -> Layout:
    """Build a deck of ``kind`` (``starlet``, ``star`` or ``ot2``).

    Args:
        tip_racks: number of 96-tip racks (1..5 on a STAR carrier, 1..4 on an OT-2).
        reservoir, waste, collection: pylabrobot trough-plate functions.
        tip_rack: tip rack (pylabrobot function on Hamilton decks, Opentrons load name on an OT-2).

    Raises:
        ConfigurationError: unknown kind or resource, or too many tip racks.
    """
    if kind in ("starlet", "star"):
        return _hamilton(kind, tip_racks, reservoir, waste, collection, tip_rack or "hamilton_96_tiprack_1000uL_filter")
    if kind == "ot2":
        return _ot2(tip_racks, reservoir, waste, collection, tip_rack or "opentrons_96_tiprack_1000ul")
    raise ConfigurationError(f"unknown deck {kind!r}; expected starlet, star or ot2")


def _hamilton(kind: str, n_racks: int, reservoir: str, waste: str, collection: str, tip_rack: str) -> Layout:
    import pylabrobot.resources as r

    if not 1 <= n_racks <= 5:
        raise ConfigurationError(f"tip_racks must be 1..5 on a Hamilton tip carrier (got {n_racks})")
    deck = r.STARLetDeck() if kind == "starlet" else r.STARDeck()
    tip_carrier = r.TIP_CAR_480_A00("tip_carrier")
    racks = []
    for i in range(n_racks):
        racks.append(resource_factory(tip_rack)(f"tips_{i + 1}"))
        tip_carrier[i] = racks[-1]
    deck.assign_child_resource(tip_carrier, rails=1)
    carrier = r.PLT_CAR_L5AC_A00("plate_carrier")
    carrier[1] = res = resource_factory(reservoir)("reservoir")
    carrier[2] = wst = resource_factory(waste)("waste")
    carrier[3] = col = resource_factory(collection)("collection")
    deck.assign_child_resource(carrier, rails=8)
    return Layout(deck, carrier[0], res, wst, col, racks)


def _ot2(n_racks: int, reservoir: str, waste: str, collection: str, tip_rack: str) -> Layout:
    from pylabrobot.resources.opentrons import OTDeck

    if not 1 <= n_racks <= 4:
        raise ConfigurationError(f"tip_racks must be 1..4 on the OT-2 layout (got {n_racks})")
    deck = OTDeck()
    racks = [ot_tip_rack(tip_rack, f"tips_{i + 1}") for i in range(n_racks)]
    for slot, rack in zip((1, 4, 7, 10), racks, strict=False):
        deck.assign_child_at_slot(rack, slot)
    res, wst, col = (resource_factory(fn)(name) for fn, name in
                     ((reservoir, "reservoir"), (waste, "waste"), (collection, "collection")))
    deck.assign_child_at_slot(res, 3)
    deck.assign_child_at_slot(wst, 6)
    deck.assign_child_at_slot(col, 5)
    return Layout(deck, None, res, wst, col, racks, plate_slot=2)


def ot_tip_rack(load_name: str, name: str) -> Any:
    """A pylabrobot TipRack from the Opentrons definition shipped with
    ``opentrons_shared_data`` (offline; pylabrobot's own loader downloads it).

    Raises:
        ConfigurationError: no such definition (or opentrons_shared_data missing).
    """
    from importlib import resources

    from pylabrobot.resources import Coordinate, Tip, TipRack, TipSpot

    try:
        root = resources.files("opentrons_shared_data") / "data" / "labware" / "definitions" / "2" / load_name
        versions = sorted((p for p in root.iterdir() if p.name.endswith(".json")), key=lambda p: int(p.name[:-5]))
        data = json.loads(versions[-1].read_text())
    except (ModuleNotFoundError, FileNotFoundError, IndexError, ValueError) as exc:
        raise ConfigurationError(f"no Opentrons labware definition {load_name!r}: {exc}") from None
    params = data["parameters"]
    filtered = "filter" in data["metadata"]["displayName"].lower()
    spots: dict[str, Any] = {}
    for column in data["ordering"]:
        for well_name in column:
            well = data["wells"][well_name]
            side = round(well["diameter"] / math.sqrt(2), 3)

            def make_tip(name: str, volume: float = well["totalLiquidVolume"]) -> Any:
                return Tip(name=name, has_filter=filtered, total_tip_length=params["tipLength"],
                           maximal_volume=volume, fitting_depth=params["tipOverlap"])

            spot = TipSpot(name=f"{name}_{well_name}", size_x=side, size_y=side, make_tip=make_tip)
            spot.location = Coordinate(well["x"] - side / 2, well["y"] - side / 2, well["z"])
            spots[well_name] = spot
    dims = data["dimensions"]
    rack = TipRack(name=name, size_x=dims["xDimension"], size_y=dims["yDimension"], size_z=dims["zDimension"],
                   ordered_items=spots, model=data["metadata"]["displayName"])
    rack.fill()
    return rack
