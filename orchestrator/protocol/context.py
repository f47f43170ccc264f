"""Shared state of one compilation and helpers for values that may hold ``${...}``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.protocol.durations import parse_duration
from orchestrator.protocol.errors import ErrorSink
from orchestrator.protocol.expr import UNKNOWN, Saved, Scope, compile_expr, static_value, template_parts
from orchestrator.protocol.graph import Expr, LabwareDecl, Location
from orchestrator.protocol.model import Step
from orchestrator.protocol.source import DataPath, SourceFile

INVALID: Any = object()
"""Returned by helpers after they reported a problem."""


@dataclass
class Session:
    """One ``load_protocol`` call: errors, workcell, content hash, compiled keys, file cache."""

    sink: ErrorSink
    workcell: Mapping[str, str] | None = None
    actions: Mapping[str, Any] | None = None
    """The workcell's action catalogue (driver-specific actions included), when given."""
    hasher: Any = field(default_factory=hashlib.sha256)
    done: set[str] = field(default_factory=set)
    cache: dict[Path, SourceFile | None] = field(default_factory=dict)


@dataclass
class FileCtx:
    """One protocol file as compiled at one place (the top level or one include).

    Attributes:
        src: the file.
        params: parameter values (UNKNOWN where broken).
        labware: local labware name -> top-level declaration (None where broken).
        stack: resolved paths of the including files, outermost first, and this one.
        prefix: key prefix of its steps (``day.passage.``).
        saved: names saved so far (document order).
        later: every name saved anywhere in the file -> step key (for hints).
    """

    src: SourceFile
    params: dict[str, Any]
    labware: dict[str, LabwareDecl | None]
    stack: tuple[Path, ...]
    prefix: str = ""
    saved: dict[str, Saved] = field(default_factory=dict)
    later: dict[str, str] = field(default_factory=dict)

    def scope(self, in_repeat: bool) -> Scope:
        """What an expression may read at this point."""
        later = {n: k for n, k in self.later.items() if n not in self.saved}
        return Scope(self.params, dict(self.saved), later, in_repeat)


@dataclass(frozen=True)
class StepCtx:
    """One step being compiled: the file and session it belongs to and what it says.

    Attributes:
        step: the validated step.
        raw: its mapping as written (bad keys dropped).
        path: its data path in ``ctx.src``.
        label: message prefix (``step 'day.feed'``).
        in_repeat: inside a ``repeat`` block (``iteration`` is readable).
    """

    ctx: FileCtx
    sess: Session
    step: Step
    raw: dict[str, Any]
    path: DataPath
    label: str
    in_repeat: bool

    def loc(self, *rel: str | int, key: bool = False) -> Location:
        """Location of ``rel`` below this step (of its key with ``key=True``)."""
        return self.ctx.src.loc((*self.path, *rel), key=key)

    def report(self, where: Location, message: str) -> None:
        """Record a problem of this step: ``label: message`` at ``where``."""
        self.sess.sink.add(where, f"{self.label}: {message}")


def compile_value(
    ctx: FileCtx,
    sess: Session,
    value: Any,
    path: DataPath,
    label: str,
    in_repeat: bool,
    static: bool = False,
    base: int = 0,
) -> Any:
    """Resolve ``${...}`` in a YAML value.

    A string that is exactly one ``${expr}`` takes the expression's type; text with
    embedded ``${...}`` becomes a string. Parameter-only expressions are evaluated now;
    others become an :class:`Expr` (refused with a message when ``static``). ``base`` is
    the offset of ``value`` inside the YAML scalar at ``path`` (for columns).

    Returns:
        the value, an Expr, UNKNOWN (depends on a broken parameter) or INVALID.
    """
    if not (isinstance(value, str) and "${" in value):
        return value
    parts = template_parts(value)
    if isinstance(parts, str):
        sess.sink.add(ctx.src.loc(path), f"{label}: {parts}")
        return INVALID
    scope = ctx.scope(in_repeat)
    exprs: list[tuple[str, Expr]] = []
    for offset, chunk, is_expr in parts:
        if not is_expr:
            continue
        expr = compile_expr(chunk, scope, _locator(ctx.src, path, base + offset), sess.sink.add, label)
        if expr is None:
            return INVALID
        exprs.append((chunk, expr))
    runtime = frozenset().union(*(e.names for _, e in exprs))
    if runtime and static:
        names = ", ".join(sorted(runtime))
        sess.sink.add(
            ctx.src.loc(path),
            f"{label}: must be known before the run starts, but reads {names} (only parameters are allowed here)",
        )
        return INVALID
    whole = len(parts) == 1
    if not runtime:
        values = [static_value(e, lambda m: sess.sink.add(ctx.src.loc(path), f"{label}: {m}")) for _, e in exprs]
        if any(v is UNKNOWN for v in values):
            return UNKNOWN
        if whole:
            return values[0]
        it = iter(values)
        return "".join(str(next(it)) if is_expr else chunk for _, chunk, is_expr in parts)
    if whole:
        return exprs[0][1]
    compiled = [e for _, e in exprs]

    def render(values: Mapping[str, Any]) -> str:
        it = iter(compiled)
        return "".join(str(next(it).evaluate(values)) if is_expr else chunk for _, chunk, is_expr in parts)

    return Expr(value, runtime, ctx.src.loc(path), render)


def _locator(src: SourceFile, path: DataPath, base: int) -> Callable[[int], Location]:
    return lambda offset: src.at(path, base + offset)


def static_duration(ctx: FileCtx, sess: Session, value: Any, path: DataPath, label: str) -> float | None:
    """Seconds in a duration field (``${...}`` over parameters allowed); None if unknown or invalid."""
    if value is None:
        return None
    value = compile_value(ctx, sess, value, path, label, False, static=True)
    if value is INVALID or value is UNKNOWN:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        sess.sink.add(ctx.src.loc(path), f"{label}: {exc}")
        return None


def static_count(ctx: FileCtx, sess: Session, value: Any, path: DataPath, label: str, least: int) -> int | None:
    """A whole number >= ``least`` (``${...}`` over parameters allowed); None if unknown or invalid."""
    if value is None:
        return None
    value = compile_value(ctx, sess, value, path, label, False, static=True)
    if value is INVALID or value is UNKNOWN:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        sess.sink.add(ctx.src.loc(path), f"{label}: expected a whole number >= {least}, got {value!r}")
        return None
    return value
