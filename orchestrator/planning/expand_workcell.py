"""Workcell side of the expansion (see :mod:`orchestrator.planning.expand`): action
durations, instrument choice and pinning, planner resources, and per-protocol facts
(release groups, first repeat cadence). All times are seconds."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from drivers.actions import ActionInfo, actions_of, catalogue
from orchestrator.campaign import Campaign
from orchestrator.planner import Resource
from orchestrator.protocol.graph import ActionNode, GroupNode, Node, ProtocolGraph, RepeatNode
from orchestrator.workcell import Workcell

from .expand_types import PLATES_OUT, SITE, ExpansionError


def duration_of(workcell: Workcell, instrument: str, action: str) -> float:
    """Expected duration (s) of ``action`` on ``instrument``: the instrument's configured
    ``durations`` override, else the catalogue's nominal duration (as the drivers do)."""
    inst = workcell.instruments[instrument]
    override = getattr(inst.config, "durations", None) or {}
    if action in override:
        return float(override[action])
    info = _driver_actions(workcell, instrument).get(action)
    if info is None:
        raise ExpansionError(f"instrument {instrument!r} ({inst.instrument_class}) has no action {action!r}")
    return float(info.duration_s)


def _driver_actions(workcell: Workcell, instrument: str) -> dict[str, ActionInfo]:
    inst = workcell.instruments[instrument]
    cls = getattr(inst.driver, "driver_class", None) or inst.driver.instrument_class
    return actions_of(cls)


def workcell_actions(workcell: Workcell) -> dict[str, ActionInfo]:
    """Every action a protocol may name on ``workcell`` (class interfaces + driver extras)."""
    found = getattr(workcell, "actions", None)
    return dict(found()) if callable(found) else dict(catalogue())


def choose_instrument(workcell: Workcell, instrument_class: str, action: str, pins: Mapping[str, str],
                      index: int) -> str | None:
    """The instrument a run uses for ``instrument_class.action``: its pinned instrument of
    the class when that one can do the action, else the capable ones round-robin."""
    pinned = pins.get(instrument_class)
    if pinned is not None and action in _driver_actions(workcell, pinned):
        return pinned
    able = [n for n in workcell.of_class(instrument_class) if action in _driver_actions(workcell, n)]
    return able[index % len(able)] if able else None


def workcell_resources(workcell: Workcell) -> list[Resource]:
    """Planner resources of a workcell: one per instrument (concurrent actions: its config
    ``capacity``, default 1), one per instrument site (``<name>/site``, capacity = nests;
    not for plate movers) and ``plates-out`` (capacity = ``limits.plates_out``)."""
    out: list[Resource] = []
    for name, inst in workcell.instruments.items():
        lock = getattr(inst.config, "capacity", 1)
        lock = lock if isinstance(lock, int) and lock >= 1 else 1
        if inst.instrument_class == "plate_mover":
            out.append(Resource(name, min(lock, inst.nests)))
            continue
        out.append(Resource(name, lock))
        out.append(Resource(name + SITE, inst.nests))
    out.append(Resource(PLATES_OUT, workcell.plates_out))
    return out


def assign_pins(campaign: Campaign) -> list[dict[str, str]]:
    """Per run: instrument class -> the instrument it uses, round-robin over the runs of
    each class (so two liquid handlers get every other plate)."""
    wc = campaign.workcell
    classes = sorted({i.instrument_class for i in wc.instruments.values()})
    pins = []
    for i, _ in enumerate(campaign.runs):
        pins.append({c: names[i % len(names)] for c in classes if (names := wc.of_class(c))})
    return pins


def pin_graph(graph: ProtocolGraph, pins: Mapping[str, str], node_pins: Mapping[str, str] | None = None
              ) -> ProtocolGraph:
    """``graph`` with every action that names no instrument pinned: to ``node_pins[static
    key]`` (what the expansion chose), else ``pins[class]`` (content hash unchanged: the
    protocol file is the same; only the choice of instrument is fixed)."""

    def visit(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
        out: list[Node] = []
        for n in nodes:
            if isinstance(n, ActionNode):
                chosen = (node_pins or {}).get(n.key) or pins.get(n.instrument_class)
                if n.instrument is None and chosen is not None:
                    n = dataclasses.replace(n, instrument=chosen)
            elif isinstance(n, (GroupNode, RepeatNode)):
                n = dataclasses.replace(n, steps=visit(n.steps))
            out.append(n)
        return tuple(out)

    return dataclasses.replace(graph, steps=visit(graph.steps))


def _free_offsets(campaign: Campaign) -> set[int]:
    """Groups (campaign entries) whose plates share one release: the planner picks offsets."""
    by_group: dict[int, set[float]] = {}
    for r in campaign.runs:
        by_group.setdefault(r.group, set()).add(r.release_s)
    return {g for g, rel in by_group.items() if len(rel) == 1}


def first_period(graph: ProtocolGraph) -> float | None:
    """``every`` of the first repeat with a cadence in the protocol, seconds."""
    for n in graph.walk():
        if isinstance(n, RepeatNode) and n.every_s:
            return n.every_s
    return None


def first_window(graph: ProtocolGraph) -> float:
    """``window`` of the first repeat with a cadence (0 when none)."""
    for n in graph.walk():
        if isinstance(n, RepeatNode) and n.every_s:
            return n.window_s
    return 0.0

