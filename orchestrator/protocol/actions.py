"""Action steps: ``do:`` against the catalogue, arguments, ``save``, ``accept``, ``on_error``."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from functools import cache
from typing import Any

from drivers.actions import ActionInfo, catalogue
from drivers.base import INSTRUMENT_CLASSES
from drivers.errors import ERROR_KINDS
from drivers.labware import LABWARE_MODELS
from orchestrator.protocol.context import INVALID, Session, StepCtx, compile_value, static_duration
from orchestrator.protocol.errors import did_you_mean, one_of
from orchestrator.protocol.expr import UNKNOWN, Saved
from orchestrator.protocol.graph import Criterion, Expr, RecoveryRule
from orchestrator.protocol.model import RetrySpec
from orchestrator.protocol.params import RESERVED
from orchestrator.protocol.structure import describe

_MOVES = "plate movement is planned by the engine (it inserts fetch, store and transfer); remove this step"
_CRITERION = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*$")
_NUMERIC = {"float", "int"}


@cache
def result_fields(info: ActionInfo) -> tuple[str | None, frozenset[str]]:
    """Result type name of an action (None = returns nothing) and its numeric fields."""
    method = getattr(INSTRUMENT_CLASSES[info.instrument_class], info.name, None)
    if method is None:  # a driver-specific action: its result type is named in the catalogue
        return info.returns, frozenset()
    ret = typing.get_type_hints(method).get("return")
    if ret in (None, type(None)):
        return None, frozenset()
    if not dataclasses.is_dataclass(ret):
        return getattr(ret, "__name__", str(ret)), frozenset()
    hints = typing.get_type_hints(ret)
    numeric = {f.name for f in dataclasses.fields(ret) if _is_number(hints.get(f.name))}
    return str(getattr(ret, "__name__", ret)), frozenset(numeric)


def _is_number(t: Any) -> bool:
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        return len(args) == 1 and _is_number(args[0])
    return t in (int, float)


def resolve_action(sess: Session, text: str) -> tuple[ActionInfo | None, str | None, str | None]:
    """``(info, instrument, problem)`` for a ``do:`` value, against the workcell when one is given."""
    cat = sess.actions if sess.actions is not None else catalogue()
    classes = sorted({a.instrument_class for a in cat.values()})
    wc = sess.workcell
    if not re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_]+", text):
        return None, None, f"expected instrument_class.action (like imager.confluence), got {text!r}"
    head, name = text.split(".", 1)
    instrument = None
    if wc is not None and head not in classes and head in wc:
        cls, instrument = wc[head], head
    elif head in classes:
        cls = head
        if wc is not None and cls not in wc.values():
            have = ", ".join(f"{n} ({c})" for n, c in sorted(wc.items())) or "none"
            return None, None, f"the workcell has no {cls}; instruments: {have}"
    else:
        names = classes + sorted(wc or {})
        hint = did_you_mean(text, cat) or did_you_mean(head, names)
        what = "instrument class or workcell instrument" if wc is not None else "instrument class"
        return None, None, f"unknown action {text!r}: no {what} {head!r}{hint or '; classes: ' + one_of(classes)}"
    info = cat.get(f"{cls}.{name}")
    if info is None:
        actions = [a.name for a in cat.values() if a.instrument_class == cls]
        hint = did_you_mean(name, actions)
        hint = hint.replace("mean ", f"mean {head}.") if hint else f"; {cls} actions: {one_of(actions)}"
        return None, None, f"unknown action {text!r}: {cls} has no action {name!r}{hint}"
    if info.moves_plate and info.name != "check_in":
        return None, None, f"{text}: {_MOVES}"
    return info, instrument, None


def check_args(at: StepCtx, info: ActionInfo, with_broken: bool = False) -> dict[str, Any]:
    """Argument values for the graph (defaults filled in); reports every bad argument.

    ``with_broken``: ``with:`` was already reported as malformed; missing arguments
    are then not reported again.
    """
    ctx, sess, step, path, label = at.ctx, at.sess, at.step, at.path, at.label
    given = dict(step.with_ or {})
    args: dict[str, Any] = {}
    wpath = (*path, "with")
    plate_model = None
    for pname, value in given.items():
        vpath = (*wpath, pname)
        param = info.param(pname)
        if param is None:
            names = [p.name for p in info.params]
            hint = did_you_mean(pname, names) or f"; arguments: {one_of(names) if names else 'none'}"
            at.report(ctx.src.loc(vpath, key=True), f"{info.qualified} takes no argument {pname!r}{hint}")
            continue
        if param.kind == "plate":
            if not isinstance(value, str) or "${" in value:
                at.report(
                    ctx.src.loc(vpath),
                    f"with.{pname}: expected the name of declared labware, got {describe(value)}",
                )
            elif value not in ctx.labware:
                hint = did_you_mean(value, ctx.labware) or f"; declared: {one_of(ctx.labware)}"
                at.report(ctx.src.loc(vpath), f"with.{pname}: {value!r} is not declared labware{hint}")
            else:
                decl = ctx.labware[value]
                args[pname] = decl.name if decl else value
                plate_model = LABWARE_MODELS.get(decl.model) if decl else None
            continue
        resolved = compile_value(ctx, sess, value, vpath, f"{label}: with.{pname}", at.in_repeat)
        if resolved is INVALID or resolved is UNKNOWN or isinstance(resolved, Expr):
            args[pname] = resolved
            continue
        problem, resolved = _kind(param.kind, param.optional, resolved)
        if problem:
            at.report(ctx.src.loc(vpath), f"with.{pname}: expected {problem}, got {describe(resolved)}")
        args[pname] = resolved
    for p in info.params:
        if p.name not in given:
            if p.required and not with_broken:
                where = ctx.src.loc(wpath if "with" in at.raw else (*path, "do"))
                at.report(where, f"{info.qualified} needs argument {p.name!r} ({p.kind}); add it under with:")
            else:
                args[p.name] = p.default
    volume = args.get("volume_ul")
    if plate_model and isinstance(volume, (int, float)) and volume > plate_model.max_volume_ul:
        at.report(
            ctx.src.loc((*wpath, "volume_ul")),
            f"with.volume_ul: {volume:g} µL exceeds the "
            f"{plate_model.max_volume_ul:g} µL working volume of {plate_model.name}",
        )
    return args


def _kind(kind: str, optional: bool, value: Any) -> tuple[str | None, Any]:
    if value is None:
        return (None if optional else "a value", value)
    if kind in _NUMERIC:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "a number", value
        if kind == "int":
            if not float(value).is_integer():
                return "a whole number", value
            value = int(value)
        return ("a number >= 0" if value < 0 else None), value
    expected = {"str": (str, "text"), "bool": (bool, "true or false")}.get(kind, (str, "text"))
    return (None if isinstance(value, expected[0]) else expected[1]), value


def check_save(at: StepCtx, key: str, info: ActionInfo) -> None:
    """Check ``save`` and record the saved name in the file context."""
    ctx, step = at.ctx, at.step
    if step.save is None:
        return
    result, fields = result_fields(info)
    where = at.loc("save")
    if result is None:
        at.report(where, f"save: {info.qualified} returns nothing to save")
    elif step.save in ctx.params or step.save in RESERVED:
        at.report(where, f"save: {step.save!r} is already a parameter or a reserved name")
    ctx.saved[step.save] = Saved(key, result, fields if result else None)


def check_accept(at: StepCtx, info: ActionInfo) -> tuple[Criterion, ...]:
    """Acceptance criteria of an action step; reports unknown fields and bad comparisons."""
    ctx, sess, step, path, label = at.ctx, at.sess, at.step, at.path, at.label
    if step.on_reject is not None and not step.accept:
        at.report(at.loc("on_reject"), "on_reject needs accept: criteria")
    if not step.accept:
        return ()
    result, fields = result_fields(info)
    if result is None:
        at.report(at.loc("accept"), f"accept: {info.qualified} returns nothing to check")
        return ()
    out = []
    for fname, text in step.accept.items():
        fpath = (*path, "accept", fname)
        if fname not in fields:
            hint = did_you_mean(fname, fields) or f"; fields: {one_of(fields) if fields else 'none'}"
            at.report(ctx.src.loc(fpath, key=True), f"accept: {result} has no field {fname!r}{hint}")
            continue
        m = _CRITERION.match(text)
        if not m:
            at.report(
                ctx.src.loc(fpath),
                f"accept.{fname}: expected 'operator value' like '>= 0.90' "
                f"(operators >= > <= < == !=), got {text!r}",
            )
            continue
        raw_value: Any = m.group(2)
        value = compile_value(ctx, sess, raw_value, fpath, f"{label}: accept.{fname}", False, True, m.start(2))
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if value is INVALID or value is UNKNOWN:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            at.report(
                ctx.src.loc(fpath), f"accept.{fname}: expected a number after {m.group(1)}, got {m.group(2)!r}"
            )
            continue
        shown = f"{value:g}" if "${" in m.group(2) else m.group(2)
        out.append(Criterion(fname, m.group(1), float(value), f"{fname} {m.group(1)} {shown}"))  # type: ignore[arg-type]
    return tuple(out)


def check_on_error(at: StepCtx) -> dict[str, RecoveryRule]:
    """Recovery rules by error kind; reports unknown kinds."""
    ctx, sess, step, path, label = at.ctx, at.sess, at.step, at.path, at.label
    out: dict[str, RecoveryRule] = {}
    kinds = (*ERROR_KINDS, "default")
    for kind, rule in (step.on_error or {}).items():
        kpath = (*path, "on_error", kind)
        if kind not in kinds:
            hint = did_you_mean(kind, kinds) or f"; error kinds: {one_of(kinds)}"
            at.report(ctx.src.loc(kpath, key=True), f"on_error: unknown error kind {kind!r}{hint}")
            continue
        if isinstance(rule, RetrySpec):
            backoff = static_duration(ctx, sess, rule.backoff, (*kpath, "backoff"), f"{label}: on_error.{kind}.backoff")
            out[kind] = RecoveryRule("retry", rule.retry, 30.0 if backoff is None else backoff, rule.then)
        else:
            out[kind] = RecoveryRule(rule, retries=1 if rule == "retry" else 0)
    return out
