"""Expansion of campaigns into planner problems: keys, transport, lags, spans, conditions,
pinned instruments, quick layouts, re-planning."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator.campaign import Campaign, CampaignRun, load_campaign
from orchestrator.planner import check
from orchestrator.planning import expand, pin_graph, plan_campaign
from orchestrator.planning.expand import PLATES_OUT
from orchestrator.planning.modulo import pipeline
from orchestrator.planning.replan import replan_during_run
from orchestrator.protocol import load_protocol
from orchestrator.protocol.graph import ActionNode
from orchestrator.workcell import load_workcell

ROOT = Path(__file__).resolve().parents[2]
W24 = ROOT / "protocols" / "workcells" / "w24.yaml"
W96 = ROOT / "protocols" / "workcells" / "w96.yaml"


def campaign_of(protocol: str, plates: int, params: dict[str, object], workcell: Path = W24) -> Campaign:
    cell = load_workcell(workcell)
    graph = load_protocol(ROOT / "protocols" / protocol, params, workcell=cell)
    return Campaign("t", "", "t.yaml", cell, tuple(CampaignRun(graph, 0.0, 0, 0, i) for i in range(plates)))


def test_passage_visit_ops_lags_and_spans() -> None:
    exp = expand(campaign_of("ipsc-w24.yaml", 1, {"days": 6}))
    rx = exp.runs[0]
    ids = [o.id for o in rx.ops]
    day4 = [i for i in ids if i.startswith("R0001:day[4]")]
    assert day4 == [
        "R0001:day[4].passage.dissociate>fetch", "R0001:day[4].passage.dissociate>in",
        "R0001:day[4].passage.dissociate", "R0001:day[4].passage.harvest",
        "R0001:day[4].passage.count>in", "R0001:day[4].passage.count",
        "R0001:day[4].passage.reseed>in", "R0001:day[4].passage.reseed",
        "R0001:day[4].passage.reseed>home", "R0001:day[4].passage.reseed>store",
    ]
    op = {o.id: o for o in rx.ops}
    assert op["R0001:day[4].passage.dissociate>fetch"].resources == ("incubator",)
    assert op["R0001:day[4].passage.count>in"].resources == ("arm",)
    assert op["R0001:day[4].passage.dissociate"].duration == 180
    roles = {(lg.a, lg.b, rx.roles[lg]): lg for lg in rx.lags}
    # protocol window: harvest 5-8 min after the end of dissociate
    lag = roles[("R0001:day[4].passage.dissociate", "R0001:day[4].passage.harvest", "protocol")]
    assert (lag.min, lag.max, lag.kind) == (300, 480, "end_start")
    # cadence: day 4 starts 4 x 24 h +- 1 h after day 0 (start-start, anchored, no drift)
    lag = roles[("R0001:day[0].seed", "R0001:day[4].passage.dissociate", "cadence")]
    assert (lag.min, lag.max, lag.kind) == (4 * 86400 - 3600, 4 * 86400 + 3600, "start_start")
    # the plate stays out between its steps (max keep_out), moves are chained without slack
    lag = roles[("R0001:day[4].passage.harvest", "R0001:day[4].passage.count>in", "keep-out")]
    assert lag.max == exp.keep_out
    lag = roles[("R0001:day[4].passage.count>in", "R0001:day[4].passage.count", "transport")]
    assert (lag.min, lag.max) == (0, 0)
    spans = {(s.resource, s.first, s.last) for s in rx.spans}
    # the plate holds the liquid handler's nest through the dissociation wait
    assert ("lh1/site", "R0001:day[4].passage.dissociate>fetch", "R0001:day[4].passage.count>in") in spans
    assert ("counter/site", "R0001:day[4].passage.count>in", "R0001:day[4].passage.reseed>in") in spans
    assert (PLATES_OUT, "R0001:day[4].passage.dissociate>fetch", "R0001:day[4].passage.reseed>store") in spans
    # the actions inside the span do not claim the site too
    assert op["R0001:day[4].passage.harvest"].resources == ("lh1",)
    # cadence targets come from the plan's offsets
    cp = plan_campaign(campaign_of("ipsc-w24.yaml", 1, {"days": 6}), time_limit=2)
    assert cp.problem.op["R0001:day[4].passage.dissociate"].target == pytest.approx(
        cp.schedule.starts["R0001:day[0].seed"] + 4 * 86400)


def test_measurement_conditions_are_predicted_false_and_decisions_override() -> None:
    campaign = campaign_of("ipsc-maintenance.yaml", 1, {"days": 3}, ROOT / "protocols" / "workcells" / "default.yaml")
    exp = expand(campaign)
    rx = exp.runs[0]
    assert ("day[1].feed", "confluence < passage_at") in rx.unknown
    keys = {i.key for i in rx.info if i.kind == "action"}
    assert "day[1].image" in keys and "day[1].feed" not in keys and "release" in keys
    exp2 = expand(campaign, decisions={0: {"day[1].feed": True}})
    keys2 = {i.key for i in exp2.runs[0].info if i.kind == "action"}
    assert "day[1].feed" in keys2


def test_two_liquid_handlers_are_pinned_round_robin() -> None:
    campaign = campaign_of("ipsc-w24.yaml", 4, {"days": 2}, W96)
    exp = expand(campaign)
    assert [rx.pins["liquid_handler"] for rx in exp.runs] == ["lh1", "lh2", "lh1", "lh2"]
    pinned = pin_graph(campaign.runs[1].graph, exp.runs[1].pins)
    feeds = [n for n in pinned.walk() if isinstance(n, ActionNode) and n.instrument_class == "liquid_handler"]
    assert feeds and all(n.instrument == "lh2" for n in feeds)
    assert pinned.content_hash == campaign.runs[1].graph.content_hash


def test_w24_plans_feasibly_on_its_cadence() -> None:
    campaign = load_campaign(ROOT / "bench" / "workloads" / "W24.yaml")
    cp = plan_campaign(campaign, time_limit=10)
    assert cp.feasible and not check(cp.problem, cp.schedule)
    assert cp.mean_cadence_error_s <= 30 and cp.max_cadence_error_s <= 300
    assert cp.max_plates_out <= campaign.workcell.plates_out
    assert cp.lower_bound_s <= cp.makespan_s
    assert len(cp.starts) == 24 and all("day[13].feed" in s for s in cp.starts.values())
    period, _ = pipeline(cp.expansion)
    assert period is not None and period >= 660  # at least the liquid handler's work per passage


def test_slot_shortage_is_proved() -> None:
    cp = plan_campaign(campaign_of("ipsc-w24.yaml", 50, {"days": 2}), time_limit=3, explain=False)
    assert cp.status == "infeasible" and not cp.feasible
    assert any("44 slots" in v for v in cp.violations)


def test_replan_after_an_overrun_and_a_branch() -> None:
    campaign = campaign_of("ipsc-w24.yaml", 6, {"days": 6})
    cp = plan_campaign(campaign, time_limit=5)
    key = "day[3].feed"
    start = cp.schedule.starts[f"R0002:{key}"]
    rp = replan_during_run(cp, now=start + 60, actual={1: {key: (start, 300 + 120)}},
                           decisions={3: {"day[5].feed": False, "day[5].passage": True},
                                      5: {"day[5].feed": False, "day[5].passage": True}}, time_limit=2)
    assert rp.feasible, rp.violations
    for run in (3, 5):  # (run 5's day 5 lies beyond the local repair's two days: placed anyway)
        assert "day[5].passage.dissociate" in rp.starts[run] and "day[5].feed" not in rp.starts[run]
    # the overrunning step and what started before stay where they happened
    assert rp.schedule.starts[f"R0002:{key}"] == start
    assert f"R0002:{key}" in rp.frozen
    assert not check(rp.problem, rp.schedule)
    assert rp.seconds < 2


def test_pin_graph_keeps_explicit_instruments() -> None:
    cell = load_workcell(W96)
    graph = load_protocol(ROOT / "protocols" / "ipsc-w24.yaml", {"days": 1}, workcell=cell)
    node = next(n for n in graph.walk() if isinstance(n, ActionNode))
    fixed = dataclasses.replace(graph, steps=(dataclasses.replace(node, instrument="lh2"),))
    pinned = pin_graph(fixed, {"liquid_handler": "lh1"})
    assert next(n for n in pinned.walk() if isinstance(n, ActionNode)).instrument == "lh2"
