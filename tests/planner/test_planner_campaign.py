"""A synthetic campaign (~500 ops, max lags, +-1 h windows, 4 plates out) and re-planning."""

import dataclasses

from planner_campaign import make_campaign

from orchestrator.planner import check, plan, replan


def test_campaign_500_ops_zero_violations():
    # 6 plates x 14 days, ideal times only 60 s apart: visits must be spread out, plates must
    # not wait more than 60 s between steps, at most 4 out of the incubator at once.
    p = make_campaign(6, 14, stagger=60, max_wait=60)
    assert len(p.operations) == 504
    s = plan(p, time_limit=0.5, iterations=3)
    assert s.ok, s.notes
    assert check(p, s) == []
    for o in p.operations:
        if o.target is not None:
            assert abs(s.starts[o.id] - o.target) <= 3600


def test_first_construction_alone_solves_the_campaign():
    p = make_campaign(6, 14, stagger=60, max_wait=60)
    s = plan(p, iterations=0)
    assert s.ok and check(p, s) == []


def test_replan_after_an_overrun_keeps_started_work():
    p = make_campaign(6, 2, stagger=120, max_wait=300)
    first = plan(p, iterations=0)
    now = first.starts["p2d0.feed"] + 1.0  # p2's feed has started ... and overruns by 200 s
    ops = [dataclasses.replace(o, duration=o.duration + 200) if o.id == "p2d0.feed" else o for o in p.operations]
    assert check(dataclasses.replace(p, operations=tuple(ops)), first)  # the old plan is now broken
    p2 = dataclasses.replace(p, operations=tuple(ops))
    s = replan(p2, first, now, iterations=2)
    started = {k for k, v in first.starts.items() if v < now}
    assert s.ok, s.notes
    assert check(p2, s) == []
    for k in started:
        assert s.starts[k] == first.starts[k] and s.assignment[k] == first.assignment[k]
    assert all(s.starts[k] >= now for k in s.starts if k not in started)
    assert s.notes[0].startswith("replanned at")


def test_replan_reports_infeasible_when_frozen_facts_break_a_max_lag():
    p = make_campaign(1, 1, max_wait=60)
    first = plan(p, iterations=0)
    now = first.starts["p0d0.feed"] + 10  # feed started, but the plate is stuck far too long
    ops = [dataclasses.replace(o, duration=o.duration + 1000) if o.id == "p0d0.load" else o for o in p.operations]
    p2 = dataclasses.replace(p, operations=tuple(ops))
    s = replan(p2, first, now, frozen={"p0d0.fetch", "p0d0.load", "p0d0.feed"}, iterations=0)
    assert s.status == "infeasible" and any("p0d0.feed" in n for n in s.notes)


def test_anchored_campaign_visits_keep_the_daily_cadence():
    # Visits tied to the plate's first visit by start-start lags (24 h +- 1 h): one group per plate.
    p = make_campaign(6, 14, stagger=60, max_wait=60, anchored=True)
    s = plan(p, time_limit=0.5, iterations=2)
    assert s.ok, s.notes
    assert check(p, s) == []
