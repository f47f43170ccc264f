"""Parameter declarations, values and overrides; labware declarations."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.labware import LABWARE_MODELS
from orchestrator.protocol.durations import DURATION_HINT, format_duration, parse_duration
from orchestrator.protocol.errors import ErrorSink, did_you_mean, one_of
from orchestrator.protocol.expr import UNKNOWN
from orchestrator.protocol.graph import LabwareDecl, Location
from orchestrator.protocol.model import IDENT_PATTERN, LabwareSpec, ParameterSpec
from orchestrator.protocol.source import SourceFile
from orchestrator.protocol.structure import describe, validate_piece

_EXPECT = {
    "int": "a whole number",
    "float": "a number",
    "str": "text",
    "bool": "true or false",
    "duration": DURATION_HINT,
}
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
RESERVED = frozenset({"iteration", "min", "max", "abs", "round"})


@dataclass(frozen=True)
class Override:
    """A value for a parameter from outside its file (``-p`` or an include's ``with:``).

    Attributes:
        value: the value; strings are parsed when ``text`` is True (command line).
        location: where to report problems.
        label: how to name it in messages (``-p days=abc``).
    """

    value: Any
    location: Location
    label: str
    text: bool = False


@dataclass
class Declared:
    """A checked parameter declaration: its spec, default (UNKNOWN if broken) and location."""

    spec: ParameterSpec | None
    default: Any
    location: Location
    required: bool = False


def coerce(kind: str, value: Any, text: bool) -> Any:
    """Convert ``value`` to parameter type ``kind`` (durations become seconds).

    Raises:
        ValueError: the message says what was expected and what was given.
    """
    bad = ValueError(f"expected {_EXPECT[kind]}, got {describe(value)}")
    if kind == "duration":
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"{exc}") from None
    if text and isinstance(value, str):
        s = value.strip()
        try:
            if kind == "int":
                return int(s)
            if kind == "float":
                out = float(s)
                if math.isnan(out) or math.isinf(out):
                    raise bad
                return out
        except ValueError:
            raise bad from None
        if kind == "bool":
            if s.lower() in _TRUE + _FALSE:
                return s.lower() in _TRUE
            raise bad
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    raise bad


def check_bounds(spec: ParameterSpec, value: Any) -> str | None:
    """A message when ``value`` violates ``spec``'s min, max or choices, else None."""
    if spec.choices is not None:
        allowed = [_safe(spec.type, c) for c in spec.choices]
        if value not in allowed:
            shown = ", ".join(repr(c) for c in spec.choices)
            hint = did_you_mean(value, [str(c) for c in spec.choices]) if isinstance(value, str) else ""
            return f"{value!r} is not one of the allowed choices ({shown}){hint}"
    lo, hi = _safe(spec.type, spec.min), _safe(spec.type, spec.max)
    if spec.type == "duration":
        value = _Shown(value)
    if isinstance(lo, (int, float)) and value < lo:
        return f"{_fmt(value)} is below the minimum {_fmt(spec.min)}"
    if isinstance(hi, (int, float)) and value > hi:
        return f"{_fmt(value)} is above the maximum {_fmt(spec.max)}"
    return None


class _Shown(float):
    """A duration in seconds that prints as ``1h30m``."""

    def __str__(self) -> str:
        return format_duration(float(self))


def _fmt(value: Any) -> str:
    if isinstance(value, _Shown):
        return str(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _safe(kind: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        return coerce("float" if kind == "int" else kind, value, text=False)
    except ValueError:
        return UNKNOWN


def declare(src: SourceFile, raw: Any, sink: ErrorSink) -> dict[str, Declared]:
    """Check the ``parameters:`` section of a file (types, bounds, default, choices)."""
    out: dict[str, Declared] = {}
    if not isinstance(raw, dict):
        return out
    for name, item in raw.items():
        path = ("parameters", name)
        where = src.loc(path)
        if not re.match(IDENT_PATTERN, name) or name in RESERVED:
            why = "is reserved" if name in RESERVED else "must be lowercase letters, digits and '_'"
            sink.add(src.loc(path, key=True), f"parameters: name {name!r} {why}")
        spec = validate_piece(ParameterSpec, item, src, path, sink, f"parameters.{name}")
        if spec is None:
            out[name] = Declared(None, UNKNOWN, where)
            continue
        ok = True
        for bound in ("min", "max"):
            value = getattr(spec, bound)
            if value is None:
                continue
            if spec.type in ("str", "bool"):
                sink.add(src.loc((*path, bound)), f"parameters.{name}.{bound}: not allowed for type {spec.type}")
                ok = False
            elif _safe(spec.type, value) is UNKNOWN:
                sink.add(
                    src.loc((*path, bound)),
                    f"parameters.{name}.{bound}: expected {_EXPECT[spec.type]}, got {describe(value)}",
                )
                ok = False
        lo, hi = _safe(spec.type, spec.min), _safe(spec.type, spec.max)
        if ok and isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
            sink.add(src.loc((*path, "min")), f"parameters.{name}: min {_fmt(spec.min)} is above max {_fmt(spec.max)}")
            ok = False
        for i, choice in enumerate(spec.choices or []):
            if _safe(spec.type, choice) is UNKNOWN:
                sink.add(
                    src.loc((*path, "choices", i)),
                    f"parameters.{name}.choices: expected {_EXPECT[spec.type]}, got {describe(choice)}",
                )
                ok = False
        default: Any = None
        if spec.default is not None:
            try:
                default = coerce(spec.type, spec.default, text=False)
            except ValueError as exc:
                sink.add(src.loc((*path, "default")), f"parameters.{name}.default: {exc}")
                default, ok = UNKNOWN, False
        if ok and default is not None and (problem := check_bounds(spec, default)):
            sink.add(src.loc((*path, "default")), f"parameters.{name}.default: {problem}")
        out[name] = Declared(spec, default, where, required=spec.default is None)
    return out


def resolve(
    declared: Mapping[str, Declared], overrides: Mapping[str, Override], sink: ErrorSink, unknown_hint: str
) -> tuple[dict[str, Any], list[str]]:
    """Parameter values: defaults, replaced by overrides (coerced and bounds-checked).

    Reports unknown override names and bad values at the override's location.
    Returns the values (UNKNOWN where broken) and the names still without a value.
    """
    values = {name: d.default for name, d in declared.items()}
    for name, ov in overrides.items():
        decl = declared.get(name)
        if decl is None:
            hint = did_you_mean(name, declared) or f"; {unknown_hint}: {one_of(declared)}"
            sink.add(ov.location, f"{ov.label}: unknown parameter {name!r}{hint}")
            continue
        if decl.spec is None or ov.value is UNKNOWN:
            values[name] = UNKNOWN
            continue
        declared_at = f" (parameter {name!r}: {decl.spec.type}, declared at {decl.location})"
        try:
            value = coerce(decl.spec.type, ov.value, ov.text)
        except ValueError as exc:
            sink.add(ov.location, f"{ov.label}: {exc}{declared_at}")
            values[name] = UNKNOWN
            continue
        problem = check_bounds(decl.spec, value)
        if problem:
            sink.add(ov.location, f"{ov.label}: {problem}{declared_at}")
        values[name] = UNKNOWN if problem else value
    missing = [n for n, v in values.items() if v is None and declared[n].required]
    return values, missing


def declare_labware(src: SourceFile, raw: Any, sink: ErrorSink) -> dict[str, LabwareDecl | None]:
    """Check the ``labware:`` section; None marks an item with errors."""
    out: dict[str, LabwareDecl | None] = {}
    if not isinstance(raw, dict):
        return out
    for name, item in raw.items():
        path = ("labware", name)
        if not re.match(IDENT_PATTERN, name):
            sink.add(src.loc(path, key=True), f"labware: name {name!r} must be lowercase letters, digits and '_'")
        spec = validate_piece(LabwareSpec, item, src, path, sink, f"labware.{name}")
        if spec is None:
            out[name] = None
            continue
        if spec.model not in LABWARE_MODELS:
            hint = did_you_mean(spec.model, LABWARE_MODELS) or f"; known models: {one_of(LABWARE_MODELS)}"
            sink.add(src.loc((*path, "model")), f"labware.{name}.model: unknown labware model {spec.model!r}{hint}")
        out[name] = LabwareDecl(name, spec.model, spec.home, spec.cells, spec.cell_type)
    return out
