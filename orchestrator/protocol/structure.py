"""Structural validation with located messages: protocol files piece by piece, workcell
and campaign files whole (:func:`load_document`).

Pieces (the header, each parameter, each labware item, each step) are validated one at
a time so that one bad step does not hide problems elsewhere; pydantic's errors are
translated to ``file:line:col: field: expected ..., got ...`` with did-you-mean hints.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.protocol.errors import ErrorSink, did_you_mean, one_of
from orchestrator.protocol.model import PATTERN_HINTS
from orchestrator.protocol.source import DataPath, SourceFile, read_source

M = typing.TypeVar("M", bound=BaseModel)

_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "int_parsing": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "list_type": "a list",
    "none_required": "nothing",
}


def describe(value: Any) -> str:
    """Short description of a YAML value for ``got ...`` in messages."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return repr(value)


def validate_piece(
    model: type[M],
    raw: Any,
    src: SourceFile,
    path: DataPath,
    sink: ErrorSink,
    label: str,
    children: dict[str, type] | None = None,
) -> M | None:
    """Validate ``raw`` (found at ``path`` in ``src``) against ``model``.

    ``children`` maps keys whose contents the caller validates piece by piece to
    their container type; when the raw value has that type it is replaced by an
    empty one here. Every problem is reported into ``sink`` prefixed with ``label``
    (``step 'day.feed'``). Returns the model, or None when anything was wrong.
    """
    return validate_lenient(model, raw, src, path, sink, label, children, lenient=False)[0]


def load_document(path: str | Path, model: type[M], expected: str) -> tuple[SourceFile, M]:
    """Read a whole YAML file (a workcell or campaign) and validate it against ``model``.

    ``expected`` describes the top level for the empty-file message.

    Raises:
        ProtocolErrors: every problem, located ``path:line:col`` (unreadable file, YAML
            syntax, unknown keys with did-you-mean hints, wrong types).
    """
    sink = ErrorSink()
    src = read_source(Path(path), str(path), sink, expected=expected)
    parsed = validate_piece(model, src.data, src, (), sink, "") if src is not None else None
    sink.raise_if_any()
    assert src is not None and parsed is not None  # validate_piece reports whenever it returns None
    return src, parsed


def validate_lenient(
    model: type[M],
    raw: Any,
    src: SourceFile,
    path: DataPath,
    sink: ErrorSink,
    label: str,
    children: dict[str, type] | None = None,
    lenient: bool = True,
    placeholders: dict[str, Any] | None = None,
) -> tuple[M | None, dict[str, Any], frozenset[str]]:
    """Like :func:`validate_piece`, but after reporting, retry without the bad keys.

    Lets later passes still check the good parts of a broken mapping. Missing required
    keys are filled from ``placeholders`` for the retry.

    Returns:
        ``(model or None, the raw mapping the model was built from, top-level keys that
        had problems)``.
    """
    data = raw
    if isinstance(raw, dict) and children:
        data = {k: (children[k]() if k in children and isinstance(v, children[k]) else v) for k, v in raw.items()}
    try:
        return model.model_validate(data), raw, frozenset()
    except ValidationError as exc:
        report_validation_error(exc, model, raw, src, path, sink, label)
        broken = frozenset(str(e["loc"][0]) for e in exc.errors() if e["loc"])
        if not lenient or not isinstance(raw, dict):
            return None, {}, broken
        pruned = dict(raw)
        for _ in range(4):
            for err in exc.errors():
                _prune(pruned, _resolve(pruned, tuple(err["loc"]), err["type"])[0])
            pruned.update({k: v for k, v in (placeholders or {}).items() if k not in pruned})
            data = dict(pruned)
            if children:
                data.update({k: children[k]() for k in children if isinstance(data.get(k), children[k])})
            try:
                return model.model_validate(data), pruned, broken
            except ValidationError as again:
                exc = again
        return None, pruned, broken


def _prune(data: dict[str, Any], rel: DataPath) -> None:
    """Drop the entry a problem is about: ``key.sub`` inside a mapping value, else ``key``."""
    if not rel:
        return
    top = str(rel[0])
    value = data.get(top)
    if len(rel) >= 2 and isinstance(value, dict) and rel[1] in value:
        data[top] = {k: v for k, v in value.items() if k != rel[1]}
    else:
        data.pop(top, None)


def report_validation_error(
    exc: ValidationError, model: type[BaseModel], raw: Any, src: SourceFile, path: DataPath, sink: ErrorSink, label: str
) -> None:
    """Translate every error in ``exc`` into a located message (same-place union errors merged)."""
    grouped: dict[tuple[DataPath, bool], list[dict[str, Any]]] = {}
    for err in exc.errors():
        rel, key = _resolve(raw, tuple(err["loc"]), err["type"])
        grouped.setdefault((rel, key), []).append(dict(err))
    for (rel, key), errs in grouped.items():
        field = ".".join(str(p) for p in rel)
        where = src.loc((*path, *rel), key=key)
        prefix = ": ".join(s for s in (label, field) if s)
        types = [_EXPECTED.get(e["type"]) for e in errs]
        if len(errs) > 1 and all(types):
            names = list(dict.fromkeys(t for t in types if t))
            message = f"expected {' or '.join(names)}, got {describe(errs[0]['input'])}"
            sink.add(where, f"{prefix}: {message}" if prefix else message)
            continue
        for e in errs:
            message = _message(e, model, rel)
            sink.add(where, f"{prefix}: {message}" if prefix else message)


def _resolve(raw: Any, loc: tuple[Any, ...], kind: str) -> tuple[DataPath, bool]:
    """Map a pydantic loc to a data path (dropping union tags); True if it names a key."""
    out: list[str | int] = []
    node = raw
    for i, el in enumerate(loc):
        if (isinstance(node, dict) and isinstance(el, str) and el in node) or (
            isinstance(node, list) and isinstance(el, int) and 0 <= el < len(node)
        ):
            out.append(el)
            node = node[el]  # type: ignore[index]
        elif kind == "missing" and i == len(loc) - 1:
            return tuple(out), False
    return tuple(out), kind == "extra_forbidden"


def _message(err: dict[str, Any], model: type[BaseModel], rel: DataPath) -> str:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "missing":
        return f"missing required key {err['loc'][-1]!r}"
    if kind == "extra_forbidden":
        word = str(err["loc"][-1])
        allowed = keys_at(model, tuple(err["loc"][:-1]))
        hint = did_you_mean(word, allowed)
        return f"unknown key {word!r}" + (hint or f"; expected one of {one_of(allowed)}" if allowed else "")
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = did_you_mean(str(value), choices) if isinstance(value, str) else ""
        return f"expected one of {one_of(choices)}, got {describe(value)}{hint}"
    if kind == "string_pattern_mismatch":
        hint = PATTERN_HINTS.get(str(ctx.get("pattern")), f"text matching {ctx.get('pattern')}")
        return f"expected {hint}, got {describe(value)}"
    if kind in _EXPECTED:
        quote = " (quote it)" if kind == "string_type" and isinstance(value, (int, float)) else ""
        return f"expected {_EXPECTED[kind]}, got {describe(value)}{quote}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {describe(value)}"
    if kind in ("duration", "count", "names", "comparison"):
        return str(err["msg"])
    return f"{err['msg']}, got {describe(value)}"


def keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Keys allowed in the mapping that ``loc`` (a pydantic loc) points into."""
    t: Any = model
    for el in loc:
        t = _descend(t, el)
    found = next((c for c in _candidates(t) if isinstance(c, type) and issubclass(c, BaseModel)), None)
    if found is None:
        return []
    return sorted(f.alias or name for name, f in found.model_fields.items())


def _candidates(t: Any) -> list[Any]:
    origin = typing.get_origin(t)
    if origin is typing.Annotated:
        return _candidates(typing.get_args(t)[0])
    if origin in (typing.Union, types.UnionType):
        return [c for a in typing.get_args(t) for c in _candidates(a)]
    return [t]


def _descend(t: Any, el: Any) -> Any:
    for c in _candidates(t):
        origin = typing.get_origin(c)
        if isinstance(c, type) and issubclass(c, BaseModel) and isinstance(el, str):
            for name, f in c.model_fields.items():
                if el in (name, f.alias):
                    return f.annotation
        elif origin is list and isinstance(el, int):
            return typing.get_args(c)[0]
        elif origin is dict and isinstance(el, str):
            return typing.get_args(c)[1]
    return t  # a union tag such as 'rule': stay on the same type
