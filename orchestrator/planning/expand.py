"""Campaign -> planner operations: a static walk of each run that mirrors the executor.

For every run of a campaign the protocol graph is walked the way
:class:`orchestrator.engine.executor.RunExecutor` walks it, in a *template* time of its
own (the run alone on the workcell, every step at its earliest allowed time). The walk
produces:

* one operation per predicted action, with the executor's dynamic key (``day[3].feed``,
  ``day[4].passage.dissociate``) as part of its id (``R0007:day[3].feed``);
* the transport the executor performs around it (:mod:`orchestrator.engine.transport`):
  incubator ``fetch`` + arm ``transfer`` before the first action of a *visit*, one arm
  transfer between instruments, arm transfer home + incubator ``store`` at its end;
* lags that reproduce the executor's timing: transport chained to its action with no
  slack (the executor brings a plate exactly ``lead`` seconds before the planned start and
  takes it home at once), waits inside a visit at most ``keep_out`` (so the plate stays
  out, as the executor decides) and gaps between visits longer than ``keep_out`` (so it
  goes home), protocol lags (``start_within``/``after``) and repeat cadence (iteration
  ``k`` start-start from iteration 0 in ``[k·every − window, k·every + window]``);
* spans: the plate on an instrument's site (``lh1/site``) from the move that brings it
  until the move that takes it away (e.g. through the 5-8 min dissociation wait, so the
  actions inside do not also claim the site), the incubator transfer station, and the
  plate out of the incubator (``plates-out``, capacity = workcell ``plates_out``).

Conditions: ``when``/``until`` that read only parameters and ``iteration`` are evaluated
exactly. A condition reading a measurement cannot be known before the run: it is
predicted **False** (the step is not planned; ``until`` repeats to its limit) and listed
in :attr:`RunExpansion.unknown`; when the run reaches it, the branch actually taken is
planned by re-planning (:func:`orchestrator.planning.replan.replan_during_run`).

Instruments: when the workcell has several instruments of a class, each run is pinned to
one of them (round-robin over the runs, per class) and the run's graph is handed to the
engine with that instrument written in (:func:`pin_graph`), so the engine does what was
planned (its own choice is made by load, long before the step, and cannot follow a plan).

All times are seconds.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.campaign import Campaign

from .expand_types import DAY, PLATES_OUT, SITE, SLOT, Cadence, Expansion, ExpansionError, OpInfo, RunExpansion
from .expand_walk import OperatorNode, _Target, _Walk
from .expand_workcell import (
    _driver_actions,
    _free_offsets,
    assign_pins,
    choose_instrument,
    duration_of,
    first_period,
    first_window,
    pin_graph,
    workcell_actions,
    workcell_resources,
)

__all__ = [
    "DAY", "PLATES_OUT", "RELEAD_AFTER_HOME", "SITE", "SLOT", "Cadence", "Expansion", "ExpansionError", "OpInfo",
    "OperatorNode", "RunExpansion", "_Target", "_Walk", "_driver_actions", "_free_offsets", "assign_pins",
    "choose_instrument", "duration_of", "expand", "first_period", "first_window", "pin_graph", "workcell_actions",
    "workcell_resources",
]

RELEAD_AFTER_HOME = True
"""Whether the executor re-estimates the plate's move after taking it home in
``_wait_until`` (it does: the lead is re-estimated from the incubator slot). When False,
a visit's first step would start one incubator ``fetch`` later than its planned start
and the plan would have to give it that much earlier (`OpInfo.engine_offset`)."""


def expand(campaign: Campaign, *, decisions: Mapping[int, Mapping[str, bool]] | None = None,
           durations: Mapping[tuple[str, str], float] | None = None,
           runs: list[int] | None = None, home_before: Mapping[int, set[str]] | None = None) -> Expansion:
    """Expand ``campaign`` into planner operations (see the module docstring).

    Args:
        campaign: a loaded campaign (its workcell is used).
        decisions: per run index, known outcomes of conditions by dynamic step key
            (``{"day[5].passage": True, "day[5].feed": False}``; a repeat's ``until`` after
            iteration k is ``"day[3]#until"``); they override predictions.
        durations: per (instrument, action), durations to use instead of the workcell's.
        runs: only these run indices (default all).
        home_before: per run index, action keys before which the plate goes home (a new
            visit) even when the template gap would keep it out: a re-plan uses this when a
            step decided during the run cannot follow the previous one on the deck (its
            instrument is taken); the executor does the same when given a start later
            than ``keep_out``.

    Raises:
        ExpansionError: the workcell has no plate mover or lacks an instrument the
            protocol needs.
    """
    wc = campaign.workcell
    dur: dict[tuple[str, str], float] = {}
    for name in wc.instruments:
        for action in _driver_actions(wc, name):
            dur[(name, action)] = duration_of(wc, name, action)
    dur.update(durations or {})
    if not wc.of_class("plate_mover"):
        raise ExpansionError(f"{wc.source}: the workcell has no plate mover; the engine cannot move plates")
    pins = assign_pins(campaign)
    free = _free_offsets(campaign)
    out: list[RunExpansion] = []
    for i, run in enumerate(campaign.runs):
        if runs is not None and i not in runs:
            continue
        period = first_period(run.graph)
        spread = (period or DAY) if run.group in free else first_window(run.graph)
        rx = RunExpansion(i, f"R{i + 1:04d}", run.release_s, run.priority, run.graph, pins[i], spread=spread)
        _Walk(rx, wc, dur, (decisions or {}).get(i, {}), (home_before or {}).get(i, set()),
              RELEAD_AFTER_HOME).run()
        out.append(rx)
    return Expansion(campaign, out, workcell_resources(wc), wc.keep_out_s, dur,
                     {i: dict(d) for i, d in (decisions or {}).items()},
                     {i: set(k) for i, k in (home_before or {}).items() if k})

