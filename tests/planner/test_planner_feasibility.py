"""Feasibility analysis proves infeasibility and names the constraints; bounds are valid."""

import math

from orchestrator.planner import Lag, Operation, Problem, Resource, analyze, lower_bound, plan


def test_lag_cycle_is_proved_infeasible_and_named():
    p = Problem(
        [Operation("a", 10, ("m",)), Operation("b", 5, ("n",)), Operation("c", 5)],
        [Resource("m"), Resource("n")],
        [Lag("a", "b", 30), Lag("b", "c", 0), Lag("a", "c", 0, 20, "start_start")],
    )
    f = analyze(p)
    assert f.infeasible and f.conflicts[0].kind == "lag_cycle"
    text = " ".join(f.conflicts[0].constraints)
    assert "start(b) - end(a) >= 30 s" in text
    assert "start(c) - end(b) >= 0 s" in text
    assert "start(c) - start(a) <= 20 s" in text
    assert set(f.conflicts[0].ops) == {"a", "b", "c"}
    s = plan(p)
    assert s.status == "infeasible"
    assert any("start(c) - start(a) <= 20 s" in n for n in s.notes)


def test_release_deadline_window_contradiction_names_both():
    p = Problem([Operation("a", 10, release=100), Operation("b", 10, deadline=115)], [], [Lag("a", "b")])
    f = analyze(p)
    assert f.infeasible
    msg = f.conflicts[0].message
    assert "release of a: start >= 100 s" in msg and "deadline of b: end <= 115 s" in msg


def test_frozen_start_that_breaks_a_max_lag_is_proved():
    p = Problem([Operation("a", 10, frozen_start=0), Operation("b", 5, frozen_start=30)], [],
                [Lag("a", "b", 0, 10)])
    f = analyze(p)
    assert f.infeasible and "frozen start of b = 30 s" in f.conflicts[0].message


def test_resource_overload_names_resource_and_window():
    ops = [Operation(f"o{i}", 10, ("m",), release=5, deadline=30) for i in range(3)]
    f = analyze(Problem(ops + [Operation("x", 10, ("m",))], [Resource("m")]))
    assert f.infeasible
    c = f.conflicts[0]
    assert c.kind == "resource_overload" and c.resource == "m" and (c.start, c.end) == (5, 30)
    assert set(c.ops) == {"o0", "o1", "o2"} and "need 30 s within [5, 30] s" in c.message
    # with capacity 2 the same load fits
    assert not analyze(Problem(ops, [Resource("m", 2)])).infeasible


def test_feasible_problem_windows_and_bounds():
    p = Problem(
        [Operation("a", 10, ("m",)), Operation("b", 20, ("m",), release=3), Operation("c", 4, ("n",))],
        [Resource("m"), Resource("n")],
        [Lag("a", "c", 2)],
    )
    f = analyze(p)
    assert not f.infeasible and f.earliest == {"a": 0, "b": 3, "c": 12}
    assert f.latest["a"] == math.inf
    assert lower_bound(p, f) == 30  # machine m: load 30 from time 0
    s = plan(p)
    assert s.status == "optimal" and s.makespan == 30


def test_campaign_scale_analysis_is_fast():
    from planner_campaign import make_campaign

    f = analyze(make_campaign(10, 14))
    assert not f.infeasible and len(f.est) == 840
