"""The safe expression language of conditions and ``${...}`` substitutions.

Expressions are parsed with ``ast.parse(mode="eval")``, checked against a whitelist of
node types at validate time, and evaluated by walking the tree (never ``eval``).
Allowed: numbers, strings, true/false constants, names (parameters, saved results,
``iteration``), ``<saved>.<field>``, arithmetic ``+ - * / // %``, comparisons
(including ``in`` a literal list), ``and or not``, ``a if c else b`` and calls to
``min max abs round``. Everything else is refused with a located message.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.protocol.errors import did_you_mean, one_of
from orchestrator.protocol.evaluator import (
    ARITH,
    COMPARE,
    FUNCTIONS,
    UNKNOWN,
    Evaluator,
    ExpressionError,
    Indeterminate,
)
from orchestrator.protocol.graph import Expr, Location

__all__ = ["UNKNOWN", "ExpressionError", "Saved", "Scope", "compile_expr", "static_value", "template_parts"]

MAX_LENGTH = 500
_ARITY = {"min": (2, 16), "max": (2, 16), "abs": (1, 1), "round": (1, 2)}
_TEMPLATE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class Saved:
    """A name bound by ``save:``: the saving step, its result type and fields (None = unknown)."""

    step: str
    result: str | None
    fields: frozenset[str] | None


@dataclass
class Scope:
    """What an expression may read at one point of a protocol.

    Attributes:
        params: parameter values (bound at compile time; may be UNKNOWN).
        saved: names saved by earlier steps.
        later: names saved by later steps (for hints), name -> step key.
        in_repeat: ``iteration`` is defined.
    """

    params: Mapping[str, Any]
    saved: Mapping[str, Saved] = field(default_factory=dict)
    later: Mapping[str, str] = field(default_factory=dict)
    in_repeat: bool = False

    def known(self) -> list[str]:
        """Every name an expression here may use."""
        return [*self.params, *self.saved, *(["iteration"] if self.in_repeat else [])]


Locate = Callable[[int], Location]
Report = Callable[[Location, str], None]


def compile_expr(text: str, scope: Scope, locate: Locate, report: Report, what: str) -> Expr | None:
    """Parse and check one expression; parameters are bound now, other names at run time.

    ``locate(offset)`` gives the file location of character ``offset`` of ``text``;
    ``what`` prefixes messages (``step 'feed': when``). Every problem is reported.

    Returns:
        the :class:`Expr` (``names`` = run-time names: saved results and
        ``iteration``), or None after reporting a problem.
    """
    stripped = text.strip()
    lead = len(text) - len(text.lstrip())
    if len(stripped) > MAX_LENGTH:
        report(locate(lead), f"{what}: expression longer than {MAX_LENGTH} characters")
        return None
    if not stripped:
        report(locate(0), f"{what}: empty expression")
        return None
    try:
        tree = ast.parse(stripped.replace("\n", " "), mode="eval")
    except SyntaxError as exc:
        offset = lead + max((exc.offset or 1) - 1, 0)
        report(locate(offset), f"{what}: cannot parse {stripped!r}: {exc.msg}")
        return None
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, lone surrogates, deep nesting
        report(locate(lead), f"{what}: cannot parse {stripped!r}: {type(exc).__name__}")
        return None
    checker = _Checker(scope, stripped)
    checker.visit(tree.body)
    for offset, message in checker.problems:
        report(locate(lead + offset), f"{what}: {message}")
    if checker.problems:
        return None
    params = dict(scope.params)
    body = tree.body

    def evaluate(values: Mapping[str, Any]) -> Any:
        return Evaluator(params, values).eval(body)

    return Expr(source=stripped, names=frozenset(checker.runtime), location=locate(lead), evaluate=evaluate)


def static_value(expr: Expr, locate_report: Callable[[str], None]) -> Any:
    """Evaluate an expression that reads only parameters, at compile time.

    Returns UNKNOWN when a parameter is itself unknown; reports evaluation errors
    through ``locate_report(message)`` and returns UNKNOWN.
    """
    try:
        return expr.evaluate({})
    except Indeterminate:
        return UNKNOWN
    except ExpressionError as exc:
        locate_report(f"cannot evaluate {expr.source!r}: {exc}")
        return UNKNOWN


def template_parts(text: str) -> list[tuple[int, str, bool]] | str:
    """Split ``"a ${x} b"`` into ``(offset, text, is_expr)`` parts.

    Returns a message instead when a ``${`` is not closed.
    """
    parts: list[tuple[int, str, bool]] = []
    pos = 0
    for m in _TEMPLATE.finditer(text):
        if m.start() > pos:
            parts.append((pos, text[pos : m.start()], False))
        parts.append((m.start(1), m.group(1), True))
        pos = m.end()
    if pos < len(text):
        parts.append((pos, text[pos:], False))
    for offset, chunk, is_expr in parts:
        if not is_expr and "${" in chunk:
            return f"unclosed '${{' at character {offset + chunk.index('${') + 1}; write ${{expression}}"
    return parts


def describe_names(scope: Scope) -> str:
    """``known names: a, b`` for messages."""
    return f"known names: {one_of(scope.known())}"


class _Checker(ast.NodeVisitor):
    """Whitelist check; records (offset, message) problems and run-time names."""

    def __init__(self, scope: Scope, text: str) -> None:
        self.scope, self.text = scope, text
        self.problems: list[tuple[int, str]] = []
        self.runtime: set[str] = set()

    def _off(self, node: ast.AST) -> int:
        col = getattr(node, "col_offset", 0)
        return len(self.text.encode()[:col].decode(errors="ignore"))

    def fail(self, node: ast.AST, message: str) -> None:
        self.problems.append((self._off(node), message))

    def generic_visit(self, node: ast.AST) -> None:
        self.fail(
            node,
            f"{_construct(node)} not allowed in an expression (only arithmetic, comparisons, "
            "and/or/not, names, <saved>.<field> and min/max/abs/round)",
        )

    def visit_Constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, (int, float, str, bool, type(None))):
            self.fail(node, f"constant of type {type(node.value).__name__} not allowed")

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        for v in node.values:
            self.visit(v)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            return self.fail(node, f"operator {_OPS.get(type(node.op), '?')} not allowed")
        self.visit(node.operand)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) not in ARITH:
            self.fail(node, f"operator {_OPS.get(type(node.op), '?')} not allowed; use + - * / // %")
        self.visit(node.left)
        self.visit(node.right)

    def visit_Compare(self, node: ast.Compare) -> None:
        for op in node.ops:
            if type(op) not in COMPARE:
                self.fail(node, f"comparison {_OPS.get(type(op), '?')} not allowed; use == != < <= > >= in")
        for v in (node.left, *node.comparators):
            self.visit(v)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        for v in (node.test, node.body, node.orelse):
            self.visit(v)

    def visit_List(self, node: ast.List | ast.Tuple) -> None:
        for v in node.elts:
            self.visit(v)

    visit_Tuple = visit_List

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        if not isinstance(func, (ast.Name, ast.Attribute)):
            self.visit(func)
        elif name is None or name not in FUNCTIONS:
            shown = name or ast.unparse(func)
            if name and name.startswith("_"):
                self.fail(node, f"calling {shown!r} refused: names starting with '_' are not allowed")
            else:
                self.fail(node, f"calling {shown!r} not allowed; functions: {one_of(FUNCTIONS)}")
        elif node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            self.fail(node, f"{name}() takes plain positional arguments only")
        elif not _ARITY[name][0] <= len(node.args) <= _ARITY[name][1]:
            lo, hi = _ARITY[name]
            self.fail(node, f"{name}() takes {lo}{'' if lo == hi else f' to {hi}'} arguments, got {len(node.args)}")
        for a in node.args:
            self.visit(a.value if isinstance(a, ast.Starred) else a)
        if isinstance(func, ast.Attribute):
            self.visit(func.value)

    def visit_Name(self, node: ast.Name) -> None:
        self._name(node, node.id)

    def _name(self, node: ast.AST, name: str) -> str | None:
        s = self.scope
        if name.startswith("_"):
            self.fail(node, f"name {name!r} refused: names starting with '_' are not allowed")
        elif name in s.params:
            return "param"
        elif name in s.saved:
            self.runtime.add(name)
            return "saved"
        elif name == "iteration" and s.in_repeat:
            self.runtime.add(name)
            return "iteration"
        elif name == "iteration":
            self.fail(node, "'iteration' is only defined inside a repeat block")
        elif name in FUNCTIONS:
            self.fail(node, f"{name} is a function; call it as {name}(a, b)")
        elif name in s.later:
            self.fail(node, f"{name!r} is not saved yet here: step {s.later[name]!r} saves it later")
        else:
            self.fail(node, f"unknown name {name!r}{did_you_mean(name, s.known()) or '; ' + describe_names(s)}")
        return None

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_"):
            return self.fail(node, f"attribute {node.attr!r} refused: names starting with '_' are not allowed")
        if not isinstance(node.value, ast.Name):
            return self.fail(node, "attribute access is only allowed as <saved name>.<field>")
        base = node.value.id
        kind = self._name(node.value, base)
        if kind == "saved":
            saved = self.scope.saved[base]
            if saved.fields is not None and node.attr not in saved.fields:
                fields = one_of(saved.fields) if saved.fields else "none"
                self.fail(
                    node,
                    f"{base!r} ({saved.result or 'a value'} from step {saved.step!r}) has no field "
                    f"{node.attr!r}{did_you_mean(node.attr, saved.fields)}; fields: {fields}",
                )
        elif kind is not None:
            self.fail(node, f"{base!r} is a {'parameter' if kind == 'param' else 'number'}; it has no fields")


_OPS = {
    ast.Pow: "**",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.MatMult: "@",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
}


def _construct(node: ast.AST) -> str:
    names = {
        ast.Subscript: "subscripts ([...]) are",
        ast.Lambda: "lambda is",
        ast.ListComp: "comprehensions are",
        ast.SetComp: "comprehensions are",
        ast.DictComp: "comprehensions are",
        ast.GeneratorExp: "generator expressions are",
        ast.JoinedStr: "f-strings are",
        ast.NamedExpr: "':=' is",
        ast.Dict: "dict literals are",
        ast.Set: "set literals are",
        ast.Starred: "'*' unpacking is",
        ast.Await: "await is",
        ast.Slice: "slices are",
    }
    return names.get(type(node), f"{type(node).__name__} is")
