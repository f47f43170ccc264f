"""One entry point for running protocols: the CLI, tests and benchmarks all use it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.clock import make_clock
from orchestrator.engine.dispatch import OperatorDesk
from orchestrator.engine.engine import Engine
from orchestrator.protocol import load_protocol
from orchestrator.protocol.graph import ProtocolGraph
from orchestrator.store import Store
from orchestrator.workcell import Workcell, load_workcell


@dataclass
class RunResult:
    """What :func:`run_protocol` returns: the summary and where things were written."""

    run_id: str
    summary: dict[str, Any]
    db: str


def run_protocol(
    protocol: str | Path | ProtocolGraph,
    *,
    workcell: str | Path | Workcell | None = None,
    overrides: Mapping[str, str] | None = None,
    clock: str = "virtual",
    seed: int = 0,
    db: str | Path = ":memory:",
    operator: str = "engine",
    desk: OperatorDesk | None = None,
    on_event: Callable[[str, str, str], None] | None = None,
    on_start: Callable[[Engine, str], None] | None = None,
) -> RunResult:
    """Validate, then execute one protocol run to the end.

    Args:
        protocol: protocol file, or an already compiled graph.
        workcell: workcell file or object (default: the bundled simulated workcell).
        overrides: ``-p name=value`` parameter overrides (strings).
        clock: ``virtual`` or ``wall``.
        db: SQLite file, or ``:memory:``.
        on_start: called with the engine and run id before execution starts.

    Raises:
        ProtocolErrors: the protocol is invalid (nothing was recorded).
        ConfigurationError: the workcell is invalid.
    """
    cell = workcell if isinstance(workcell, Workcell) else load_workcell(workcell)
    graph = protocol if isinstance(protocol, ProtocolGraph) else load_protocol(protocol, overrides, workcell=cell)
    the_clock = make_clock(clock)
    store = Store(db, durability="normal" if the_clock.virtual else "full")
    try:
        engine = Engine(cell, store, the_clock, seed=seed, operator=operator, desk=desk, on_event=on_event)
        run_id = engine.add_run(graph)
        if on_start is not None:
            on_start(engine, run_id)
        started = time.perf_counter()
        the_clock.run(engine.execute([run_id]))
        wall = time.perf_counter() - started
        return RunResult(run_id, engine.summary(run_id, wall), str(db))
    finally:
        store.close()
