"""Loading protocol files (top level and includes) and inlining ``include:`` steps."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from orchestrator.protocol.context import INVALID, FileCtx, Session, StepCtx, compile_value
from orchestrator.protocol.errors import did_you_mean, one_of
from orchestrator.protocol.expr import UNKNOWN
from orchestrator.protocol.graph import GroupNode, LabwareDecl, Location
from orchestrator.protocol.model import ProtocolDocument
from orchestrator.protocol.params import Declared, Override, declare, declare_labware, resolve
from orchestrator.protocol.source import PROTOCOL_TOP, DataPath, SourceFile, read_source
from orchestrator.protocol.structure import validate_piece


def bundled_dir() -> Path:
    """The directory of the protocol library shipped with cellwright (``protocols/``)."""
    return Path(str(files("protocols")))


def display_path(real: Path) -> str:
    """``real`` relative to the working directory when below it, else absolute."""
    try:
        rel = os.path.relpath(real)
    except ValueError:
        return str(real)
    return str(real) if rel.startswith("..") else rel


@dataclass
class Loaded:
    """A protocol file with its header, parameters and labware checked."""

    src: SourceFile
    header: ProtocolDocument | None
    declared: dict[str, Declared]
    labware: dict[str, LabwareDecl | None]

    @property
    def raw_steps(self) -> Any:
        """The raw ``steps:`` list (or whatever was written)."""
        return self.src.data.get("steps") if isinstance(self.src.data, dict) else None


def load_file(sess: Session, real: Path, display: str, at: Location | None = None) -> Loaded | None:
    """Parse and check one file's structure, header, parameters and labware (once per file).

    Problems are reported into ``sess.sink``; None when the file could not be parsed.
    """
    if real in sess.cache:
        src = sess.cache[real]
    else:
        src = sess.cache[real] = read_source(real, display, sess.sink, at)
    if src is None:
        return None
    data = src.data
    if not isinstance(data, dict):
        sess.sink.add(src.loc(()), f"expected {PROTOCOL_TOP} at the top level")
        return Loaded(src, None, {}, {})
    sink = sess.sink  # a file included twice reports twice; ProtocolErrors drops duplicates
    header = validate_piece(
        ProtocolDocument, data, src, (), sink, "", {"parameters": dict, "labware": dict, "steps": list}
    )
    if isinstance(data.get("steps"), list) and not data["steps"]:
        sink.add(src.loc(("steps",)), "steps: a protocol needs at least one step")
    return Loaded(
        src, header, declare(src, data.get("parameters"), sink), declare_labware(src, data.get("labware"), sink)
    )


def find_include(name: str, including: Path) -> tuple[Path | None, list[Path]]:
    """Resolve an include: relative to the including file, then the bundled library."""
    candidates = [Path(name)] if Path(name).is_absolute() else [including.parent / name, bundled_dir() / name]
    for c in candidates:
        if c.is_file():
            return c.resolve(), candidates
    return None, candidates


def compile_include(at: StepCtx, common: dict[str, Any]) -> GroupNode | None:
    """Inline an included protocol as a GroupNode keyed by the include step's id.

    Reports missing files, circular includes (naming the cycle), unknown ``with:``
    names, unbound or mismatched labware and bad or missing parameter values.
    """
    from orchestrator.protocol.compiler import Frame, collect_saves, compile_steps

    ctx, sess, step, path = at.ctx, at.sess, at.step, at.path
    assert step.include is not None
    ipath = (*path, "include")
    where = ctx.src.loc(ipath)
    real, tried = find_include(step.include, ctx.src.real)
    if real is None:
        near = [p.name for d in {c.parent for c in tried} if d.is_dir() for p in d.glob("*.yaml")]
        hint = did_you_mean(Path(step.include).name, near)
        looked = " and ".join(display_path(c.parent) or "." for c in tried)
        at.report(where, f"include: file {step.include!r} not found (looked in {looked}){hint}")
        return None
    if real in ctx.stack:
        cycle = " -> ".join(display_path(p) for p in (*ctx.stack[ctx.stack.index(real) :], real))
        at.report(where, f"include: circular include: {cycle}")
        return None
    loaded = load_file(sess, real, display_path(real), where)
    if loaded is None:
        return None
    sess.hasher.update(loaded.src.raw)
    labware, overrides = _bind(at, loaded)
    values, missing = resolve(loaded.declared, overrides, sess.sink, f"parameters of {step.include}")
    for name in missing:
        at.report(where, f"parameter {name!r} of {step.include} has no default; set it under with:")
    inner = FileCtx(
        loaded.src, values, labware, (*ctx.stack, real), common["key"] + ".", later=collect_saves(loaded.raw_steps)
    )
    body = compile_steps(inner, sess, loaded.raw_steps, ("steps",), Frame(None, inner.prefix), False)
    ctx.saved.update(inner.saved)
    return GroupNode(steps=body, **common)


def _bind(at: StepCtx, loaded: Loaded) -> tuple[dict[str, LabwareDecl | None], dict[str, Override]]:
    """Labware bindings and parameter overrides from an include's ``with:``."""
    ctx, sess, step, path, label = at.ctx, at.sess, at.step, at.path, at.label
    labware: dict[str, LabwareDecl | None] = {}
    overrides: dict[str, Override] = {}
    for name, value in (step.with_ or {}).items():
        vpath = (*path, "with", name)
        if name in loaded.labware:
            if not isinstance(value, str) or value not in ctx.labware:
                hint = did_you_mean(str(value), ctx.labware) or f"; declared: {one_of(ctx.labware)}"
                at.report(
                    ctx.src.loc(vpath),
                    f"with.{name}: expected the name of declared labware, got {value!r}{hint}",
                )
                labware[name] = None
            else:
                labware[name] = _match(at, vpath, name, ctx.labware[value], loaded.labware[name])
        elif name in loaded.declared:
            v = compile_value(ctx, sess, value, vpath, f"{label}: with.{name}", at.in_repeat, static=True)
            overrides[name] = Override(UNKNOWN if v is INVALID else v, ctx.src.loc(vpath), f"{label}: with.{name}")
        else:
            known = [*loaded.labware, *loaded.declared]
            hint = did_you_mean(name, known) or f"; {step.include} takes: {one_of(known) if known else 'nothing'}"
            at.report(
                ctx.src.loc(vpath, key=True),
                f"with: {step.include} has no labware or parameter {name!r}{hint}",
            )
    for name, decl in loaded.labware.items():
        if name in labware:
            continue
        if name in ctx.labware:
            labware[name] = _match(at, (*path, "include"), name, ctx.labware[name], decl)
        else:
            labware[name] = None
            at.report(
                at.loc("include"),
                f"labware {name!r} of {step.include} is not "
                f"bound; add with: {{{name}: <labware>}} (declared: {one_of(ctx.labware)})",
            )
    return labware, overrides


def _match(
    at: StepCtx, path: DataPath, name: str, outer: LabwareDecl | None, inner: LabwareDecl | None
) -> LabwareDecl | None:
    """``outer``, after reporting (at ``path``) a model that differs from the included file's ``inner``."""
    if outer is not None and inner is not None and outer.model != inner.model:
        at.report(
            at.ctx.src.loc(path),
            f"labware {name!r} of the included protocol is a {inner.model}, but {outer.name!r} is a {outer.model}",
        )
    return outer
