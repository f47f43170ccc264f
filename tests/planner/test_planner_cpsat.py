"""CP-SAT optimiser: optimal answers, alternatives/spans/lags, targets, proved infeasibility."""

import pytest

from orchestrator.planner import Lag, Operation, Problem, Resource, Span, check, plan

ortools = pytest.importorskip("ortools")
from orchestrator.planner.cpsat import solve


def _jobs(jobs):
    ops, lags = [], []
    for j, job in enumerate(jobs):
        for k, (m, d) in enumerate(job):
            ops.append(Operation(f"j{j}.{k}", d, (m,)))
            if k:
                lags.append(Lag(f"j{j}.{k - 1}", f"j{j}.{k}"))
    return Problem(ops, [Resource(m) for m in sorted({m for job in jobs for m, _ in job})], lags)


def test_small_job_shop_is_solved_to_optimality():
    p = _jobs([[("m0", 3), ("m1", 2), ("m2", 2)], [("m0", 2), ("m2", 1), ("m1", 4)], [("m1", 4), ("m2", 3)]])
    s = solve(p, time_limit=5, workers=2)
    assert s.status == "optimal" and s.makespan == 11 and s.lower_bound == 11 and check(p, s) == []


def test_alternatives_spans_max_lags_and_frozen():
    ops, lags, spans = [Operation("busy", 30, ("lh1",), frozen_start=0)], [], []
    for k in range(3):
        ops += [Operation(f"p{k}.fetch", 5, ("inc",)), Operation(f"p{k}.feed", 20, (("lh1", "lh2"),)),
                Operation(f"p{k}.store", 5, ("inc",))]
        lags += [Lag(f"p{k}.fetch", f"p{k}.feed", 0, 2), Lag(f"p{k}.feed", f"p{k}.store", 0, 2)]
        spans.append(Span("out", f"p{k}.fetch", f"p{k}.store"))
    p = Problem(ops, [Resource("inc"), Resource("lh1"), Resource("lh2"), Resource("out", 2)], lags, spans)
    s = plan(p, use_cpsat=True, cpsat_time_limit=5, cpsat_workers=2, time_limit=0.2)
    assert s.ok and check(p, s) == [] and s.starts["busy"] == 0


def test_targets_are_met_when_possible():
    p = Problem([Operation("a", 10, ("m",), target=100), Operation("b", 10, ("m",), target=105)], [Resource("m")])
    s = solve(p, time_limit=5, workers=2, target_weight=2.0)
    assert s.status == "optimal" and check(p, s) == []
    assert abs(s.starts["a"] - 100) + abs(s.starts["b"] - 105) == 5


def test_fractional_data_is_rounded_conservatively():
    p = Problem([Operation("a", 1.5, ("m",)), Operation("b", 2.25, ("m",), deadline=10.7)],
                [Resource("m")], [Lag("a", "b", 0.2, 0.9)])
    s = solve(p, time_limit=5, workers=2)
    assert s.status == "feasible" and check(p, s) == []  # "optimal" only for the rounded model


def test_infeasible_is_proved_by_cpsat():
    # Not provable by our energy check (20 s of work fits in [0, 20]), proved by CP-SAT.
    p = Problem([Operation("a", 10, ("m",), deadline=20), Operation("b", 10, ("m",), release=5, deadline=15)],
                [Resource("m")])
    assert plan(p, time_limit=0.1).status == "unknown"
    s = plan(p, use_cpsat=True, time_limit=0.1, cpsat_time_limit=5, cpsat_workers=2)
    assert s.status == "infeasible" and "CP-SAT proved the problem infeasible" in s.notes


def test_timeout_is_unknown_not_infeasible():
    import random

    rng = random.Random(1)
    jobs = [[(f"m{m}", rng.randint(1, 99)) for m in rng.sample(range(10), 10)] for _ in range(15)]
    s = solve(_jobs(jobs), time_limit=0.0, workers=1)
    assert s.status == "unknown" and s.starts == {}


def test_warm_start_never_worse_than_constructive():
    import random

    rng = random.Random(2)
    p = _jobs([[(f"m{m}", rng.randint(1, 20)) for m in rng.sample(range(4), 4)] for _ in range(5)])
    c = plan(p, time_limit=0.1, iterations=0)
    s = plan(p, time_limit=0.1, iterations=0, use_cpsat=True, cpsat_time_limit=2, cpsat_workers=2)
    assert s.ok and s.makespan <= c.makespan
