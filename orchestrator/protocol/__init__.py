"""The protocol language: YAML protocol files -> validated, compiled :class:`ProtocolGraph`.

Public API:

* :func:`load_protocol` — load, validate and compile a protocol file;
* :class:`ProtocolErrors` / :class:`ProtocolError` — every problem, located;
* :class:`WorkcellView` — what the compiler needs to know about a workcell;
* :func:`protocol_json_schema` — JSON schema of protocol files;
* :func:`parse_duration` — ``"1h30m"`` -> seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from orchestrator.protocol.compiler import Frame, collect_saves, compile_steps
from orchestrator.protocol.context import FileCtx, Session
from orchestrator.protocol.durations import format_duration, parse_duration
from orchestrator.protocol.errors import COMMAND_LINE, ErrorSink, ProtocolError, ProtocolErrors
from orchestrator.protocol.expr import ExpressionError
from orchestrator.protocol.graph import Location, ProtocolGraph
from orchestrator.protocol.includes import bundled_dir, load_file
from orchestrator.protocol.model import protocol_json_schema
from orchestrator.protocol.params import Override, resolve

__all__ = [
    "ExpressionError",
    "Location",
    "ProtocolError",
    "ProtocolErrors",
    "WorkcellView",
    "bundled_dir",
    "format_duration",
    "load_protocol",
    "parse_duration",
    "protocol_json_schema",
]


@runtime_checkable
class WorkcellView(Protocol):
    """The part of a workcell the protocol compiler needs."""

    def instrument_classes(self) -> Mapping[str, str]:
        """Instrument name -> instrument class (``{"lh1": "liquid_handler"}``)."""
        ...


def load_protocol(
    path: str | Path, overrides: Mapping[str, Any] | None = None, workcell: WorkcellView | None = None
) -> ProtocolGraph:
    """Load, validate and compile a protocol file.

    Args:
        path: the protocol file.
        overrides: parameter values by name; strings (``-p days=14``) are parsed to
            the declared type, other values must already have it.
        workcell: when given, ``do:`` must name an instrument class present in it or
            one of its instrument names (which then sets ``ActionNode.instrument``).

    Returns:
        the compiled graph; ``content_hash`` is SHA-256 over the bytes of this file
        and every included file, in include order.

    Raises:
        ProtocolErrors: with every problem found, each located ``file:line:col``
            (overrides at ``<command line>:1:1``).
    """
    actions = getattr(workcell, "actions", None) if workcell is not None else None
    sess = Session(ErrorSink(), dict(workcell.instrument_classes()) if workcell is not None else None,
                   actions() if callable(actions) else None)
    real = Path(path).resolve()
    loaded = load_file(sess, real, str(path))
    if loaded is None:
        sess.sink.raise_if_any()
        raise ProtocolErrors([ProtocolError(Location(str(path), 1, 1), "cannot load protocol")])  # pragma: no cover
    sess.hasher.update(loaded.src.raw)
    given = {
        name: Override(value, COMMAND_LINE, f"-p {name}={value}", text=isinstance(value, str))
        for name, value in (overrides or {}).items()
    }
    values, missing = resolve(loaded.declared, given, sess.sink, "parameters")
    for name in missing:
        decl = loaded.declared[name]
        kind = decl.spec.type if decl.spec else "value"
        sess.sink.add(decl.location, f"parameters.{name}: no default and no value given; pass -p {name}=<{kind}>")
    labware = dict(loaded.labware)
    ctx = FileCtx(loaded.src, values, labware, (real,), later=collect_saves(loaded.raw_steps))
    steps = compile_steps(ctx, sess, loaded.raw_steps, ("steps",), Frame(None, ""), False)
    sess.sink.raise_if_any()
    header = loaded.header
    assert header is not None
    return ProtocolGraph(
        name=header.protocol,
        version=header.version,
        title=header.title,
        source=str(path),
        content_hash=sess.hasher.hexdigest(),
        parameters=values,
        labware={name: decl for name, decl in labware.items() if decl is not None},
        steps=steps,
    )
