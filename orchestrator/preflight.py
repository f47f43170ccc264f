"""Driver preflight at validate time: each driver that declares a ``preflight`` check
(an Opentrons protocol file is simulated with ``opentrons.simulate``) sees every step that
may run on it, before anything runs."""

from __future__ import annotations

from collections.abc import Callable

from drivers.errors import CellwrightError
from drivers.spec import resolve_factory
from orchestrator.protocol.graph import ActionNode, Expr, ProtocolGraph
from orchestrator.workcell import Workcell


def preflight(graph: ProtocolGraph, workcell: Workcell) -> list[str]:
    """Problems the workcell's drivers find in the protocol's steps, as ``path:line:col: message``."""
    problems: list[str] = []
    for node in graph.walk():
        if not isinstance(node, ActionNode):
            continue
        names = [node.instrument] if node.instrument else [
            n for n in workcell.of_class(node.instrument_class) if workcell.can(n, node.action)]
        args = {k: v for k, v in node.args.items() if not isinstance(v, Expr)}
        for name in names:
            inst = workcell.instruments[name]
            if inst.driver.preflight is None:
                continue
            check: Callable[..., list[str]] = resolve_factory(inst.driver.preflight)  # type: ignore[assignment]
            try:
                found = check(inst.config, node.action, args)
            except CellwrightError as exc:
                found = [str(exc)]
            problems += [f"{node.location}: step {node.key} on {name}: {p}" for p in found]
    return problems
