"""Property tests: whatever the planners return as feasible passes the validator; proofs hold."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.planner import Lag, Operation, Problem, Resource, Span, check, plan

RES = [Resource("r0"), Resource("r1"), Resource("c2", 2)]


@st.composite
def problems(draw):
    n = draw(st.integers(1, 7))
    ops = []
    for i in range(n):
        entries = draw(st.lists(st.sampled_from(["r0", "r1", "c2", ("r0", "r1"), ("r1", "c2")]),
                                max_size=2, unique=True))
        flat = [x for e in entries for x in ((e,) if isinstance(e, str) else e)]
        if len(flat) != len(set(flat)):
            entries = entries[:1]
        release = draw(st.integers(0, 20))
        dur = draw(st.integers(0, 12))
        deadline = draw(st.one_of(st.none(), st.integers(release, release + 60)))
        ops.append(Operation(f"o{i}", dur, tuple(entries), release=release, deadline=deadline))
    lags = []
    for _ in range(draw(st.integers(0, n + 1))):
        a, b = draw(st.sampled_from(range(n))), draw(st.sampled_from(range(n)))
        if a == b:
            continue
        lo = draw(st.integers(-5, 10))
        hi = draw(st.one_of(st.none(), st.integers(lo, lo + 15)))
        kind = draw(st.sampled_from(["end_start", "start_start"]))
        lags.append(Lag(f"o{a}", f"o{b}", lo, hi, kind))
    spans = []
    if n >= 2 and draw(st.booleans()):
        spans.append(Span("c2", "o0", f"o{n - 1}"))
    horizon = draw(st.one_of(st.none(), st.integers(30, 120)))
    return Problem(ops, RES, lags, spans, horizon)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(0, 3))
def test_constructive_feasible_means_valid(problem, seed):
    s = plan(problem, time_limit=0.05, iterations=4, seed=seed)
    if s.ok:
        assert check(problem, s) == []
        assert s.lower_bound <= s.makespan + 1e-6
    assert s.status in ("optimal", "feasible", "infeasible", "unknown")


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_cpsat_agrees_with_the_proofs_and_the_validator(problem):
    pytest.importorskip("ortools")
    from orchestrator.planner.cpsat import solve

    c = plan(problem, time_limit=0.05, iterations=2)
    s = solve(problem, time_limit=5, workers=1)
    if s.status in ("optimal", "feasible"):
        assert check(problem, s) == []
        assert c.status != "infeasible", c.notes  # our proof of infeasibility must be right
        assert c.lower_bound <= s.makespan + 1e-6  # our lower bound must be valid
    if s.status == "optimal" and c.ok:
        assert math.isclose(s.lower_bound, s.makespan) and c.makespan >= s.makespan - 1e-6
    if c.ok:
        assert s.status != "infeasible"
