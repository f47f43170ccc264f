"""The graph walker of the expansion (see :mod:`orchestrator.planning.expand`): a mirror
of :class:`orchestrator.engine.executor.RunExecutor` and its transport for one run, in
template time, that builds the run's operations, lags and spans. All times are seconds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.planner import Lag, Operation, Span
from orchestrator.protocol import graph as pg
from orchestrator.protocol.graph import ActionNode, Expr, GroupNode, Node, RepeatNode, WaitNode
from orchestrator.workcell import Workcell

from .expand_types import PLATES_OUT, SITE, SLOT, Cadence, ExpansionError, OpInfo, RunExpansion
from .expand_workcell import choose_instrument, workcell_actions

OperatorNode: Any = getattr(pg, "OperatorNode", None)


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
                 decisions: Mapping[str, bool], home_before: set[str] | frozenset[str] = frozenset(),
                 relead_after_home: bool = True) -> None:
        self.rx = rx
        self.wc = wc
        self.dur = dur
        self.decisions = decisions
        self.home_before = home_before
        self.relead_after_home = relead_after_home  # expand.RELEAD_AFTER_HOME
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
        offset = bring_dur - lead if bring and not self.relead_after_home else 0.0
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
        for a, b in zip(bring, bring[1:] + [oid], strict=False):
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
