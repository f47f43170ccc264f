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

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from drivers.actions import ActionInfo, actions_of, catalogue
from drivers.errors import ConfigurationError
from orchestrator.campaign import Campaign
from orchestrator.planner import Lag, Operation, Resource, Span
from orchestrator.protocol import graph as pg
from orchestrator.protocol.graph import ActionNode, Expr, GroupNode, Node, ProtocolGraph, RepeatNode, WaitNode
from orchestrator.workcell import Workcell

OperatorNode: Any = getattr(pg, "OperatorNode", None)
RELEAD_AFTER_HOME = True
"""Whether the executor re-estimates the plate's move after taking it home in
``_wait_until`` (it does: the lead is re-estimated from the incubator slot). When False,
a visit's first step would start one incubator ``fetch`` later than its planned start
and the plan would have to give it that much earlier (`OpInfo.engine_offset`)."""
SLOT = "<slot>"
PLATES_OUT = "plates-out"
SITE = "/site"
DAY = 86400.0


class ExpansionError(ConfigurationError):
    """The campaign cannot be turned into a plan (no plate mover, unknown instrument...)."""


@dataclass(frozen=True, slots=True)
class OpInfo:
    """What an operation of the expansion stands for.

    Attributes:
        id: operation id (``R0003:day[4].passage.harvest``, ``R0003:day[4].passage.harvest>home``).
        run: index of the run in ``campaign.runs``.
        kind: ``action``, ``fetch``, ``transfer``, ``home`` (arm transfer to the incubator) or ``store``.
        key: the executor's dynamic step key (actions only).
        static_key: the protocol's static key (actions only).
        instrument: instrument (or mover) it runs on.
        action: driver action name.
        plate: labware name moved / worked on.
        visit: visit number in the run (plate out of the incubator once per visit).
        engine_offset: planned start minus the value to give the executor for this action
            (the executor starts bringing the plate ``lead`` s before the value it is given,
            with ``lead`` estimated before a plate is taken home, see `plan_value`).
        planned: False for ops of steps the executor would not run as predicted.
    """

    id: str
    run: int
    kind: str
    key: str | None
    static_key: str | None
    instrument: str
    action: str
    plate: str | None
    visit: int
    engine_offset: float = 0.0


@dataclass(frozen=True, slots=True)
class Cadence:
    """Iteration ``k`` of a repeat instance: its first action and the anchor (iteration 0).

    ``anchor`` is None for the iteration that anchors the cadence (k = 0).
    """

    op: str
    anchor: str | None
    k: int
    every: float
    window: float
    repeat: str


@dataclass
class RunExpansion:
    """One run, expanded (times in ``rel`` are relative to the run's first operation)."""

    index: int
    label: str
    release: float
    priority: int
    graph: ProtocolGraph
    pins: dict[str, str]
    ops: list[Operation] = field(default_factory=list)
    info: list[OpInfo] = field(default_factory=list)
    lags: list[Lag] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    roles: dict[Lag, str] = field(default_factory=dict)
    node_pins: dict[str, str] = field(default_factory=dict)
    rel: dict[str, float] = field(default_factory=dict)
    cadence: list[Cadence] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)
    spread: float = DAY

    @property
    def first(self) -> str | None:
        """Id of the run's first operation (None when it predicts no work)."""
        return self.ops[0].id if self.ops else None

    @property
    def length(self) -> float:
        """Template length: first op start to last op end, seconds."""
        if not self.ops:
            return 0.0
        return max(self.rel[o.id] + o.duration for o in self.ops)


@dataclass
class Expansion:
    """A whole campaign, expanded. See the module docstring."""

    campaign: Campaign
    runs: list[RunExpansion]
    resources: list[Resource]
    keep_out: float
    durations: dict[tuple[str, str], float]
    decisions: dict[int, dict[str, bool]] = field(default_factory=dict)
    home_before: dict[int, set[str]] = field(default_factory=dict)

    @cached_property
    def info(self) -> dict[str, OpInfo]:
        """OpInfo by operation id."""
        return {i.id: i for r in self.runs for i in r.info}

    @cached_property
    def roles(self) -> dict[Lag, str]:
        """What each lag stands for (``cadence``, ``protocol``, ``keep-out``, ``transport``...)."""
        out: dict[Lag, str] = {}
        for r in self.runs:
            out.update(r.roles)
        return out

    @property
    def operations(self) -> int:
        """Number of operations."""
        return sum(len(r.ops) for r in self.runs)


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
        _Walk(rx, wc, dur, (decisions or {}).get(i, {}), (home_before or {}).get(i, set())).run()
        out.append(rx)
    return Expansion(campaign, out, workcell_resources(wc), wc.keep_out_s, dur,
                     {i: dict(d) for i, d in (decisions or {}).items()},
                     {i: set(k) for i, k in (home_before or {}).items() if k})


@dataclass
class _Target:
    """The executor's ``_IterationTarget``: ideal start of an iteration's first action."""

    ideal_t: float
    window: float
    repeat: str
    k: int
    every: float
    anchor: str | None  # op id of iteration 0's first action (None: relative to entry)
    entry: tuple[str | None, float]  # executor time at iteration entry: end(ref) + offset


class _Walk:
    """Mirror of RunExecutor/Transport for one run, in template time (run alone)."""

    def __init__(self, rx: RunExpansion, wc: Workcell, dur: Mapping[tuple[str, str], float],
                 decisions: Mapping[str, bool], home_before: set[str] | frozenset[str] = frozenset()) -> None:
        self.rx = rx
        self.wc = wc
        self.dur = dur
        self.decisions = decisions
        self.home_before = home_before
        self.graph = rx.graph
        self.env: dict[str, Any] = dict(rx.graph.parameters)
        self.actions = workcell_actions(wc)
        self.movers = wc.of_class("plate_mover")
        self.mover_res: str | tuple[str, ...] = self.movers[0] if len(self.movers) == 1 else tuple(self.movers)
        self.keep_out = wc.keep_out_s
        self.t = 0.0  # template clock
        self.now: tuple[str | None, float] = (None, 0.0)  # executor clock = end(ref) + offset
        self.end_t: dict[str, float] = {}
        self.last_end: dict[str, tuple[str | None, float, float]] = {}  # static key -> (ref, off, t)
        self.target: _Target | None = None
        self.iteration_start: tuple[str, float] | None = None
        self.loc: dict[str, str] = {}
        self.home: dict[str, str] = {}
        for name, decl in rx.graph.labware.items():
            self.loc[name] = SLOT
            self.home[name] = wc.incubator if decl.home == "incubator" else decl.home
            if self.home[name] not in wc.instruments:
                raise ExpansionError(f"labware {name!r}: home {decl.home!r} is not an instrument of {wc.name}")
        self.multi = len(rx.graph.labware) > 1
        self.site_open: dict[str, tuple[str, str]] = {}  # plate -> (instrument, first op)
        self.station_open: dict[str, str] = {}  # plate -> first op holding the incubator station
        self.out_open: dict[str, str] = {}  # plate -> fetch op
        self.visit = 0
        self.last_op: str | None = None
        self.last_key: str | None = None

    # -- bookkeeping ------------------------------------------------------------------
    def _add(self, oid: str, duration: float, resources: tuple[Any, ...], info: OpInfo, start: float) -> str:
        rx = self.rx
        rx.ops.append(Operation(oid, duration, resources, job=rx.label, group=f"{rx.label}#v{info.visit}"))
        rx.info.append(info)
        rx.rel[oid] = start
        self.end_t[oid] = start + duration
        self.t = start + duration
        self.last_op = oid
        return oid

    def _lag(self, a: str | None, b: str, lo: float, hi: float | None, kind: str = "end_start",
             role: str = "transport") -> None:
        if a is None or a == b:
            return
        lag = Lag(a, b, lo, hi, kind)  # type: ignore[arg-type]
        self.rx.lags.append(lag)
        self.rx.roles[lag] = role

    def _true(self, expr: Expr, key: str) -> bool:
        if key in self.decisions:
            return bool(self.decisions[key])
        if expr.names <= {"iteration"}:
            return bool(expr.evaluate(self.env))
        self.rx.unknown.append((key, expr.source))
        return False

    def _now_t(self) -> float:
        ref, off = self.now
        return (self.end_t[ref] if ref is not None else 0.0) + off

    def _tid(self, base: str, what: str, plate: str) -> str:
        return f"{self.rx.label}:{base}>{what}" + (f":{plate}" if self.multi else "")

    # -- transport (mirror of Transport.home / bring / estimate_bring) -------------------
    def _estimate_bring(self, plate: str | None, instrument: str) -> float:
        if plate is None:
            return 0.0
        where = self.loc[plate]
        if where == instrument:
            return 0.0
        total = 0.0
        if where == SLOT:
            total += self.dur[(self.home[plate], "fetch")]
            if instrument == self.home[plate]:
                return total
        return total + self.dur[(self.movers[0], "transfer")]

    def _home_plate(self, plate: str, base: str) -> None:
        """Transport.home at the current executor time (called right when decided)."""
        where = self.loc[plate]
        if where == SLOT:
            return
        inc = self.home[plate]
        ref, off = self.now
        first: str | None = None
        if where != inc:
            tr = self._add(self._tid(base, "home", plate), self.dur[(self.movers[0], "transfer")],
                           (self.mover_res,),
                           OpInfo(self._tid(base, "home", plate), self.rx.index, "home", None, None,
                                  self.movers[0], "transfer", plate, self.visit), self._now_t())
            self._lag(ref, tr, off, off, role="home")
            self._close_site(plate, tr)
            self.station_open[plate] = tr
            first = tr
        st_id = self._tid(base, "store", plate)
        st = self._add(st_id, self.dur[(inc, "store")], (inc,),
                       OpInfo(st_id, self.rx.index, "store", None, None, inc, "store", plate, self.visit), self.t)
        if first is not None:
            self._lag(first, st, 0.0, 0.0)
        else:
            self._lag(ref, st, off, off, role="home")
            self.station_open[plate] = st
        self.rx.spans.append(Span(inc + SITE, self.station_open.pop(plate), st))
        if plate in self.out_open:
            self.rx.spans.append(Span(PLATES_OUT, self.out_open.pop(plate), st))
        self.loc[plate] = SLOT
        self.now = (st, 0.0)

    def _close_site(self, plate: str, op: str) -> None:
        opened = self.site_open.pop(plate, None)
        if opened is not None:
            self.rx.spans.append(Span(opened[0] + SITE, opened[1], op))

    def _home_all(self, base: str) -> None:
        for plate in self.loc:
            if self.loc[plate] != SLOT:
                self._home_plate(plate, base)

    def _bring(self, plate: str, instrument: str, base: str, start: float) -> list[str]:
        """Transport.bring (the site of ``instrument`` is taken first, by _to_site)."""
        where = self.loc[plate]
        ops: list[str] = []
        tr_dur = self.dur[(self.movers[0], "transfer")]
        if where == SLOT:
            self.visit += 1
            inc = self.home[plate]
            fid = self._tid(base, "fetch", plate)
            fetch = self._add(fid, self.dur[(inc, "fetch")], (inc,),
                              OpInfo(fid, self.rx.index, "fetch", None, None, inc, "fetch", plate, self.visit),
                              start)
            ops.append(fetch)
            self.out_open[plate] = fetch
            self.site_open[plate] = (instrument, fetch)
            if instrument != inc:
                tid = self._tid(base, "in", plate)
                tr = self._add(tid, tr_dur, (self.mover_res,),
                               OpInfo(tid, self.rx.index, "transfer", None, None, self.movers[0], "transfer",
                                      plate, self.visit), self.t)
                self.rx.spans.append(Span(inc + SITE, fetch, tr))
                ops.append(tr)
        else:
            tid = self._tid(base, "in", plate)
            tr = self._add(tid, tr_dur, (self.mover_res,),
                           OpInfo(tid, self.rx.index, "transfer", None, None, self.movers[0], "transfer", plate,
                                  self.visit), start)
            self._close_site(plate, tr)
            self.site_open[plate] = (instrument, tr)
            ops.append(tr)
        self.loc[plate] = instrument
        return ops

    # -- nodes (mirror of RunExecutor._block ...) -----------------------------------------
    def run(self) -> None:
        self._block(self.graph.steps, "")
        self._home_all(self.last_key or "end")

    def _block(self, nodes: tuple[Node, ...], prefix: str) -> None:
        for node in nodes:
            key = f"{prefix}{node.id}"
            if node.when is not None and not self._true(node.when, key):
                continue
            if isinstance(node, ActionNode):
                self._action(node, key)
            elif isinstance(node, WaitNode):
                self._wait(node, key)
            elif OperatorNode is not None and isinstance(node, OperatorNode):
                self._operator(node, key)
            elif isinstance(node, RepeatNode):
                self._repeat(node, key)
            elif isinstance(node, GroupNode):
                self._block(node.steps, key + ".")

    def _repeat(self, node: RepeatNode, key: str) -> None:
        anchor: tuple[str, float] | None = None
        k = 0
        while True:
            if node.times is not None and k >= node.times:
                break
            if k >= node.max_times:
                break
            self.env["iteration"] = k
            if node.every_s is not None:
                if anchor is None:
                    self.target = _Target(self._now_t(), node.window_s, key, k, node.every_s, None, self.now)
                else:
                    self.target = _Target(anchor[1] + k * node.every_s, node.window_s, key, k, node.every_s,
                                          anchor[0], self.now)
            self._block(node.steps, f"{key}[{k}].")
            if anchor is None and node.every_s is not None:
                anchor = self.iteration_start
            self.target = None
            self.iteration_start = None
            k += 1
            if node.until is not None and self._true(node.until, f"{key}[{k - 1}]#until"):
                break
        self.env.pop("iteration", None)

    def _wait(self, node: WaitNode, key: str) -> None:
        ref, off = self.now
        start_t = self._now_t()
        if node.seconds > self.keep_out and any(v != SLOT for v in self.loc.values()):
            self._home_all(self.last_key or key)
        self.now = (ref, off + node.seconds)
        self.t = max(self.t, start_t + node.seconds)
        self.last_end[node.key] = (ref, off + node.seconds, start_t + node.seconds)

    def _operator(self, node: Any, key: str) -> None:
        """A task for a person: the executor takes the plates home and pauses the run until
        someone confirms it. Its length is unknown: planned as instantaneous (the rest of
        the run is re-planned when it resumes)."""
        self._home_all(self.last_key or key)
        self.rx.unknown.append((key, f"operator task ({node.message}): planned as instantaneous"))
        ref, off = self.now
        self.last_end[node.key] = (ref, off, self._now_t())

    def _plate_arg(self, node: ActionNode) -> str | None:
        info = self.actions[f"{node.instrument_class}.{node.action}"]
        for name, value in node.args.items():
            p = info.param(name)
            if p is not None and p.kind == "plate" and isinstance(value, str):
                return value
        return None

    def _action(self, node: ActionNode, key: str) -> None:
        rx = self.rx
        info = self.actions[f"{node.instrument_class}.{node.action}"]
        inst = node.instrument or choose_instrument(self.wc, node.instrument_class, node.action, rx.pins, rx.index)
        if inst is None or inst not in self.wc.instruments:
            raise ExpansionError(f"run {rx.label} step {key}: no {node.instrument_class} in the workcell can "
                                 f"{node.action}")
        rx.node_pins.setdefault(node.key, inst)
        plate = self._plate_arg(node)
        duration = self.dur[(inst, node.action)]
        oid = f"{rx.label}:{key}"
        # RunExecutor._window: lags to earlier steps (their most recent end)
        R_ref, R_off = self.now
        R_t = self._now_t()
        earliest = R_t
        lag_cons: list[tuple[str | None, float, float | None]] = []
        for lag in node.lags:
            le = self.last_end.get(lag.after)
            if le is None:
                continue
            ref, off, tend = le
            earliest = max(earliest, tend + lag.min_s)
            lag_cons.append((ref, off + lag.min_s, None if lag.max_s is None else off + lag.max_s))
        target = self.target
        if target is not None:
            earliest = max(earliest, target.ideal_t)
        # RunExecutor._wait_until(earliest, lead): a gap longer than keep_out sends every
        # plate that is out home first (the lead is the one estimated before that)
        lead = self._estimate_bring(plate, inst)
        out = any(v != SLOT for v in self.loc.values())
        split = out and (earliest - lead - R_t > self.keep_out or key in self.home_before)
        last_store: str | None = None
        if split:
            self._home_all(self.last_key or key)
            last_store = self.last_op
        bring_dur = self._estimate_bring(plate, inst)
        lo_t = max(self.t, R_t + self.keep_out + 1.0) if split else self.t
        bring: list[str] = []
        if plate is not None and self.loc[plate] != inst:
            bring = self._bring(plate, inst, key, max(lo_t, earliest - bring_dur))
            start = self.t
        else:
            start = max(lo_t, earliest)
        resources: tuple[Any, ...] = (inst,) if info.physical else ()
        offset = bring_dur - lead if bring and not RELEAD_AFTER_HOME else 0.0
        self._add(oid, duration, resources,
                  OpInfo(oid, rx.index, "action", key, node.key, inst, node.action, plate, self.visit,
                         engine_offset=offset), start)
        # the executor's timing, as lags
        first = bring[0] if bring else oid
        if R_ref is not None:
            if split:
                self._lag(R_ref, first, R_off + self.keep_out + 1.0, None, role="visit-gap")
                self._lag(last_store, first, 0.0, None, role="visit-gap")
            else:
                self._lag(R_ref, first, R_off, R_off + self.keep_out if out else None, role="keep-out")
        for a, b in zip(bring, bring[1:] + [oid]):
            self._lag(a, b, 0.0, 0.0)
        for ref, lo, hi in lag_cons:  # the executor is given start - offset: it must not wait for a lag
            self._lag(ref, oid, lo + offset, hi, role="protocol")
        if target is not None:
            self.target = None
            self.iteration_start = (oid, start)
            if target.anchor is not None:
                every, w = target.k * target.every, target.window
                self._lag(target.anchor, oid, every - w, every + w, "start_start", role="cadence")
                rx.cadence.append(Cadence(oid, target.anchor, target.k, target.every, target.window, target.repeat))
            else:
                ref, off = target.entry
                if ref is not None:
                    self._lag(ref, oid, off - target.window, off + target.window, role="entry")
                elif rx.ops and rx.ops[0].id != oid:  # relative to the run's release (= its first op)
                    self._lag(rx.ops[0].id, oid, -target.window, target.window, "start_start", role="entry")
                rx.cadence.append(Cadence(oid, None, target.k, target.every, target.window, target.repeat))
        self.now = (oid, 0.0)
        self.last_key = key
        self.last_end[node.key] = (oid, 0.0, start + duration)
