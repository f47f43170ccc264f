"""Evaluation of checked expression trees (the walking evaluator; never ``eval``)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs, "round": round}


class ExpressionError(ValueError):
    """An expression could not be evaluated (missing value, bad operand, /0)."""


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()
"""A value that cannot be known because of an error reported elsewhere."""


class Indeterminate(Exception):
    """A parameter needed for evaluation is unknown (its declaration had errors)."""


_BinaryFn = Callable[[Any, Any], Any]
ARITH: dict[type[ast.AST], _BinaryFn] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
}
COMPARE: dict[type[ast.AST], _BinaryFn] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _number(v: Any) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ExpressionError(f"expected a number, got {v!r}")
    return v


class Evaluator:
    """Walks a checked tree. Parameters first, then run-time values."""

    def __init__(self, params: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        self.params, self.values = params, values

    def lookup(self, name: str) -> Any:
        if name in self.params:
            v = self.params[name]
            if v is UNKNOWN:
                raise Indeterminate(name)
            return v
        if name not in self.values:
            raise ExpressionError(f"no value for {name!r} yet (its step has not run or was skipped)")
        v = self.values[name]
        primary = getattr(v, "primary", None)
        return primary if primary is not None and not isinstance(v, (int, float, str)) else v

    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, ast.Attribute):
            base = node.value.id  # type: ignore[attr-defined]
            if f"{base}.{node.attr}" in self.values:
                return self.values[f"{base}.{node.attr}"]
            if base not in self.values:
                raise ExpressionError(f"no value for {base!r} yet (its step has not run or was skipped)")
            obj = self.values[base]
            found = getattr(obj, "fields", None)
            fields = found() if callable(found) else found if isinstance(found, Mapping) else obj
            if not isinstance(fields, Mapping) or node.attr not in fields:
                raise ExpressionError(f"{base!r} has no field {node.attr!r}")
            return fields[node.attr]
        if isinstance(node, ast.BoolOp):
            result: Any = None
            for v in node.values:
                result = self.eval(v)
                if isinstance(node.op, ast.And) != bool(result):
                    return result
            return result
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand)
            return (
                (not operand)
                if isinstance(node.op, ast.Not)
                else (-_number(operand) if isinstance(node.op, ast.USub) else +_number(operand))
            )
        if isinstance(node, ast.BinOp):
            a, b = self.eval(node.left), self.eval(node.right)
            if not (isinstance(node.op, ast.Add) and isinstance(a, str) and isinstance(b, str)):
                a, b = _number(a), _number(b)
            try:
                return ARITH[type(node.op)](a, b)
            except ZeroDivisionError:
                raise ExpressionError("division by zero") from None
        if isinstance(node, ast.Compare):
            left = self.eval(node.left)
            for op, comp in zip(node.ops, node.comparators, strict=True):
                right = self.eval(comp)
                try:
                    if not COMPARE[type(op)](left, right):
                        return False
                except TypeError:
                    raise ExpressionError(f"cannot compare {left!r} with {right!r}") from None
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self.eval(node.body) if self.eval(node.test) else self.eval(node.orelse)
        if isinstance(node, (ast.List, ast.Tuple)):
            return tuple(self.eval(e) for e in node.elts)
        if isinstance(node, ast.Call):
            name = node.func.id  # type: ignore[attr-defined]
            args = [self.eval(a) for a in node.args]
            if name == "round":
                if len(args) == 2 and (not isinstance(args[1], int) or abs(args[1]) > 15):
                    raise ExpressionError("round() digits must be a whole number between -15 and 15")
                return round(_number(args[0]), *args[1:])
            return FUNCTIONS[name](*(_number(a) for a in args))
        raise ExpressionError(f"unsupported expression {ast.unparse(node)!r}")  # pragma: no cover
