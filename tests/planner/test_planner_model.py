"""Problem validation: malformed problems raise ProblemError with a clear message."""

import sys

import pytest

from orchestrator.planner import (
    Lag,
    Operation,
    PlannerUnavailable,
    Problem,
    ProblemError,
    Resource,
    Span,
    validate_problem,
)

R = (Resource("m"), Resource("c", 2))


def _p(ops=(), lags=(), spans=(), resources=R, horizon=None):
    return Problem(list(ops), list(resources), list(lags), list(spans), horizon)


def test_valid_problem_passes_and_is_a_value_error_subclass():
    validate_problem(_p([Operation("a", 1, ("m",)), Operation("b", 2, (("m", "c"),))], [Lag("a", "b", 0, 5)]))
    assert issubclass(ProblemError, ValueError)


@pytest.mark.parametrize(
    ("problem", "match"),
    [
        (_p([Operation("a", 1), Operation("a", 2)]), "duplicate operation id 'a'"),
        (_p([Operation("a", 1, ("x",))]), "unknown resource 'x'"),
        (_p([Operation("a", -1)]), "duration must be finite and >= 0"),
        (_p([Operation("a", float("nan"))]), "duration must be finite"),
        (_p([Operation("a", 1)], [Lag("a", "zz")]), "unknown operation 'zz'"),
        (_p([Operation("a", 1), Operation("b", 1)], [Lag("a", "b", 5, 2)]), "min 5 > max 2"),
        (_p([Operation("a", 1), Operation("b", 1)], [Lag("a", "b", kind="end_end")]), "unknown kind"),  # type: ignore[arg-type]
        (_p([Operation("a", 1)], [Lag("a", "a")]), "cannot lag itself"),
        (_p([Operation("a", 1, ("m", "m"))]), "listed twice"),
        (_p([Operation("a", 1, ((),))]), "empty set"),  # type: ignore[arg-type]
        (_p([Operation("a", 1)], resources=(Resource("m"), Resource("m"))), "duplicate resource"),
        (_p([Operation("a", 1)], resources=(Resource("m", 0),)), "capacity must be an int >= 1"),
        (_p([Operation("a", 1, (("m", "c"),), frozen_start=0)]), "needs frozen_resources"),
        (_p([Operation("a", 1, ("m",), frozen_start=0, frozen_resources=("c",))]), "not in"),
        (_p([Operation("a", 1, ("m",), frozen_resources=("m",))]), "without frozen_start"),
        (_p([Operation("a", 1)], spans=[Span("nope", "a", "a")]), "unknown resource"),
        (_p([Operation("a", 1)], spans=[Span("c", "a", "b")]), "unknown operation 'b'"),
        (_p([Operation("a", 1)], horizon=-1), "horizon"),
    ],
)
def test_malformed_problems_raise(problem, match):
    with pytest.raises(ProblemError, match=match):
        validate_problem(problem)


def test_lists_become_tuples_and_lookup():
    p = _p([Operation("a", 1, ["m"])])  # type: ignore[list-item]
    assert isinstance(p.operations, tuple) and p.op["a"].duration == 1
    assert p.capacity == {"m": 1, "c": 2}
    assert Operation("x", 1, ("m", ("a", "b"))).choices == (("m",), ("a", "b"))


def test_missing_ortools_raises_planner_unavailable(monkeypatch):
    from orchestrator.planner.cpsat import solve

    monkeypatch.setitem(sys.modules, "ortools.sat.python", None)
    p = Problem([Operation("a", 1)], [])
    with pytest.raises(PlannerUnavailable, match="OR-Tools"):
        solve(p)
