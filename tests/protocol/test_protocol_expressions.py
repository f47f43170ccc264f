"""The safe expression language: what parses, how it evaluates, what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.results import CellCount, ConfluenceResult
from orchestrator.protocol import ExpressionError
from orchestrator.protocol.expr import UNKNOWN, Saved, Scope, compile_expr, static_value
from orchestrator.protocol.graph import Expr, Location

COUNT = Saved("release", "CellCount", frozenset({"viability", "viable_per_ml", "total_per_ml"}))
SCOPE = Scope(params={"passage_at": 0.75, "days": 7}, saved={"count": COUNT}, in_repeat=True)


def compile_ok(text: str, scope: Scope = SCOPE) -> Expr:
    problems: list[tuple[Location, str]] = []
    expr = compile_expr(text, scope, lambda o: Location("f.yaml", 3, 10 + o), lambda l, m: problems.append((l, m)), "w")
    assert expr is not None, problems
    return expr


def refused(text: str, scope: Scope = SCOPE) -> list[tuple[Location, str]]:
    problems: list[tuple[Location, str]] = []
    expr = compile_expr(text, scope, lambda o: Location("f.yaml", 3, 10 + o), lambda l, m: problems.append((l, m)), "w")
    assert expr is None and problems
    return problems


@pytest.mark.parametrize(
    ("text", "values", "result"),
    [
        ("count >= 1e5", {"count": 2e5}, True),
        ("count.viability >= 0.9", {"count.viability": 0.95}, True),
        ("count.viability >= 0.9 and iteration < days", {"count.viability": 0.8, "iteration": 1}, False),
        ("not (iteration % 2 == 0)", {"iteration": 3}, True),
        ("max(count, 10) - min(1, 2) + abs(-3)", {"count": 5}, 12),
        ("round(count / 3, 2)", {"count": 10}, 3.33),
        ("1 if iteration in [0, 2] else 2", {"iteration": 2}, 1),
        ("passage_at * 100 // 1", {}, 75),
        ("'a' + 'b' == 'ab'", {}, True),
    ],
)
def test_evaluates(text: str, values: dict[str, Any], result: Any) -> None:
    assert compile_ok(text).evaluate(values) == result


def test_names_are_the_run_time_names_only() -> None:
    assert compile_ok("count.viability >= passage_at and iteration > 0").names == {"count", "iteration"}
    assert compile_ok("days > 3").names == frozenset()


def test_result_objects_give_primary_and_fields() -> None:
    result = CellCount(total_per_ml=2e5, viable_per_ml=1.9e5, viability=0.95, mean_diameter_um=12.0)
    assert compile_ok("count > 1e5 and count.viability > 0.9").evaluate({"count": result}) is True
    conf = ConfluenceResult.from_wells((0.5, 0.9))
    scope = Scope(params={}, saved={"c": Saved("img", "ConfluenceResult", frozenset({"mean", "min", "max"}))})
    assert compile_ok("c == 0.7 and c.max == 0.9", scope).evaluate({"c": conf}) is True


class FloatWithFields(float):
    """How an engine may bind a saved value: the primary value, fields as a mapping attribute."""

    fields: dict[str, float]


def test_saved_values_may_carry_fields_as_a_mapping() -> None:
    value = FloatWithFields(2e5)
    value.fields = {"viability": 0.93}
    assert compile_ok("count > 1e5 and count.viability > 0.9").evaluate({"count": value}) is True
    assert compile_ok("count.viability").evaluate({"count": {"viability": 0.5}}) == 0.5
    with pytest.raises(ExpressionError, match="has no field 'viability'"):
        compile_ok("count.viability").evaluate({"count": 3.0})


def test_parameters_are_bound_at_compile_time_and_win_over_values() -> None:
    assert compile_ok("passage_at").evaluate({"passage_at": 0.1}) == 0.75


@pytest.mark.parametrize(
    ("text", "values", "message"),
    [
        ("count > 1", {}, "no value for 'count'"),
        ("count / 0", {"count": 1}, "division by zero"),
        ("count + 'x'", {"count": 1}, "expected a number"),
        ("count < 'x'", {"count": 1}, "cannot compare"),
        ("round(count, 99)", {"count": 1}, "digits"),
    ],
)
def test_runtime_errors_are_expression_errors(text: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_ok(text).evaluate(values)
    assert issubclass(ExpressionError, ValueError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('id')", "'__import__' refused"),
        ("count.__class__", "'__class__' refused"),
        ("count.__class__.__subclasses__()", "refused"),
        ("().__class__", "refused"),
        ("(1).real", "only allowed as <saved name>.<field>"),
        ("eval('1')", "calling 'eval' not allowed"),
        ("exec('x=1')", "calling 'exec' not allowed"),
        ("getattr(count, 'viability')", "calling 'getattr' not allowed"),
        ("open('/etc/passwd').read()", "not allowed"),
        ("(lambda: 1)()", "lambda is not allowed"),
        ("[c for c in 'ab']", "comprehensions are not allowed"),
        ("{'a': 1}", "dict literals are not allowed"),
        ("count[0]", "subscripts"),
        ("count ** 2", "operator ** not allowed"),
        ("(x := 3)", "':=' is not allowed"),
        ("f'{count}'", "f-strings are not allowed"),
        ("count is None", "comparison is not allowed"),
        ("_hidden", "names starting with '_' are not allowed"),
        ("count.viabilty > 0.9", "has no field 'viabilty'; did you mean viability?"),
        ("days.real", "'days' is a parameter; it has no fields"),
        ("max(count)", "max() takes 2 to 16 arguments"),
        ("max(*[1, 2])", "plain positional arguments only"),
        ("b'x'", "constant of type bytes not allowed"),
        ("unknown > 1", "unknown name 'unknown'"),
        ("count >", "cannot parse"),
        ("x" * 600, "longer than 500"),
        ("   ", "empty expression"),
    ],
)
def test_refused_at_validate_time(text: str, message: str) -> None:
    problems = refused(text)
    assert any(message in m for _, m in problems), problems


def test_refusal_points_into_the_expression() -> None:
    ((loc, message),) = refused("count > 1 and _x > 2")
    assert (loc.line, loc.col) == (3, 10 + len("count > 1 and "))
    assert "'_x'" in message


def test_iteration_only_inside_repeat() -> None:
    outside = Scope(params={}, saved={}, in_repeat=False)
    assert "only defined inside a repeat" in refused("iteration > 1", outside)[0][1]


def test_later_names_get_a_hint() -> None:
    scope = Scope(params={}, saved={}, later={"conf": "day.image"})
    assert "step 'day.image' saves it later" in refused("conf > 0.5", scope)[0][1]


def test_unknown_parameter_values_are_not_evaluated_statically() -> None:
    expr = compile_ok("days + 1", Scope(params={"days": UNKNOWN}))
    assert static_value(expr, lambda m: pytest.fail(m)) is UNKNOWN
