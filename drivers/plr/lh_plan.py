"""Turning our liquid-handling actions into single-channel pipetting steps.

A plan is a list of :class:`Op` computed from the action's arguments and the current
pylabrobot volume trackers, *before* anything moves: its totals are checked against
what the deck holds (liquid in the troughs, room in wells, waste and collection,
tips left), so a call that cannot finish is refused with ``StateError`` up front.

Tip policy: liquid taken *out of* a culture well uses a fresh tip per well; liquid
added *from* a trough is dispensed from above with one tip for the whole plate;
harvest pools every well into the collection trough with one tip.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from drivers.plr.decks import Layout


@dataclass(frozen=True)
class Op:
    """One pipetting step.

    Attributes:
        kind: ``pick`` (next tip), ``drop`` (discard tip), ``asp`` or ``disp``.
        container: the pylabrobot well/trough (``asp``/``disp``).
        volume_ul: µL (``asp``/``disp``).
        well: our well name the step serves (for error messages), if any.
    """

    kind: str
    container: Any = None
    volume_ul: float = 0.0
    well: str = ""


@dataclass(frozen=True)
class Timing:
    """Seconds per step for the duration estimate (and simulated waits)."""

    pick_s: float = 6.0
    drop_s: float = 4.0
    aspirate_s: float = 3.0
    dispense_s: float = 2.0
    flow_ul_s: float = 250.0

    def of(self, op: Op) -> float:
        """Duration of one step, s."""
        if op.kind == "pick":
            return self.pick_s
        if op.kind == "drop":
            return self.drop_s
        base = self.aspirate_s if op.kind == "asp" else self.dispense_s
        return base + op.volume_ul / self.flow_ul_s


class Planner:
    """Builds plans on a :class:`~drivers.plr.decks.Layout`.

    Args:
        layout: the deck.
        chunk_ul: largest volume moved in one aspirate (below the tip's capacity).
    """

    def __init__(self, layout: Layout, chunk_ul: float) -> None:
        self.layout = layout
        self.chunk_ul = chunk_ul
        self.ops: list[Op] = []

    def start(self) -> "Planner":
        self.ops = []
        return self

    def move(self, source: Any, dest: Any, volume_ul: float, well: str = "") -> None:
        """Aspirate/dispense ``volume_ul`` in chunks (no tip handling)."""
        left = volume_ul
        while left > 1e-6:
            v = min(self.chunk_ul, left)
            self.ops += [Op("asp", source, v, well), Op("disp", dest, v, well)]
            left -= v

    def with_tip(self) -> "_TipBlock":
        """``with planner.with_tip(): ...`` brackets steps between ``pick`` and ``drop``."""
        return _TipBlock(self)

    def empty_wells(self, wells: list[tuple[str, Any]], volumes: dict[str, float], into: Any) -> None:
        """Take everything out of each well (fresh tip per well)."""
        for name, well in wells:
            if volumes.get(name, 0.0) > 0:
                with self.with_tip():
                    self.move(well, into, volumes[name], name)

    def fill_wells(self, wells: list[tuple[str, Any]], source: Any, volume_ul: float) -> None:
        """Dispense ``volume_ul`` from ``source`` into every well (one tip)."""
        if volume_ul <= 0:
            return
        with self.with_tip():
            for name, well in wells:
                self.move(source, well, volume_ul, name)


class _TipBlock:
    def __init__(self, planner: Planner) -> None:
        self.planner = planner

    def __enter__(self) -> None:
        self.planner.ops.append(Op("pick"))

    def __exit__(self, *exc: object) -> None:
        self.planner.ops.append(Op("drop"))


def problems(ops: list[Op], layout: Layout) -> list[str]:
    """Why a plan cannot run on the deck as it is (empty when it can).

    Checks liquid available in each source, room in each destination (cumulative, in
    plan order) and tips left.
    """
    found: list[str] = []
    tips = sum(1 for op in ops if op.kind == "pick")
    if tips > layout.free_tips():
        found.append(f"needs {tips} tips, {layout.free_tips()} left (replace the tip racks)")
    level: dict[int, float] = {}
    objects: dict[int, Any] = {}
    shortfall: dict[int, float] = defaultdict(float)
    overflow: dict[int, float] = defaultdict(float)
    for op in ops:
        if op.kind not in ("asp", "disp"):
            continue
        key = id(op.container)
        objects[key] = op.container
        if key not in level:
            level[key] = op.container.tracker.get_used_volume()
        if op.kind == "asp":
            level[key] -= op.volume_ul
            shortfall[key] = max(shortfall[key], -level[key])
        else:
            level[key] += op.volume_ul
            overflow[key] = max(overflow[key], level[key] - op.container.max_volume)
    for key, short in shortfall.items():
        if short > 1e-6:
            found.append(f"{objects[key].name} is short of {short:.0f} µL (refill it)")
    for key, over in overflow.items():
        if over > 1e-6:
            found.append(f"{objects[key].name} would overflow by {over:.0f} µL")
    return found
