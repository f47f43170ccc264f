"""Compile validated steps into graph nodes, checking meaning as it goes.

Walks the steps in document order keeping what an expression may read (parameters,
names saved so far, ``iteration`` inside repeats) and which steps have finished (for
``after``), so every reference is checked against what really comes earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.protocol import actions
from orchestrator.protocol.context import FileCtx, Session, StepCtx, static_count, static_duration
from orchestrator.protocol.errors import did_you_mean
from orchestrator.protocol.expr import Saved, compile_expr, template_parts
from orchestrator.protocol.graph import ActionNode, Expr, GroupNode, Lag, Node, OperatorNode, RepeatNode, WaitNode
from orchestrator.protocol.model import Step
from orchestrator.protocol.source import DataPath
from orchestrator.protocol.structure import validate_lenient

_KINDS = ("do", "wait", "ask", "include", "steps")
_ACTION_ONLY = ("save", "accept", "on_reject", "on_error", "timeout")


@dataclass
class Frame:
    """A sequence being compiled: earlier siblings' ids -> keys, and the enclosing frame."""

    parent: Frame | None
    key: str
    earlier: dict[str, str] = field(default_factory=dict)
    later: set[str] = field(default_factory=set)

    def visible(self) -> dict[str, str]:
        """Step ids ``after`` may name here, innermost first."""
        out: dict[str, str] = {}
        frame: Frame | None = self
        while frame is not None:
            for k, v in frame.earlier.items():
                out.setdefault(k, v)
            frame = frame.parent
        return out


def collect_saves(raw: Any, prefix: str = "") -> dict[str, str]:
    """Every ``save:`` name in raw steps (this file only) -> step key, for hints."""
    out: dict[str, str] = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            key = f"{prefix}{item.get('id')}"
            if isinstance(item.get("save"), str):
                out.setdefault(item["save"], key)
            out.update({k: v for k, v in collect_saves(item.get("steps"), key + ".").items() if k not in out})
    return out


def compile_steps(
    ctx: FileCtx, sess: Session, raw: Any, path: DataPath, frame: Frame, in_repeat: bool
) -> tuple[Node, ...]:
    """Compile a list of raw steps at ``path``; reports every problem found."""
    if not isinstance(raw, list):
        return ()
    frame.later = {s["id"] for s in raw if isinstance(s, dict) and isinstance(s.get("id"), str)}
    first_at: dict[str, str] = {}
    nodes: list[Node] = []
    for i, item in enumerate(raw):
        spath = (*path, i)
        sid = item.get("id") if isinstance(item, dict) else None
        key = f"{frame.key}{sid}" if isinstance(sid, str) else f"{frame.key}#{i + 1}"
        label = f"step {key!r}"
        if isinstance(sid, str):
            if sid in first_at:
                sess.sink.add(
                    ctx.src.loc((*spath, "id")),
                    f"{label}: duplicate step id {sid!r} (first at {first_at[sid]}); ids must be unique among siblings",
                )
            first_at.setdefault(sid, str(ctx.src.loc((*spath, "id"))))
        step, kept, broken = validate_lenient(
            Step, item, ctx.src, spath, sess.sink, label, {"steps": list}, placeholders={"id": f"step_{i + 1}"}
        )
        node = None
        if step is None:
            _salvage(ctx, sess, item, spath, key, frame, in_repeat)
        else:
            node = compile_step(StepCtx(ctx, sess, step, kept, spath, label, in_repeat), key, frame, broken)
        if node is not None:
            nodes.append(node)
        if isinstance(sid, str):
            frame.earlier[sid] = key
            sess.done.add(key)
    return tuple(nodes)


def _salvage(ctx: FileCtx, sess: Session, item: Any, path: DataPath, key: str, frame: Frame, rep: bool) -> None:
    """After a structural error: keep checking nested steps, remember the saved name."""
    if not isinstance(item, dict):
        return
    if isinstance(item.get("save"), str):
        ctx.saved[item["save"]] = Saved(key, None, None)
    compile_steps(ctx, sess, item.get("steps"), (*path, "steps"), Frame(frame, key + "."), rep or "repeat" in item)


def compile_step(at: StepCtx, key: str, frame: Frame, broken: frozenset[str] = frozenset()) -> Node | None:
    """One step of any kind; None when it cannot be compiled.

    ``broken`` names keys already reported (and dropped) by structural validation, so
    checks that they are present do not repeat the complaint.
    """
    ctx, sess, step, raw, path, label = at.ctx, at.sess, at.step, at.raw, at.path, at.label
    loc = at.loc()
    kinds = [k for k in _KINDS if k in raw and raw[k] is not None]
    if len(kinds) > 1:
        at.report(
            at.loc(kinds[1], key=True),
            f"a step has exactly one of do, wait, ask, include or steps; this one has {' and '.join(kinds)}",
        )
    elif not kinds and not broken & {*_KINDS, "repeat"}:
        extra = ("repeat needs steps: (the block to repeat)" if step.repeat
                 else "add do:, wait:, ask:, include: or steps:")
        at.report(loc, f"the step does nothing; {extra}")
    kind = kinds[0] if kinds else None
    if step.repeat is not None and kind not in ("steps", None):
        at.report(at.loc("repeat", key=True), f"repeat needs steps:, not {kind or 'nothing'}")
    for k in _ACTION_ONLY:
        if k in raw and kind != "do":
            at.report(at.loc(k, key=True), f"{k} is only allowed on an action step (do:)")
    if "with" in raw and kind not in ("do", "include"):
        at.report(at.loc("with", key=True), "with is only allowed with do: or include:")
    when = _condition(ctx, sess, step.when, (*path, "when"), f"{label}: when", at.in_repeat)
    lags = _lags(at, key, frame, broken)
    common: dict[str, Any] = {"id": step.id, "key": key, "location": loc, "when": when, "lags": lags}
    if kind == "do":
        return _action(at, common, "with" in broken)
    if kind == "wait":
        seconds = static_duration(ctx, sess, step.wait, (*path, "wait"), f"{label}: wait")
        return WaitNode(seconds=seconds or 0.0, **common)
    if kind == "ask":
        return OperatorNode(message=str(step.ask), **common)
    if kind == "include":
        from orchestrator.protocol.includes import compile_include

        return compile_include(at, common)
    if kind == "steps":
        inner = Frame(frame, key + ".")
        body = compile_steps(ctx, sess, raw["steps"], (*path, "steps"), inner, at.in_repeat or step.repeat is not None)
        if step.repeat is None:
            return GroupNode(steps=body, **common)
        return _repeat(at, body, common, "repeat" in broken)
    return None


def _action(at: StepCtx, common: dict[str, Any], with_broken: bool) -> ActionNode | None:
    ctx, sess, step, path, label = at.ctx, at.sess, at.step, at.path, at.label
    assert step.do is not None
    info, instrument, problem = actions.resolve_action(sess, step.do)
    if info is None:
        at.report(at.loc("do"), f"do: {problem}")
        if step.save:
            ctx.saved[step.save] = Saved(common["key"], None, None)
        return None
    args = actions.check_args(at, info, with_broken)
    accept = actions.check_accept(at, info)
    on_error = actions.check_on_error(at)
    timeout = static_duration(ctx, sess, step.timeout, (*path, "timeout"), f"{label}: timeout")
    if timeout == 0:
        at.report(at.loc("timeout"), "timeout: must be longer than 0s")
    actions.check_save(at, common["key"], info)
    return ActionNode(
        instrument_class=info.instrument_class,
        action=info.name,
        args=args,
        instrument=instrument,
        save=step.save,
        accept=accept,
        on_reject=step.on_reject or "hold",
        on_error=on_error,
        timeout_s=timeout,
        **common,
    )


def _repeat(at: StepCtx, body: tuple[Node, ...], common: dict[str, Any], broken: bool) -> RepeatNode:
    ctx, sess = at.ctx, at.sess
    spec, rpath = at.step.repeat, (*at.path, "repeat")
    assert spec is not None
    lab = f"{at.label}: repeat"
    every = static_duration(ctx, sess, spec.every, (*rpath, "every"), f"{lab}.every")
    window = static_duration(ctx, sess, spec.window, (*rpath, "window"), f"{lab}.window")
    times = static_count(ctx, sess, spec.times, (*rpath, "times"), f"{lab}.times", 0)
    max_times = static_count(ctx, sess, spec.max_times, (*rpath, "max_times"), f"{lab}.max_times", 1)
    until = _condition(ctx, sess, spec.until, (*rpath, "until"), f"{lab}.until", True)
    if spec.times is not None and spec.until is not None:
        sess.sink.add(ctx.src.loc((*rpath, "until"), key=True), f"{lab}: use either times or until, not both")
    elif spec.times is None and spec.until is None and not broken:
        sess.sink.add(ctx.src.loc(rpath), f"{lab}: needs times: (a count) or until: (a condition)")
    if spec.max_times is not None and spec.until is None:
        sess.sink.add(ctx.src.loc((*rpath, "max_times"), key=True), f"{lab}: max_times only applies with until")
    if every == 0:
        sess.sink.add(ctx.src.loc((*rpath, "every")), f"{lab}.every: must be longer than 0s")
    if spec.window is not None and spec.every is None:
        sess.sink.add(ctx.src.loc((*rpath, "window"), key=True), f"{lab}: window needs every:")
    elif every and window is not None and window >= every:
        sess.sink.add(ctx.src.loc((*rpath, "window")), f"{lab}.window: must be shorter than every")
    return RepeatNode(
        steps=body,
        every_s=every or None,
        window_s=window or 0.0,
        times=times,
        until=until,
        max_times=max_times or 1000,
        **common,
    )


def _condition(ctx: FileCtx, sess: Session, text: str | None, path: DataPath, label: str, rep: bool) -> Expr | None:
    if text is None:
        return None
    offset, body = 0, text
    parts = template_parts(text)
    if isinstance(parts, list) and len(parts) == 1 and parts[0][2]:
        offset, body = parts[0][0], parts[0][1]
    return compile_expr(body, ctx.scope(rep), lambda o: ctx.src.at(path, offset + o), sess.sink.add, label)


def _lags(at: StepCtx, key: str, frame: Frame, broken: frozenset[str]) -> tuple[Lag, ...]:
    ctx, sess, step, path, label = at.ctx, at.sess, at.step, at.path, at.label
    refs: list[tuple[str, DataPath, float, float | None]] = []
    after = step.after
    for i, ref in enumerate([after] if isinstance(after, str) else after or []):
        refs.append((ref, (*path, "after") if isinstance(after, str) else (*path, "after", i), 0.0, None))
    sw = step.start_within
    if sw is not None:
        swp = (*path, "start_within")
        lo = static_duration(ctx, sess, sw.min, (*swp, "min"), f"{label}: start_within.min")
        hi = static_duration(ctx, sess, sw.max, (*swp, "max"), f"{label}: start_within.max")
        if sw.min is None and sw.max is None and "start_within" not in broken:
            at.report(ctx.src.loc(swp), "start_within needs min:, max: or both")
        if lo is not None and hi is not None and lo > hi:
            at.report(ctx.src.loc((*swp, "min")), "start_within: min is longer than max")
        refs.append((sw.after, (*swp, "after"), lo or 0.0, hi))
    lags = []
    for ref, rpath, lo, hi in refs:
        target = _resolve_ref(ctx, sess, ref, rpath, label, key, frame)
        if target is not None:
            lags.append(Lag(target, lo, hi))
    return tuple(lags)


def _resolve_ref(
    ctx: FileCtx, sess: Session, ref: str, path: DataPath, label: str, key: str, frame: Frame
) -> str | None:
    visible = frame.visible()
    if "." not in ref and ref in visible:
        return visible[ref]
    for cand in (ctx.prefix + ref, ref):
        if "." in ref and cand in sess.done and cand.startswith(ctx.prefix):
            return cand
    ancestors: set[str] = {key.rsplit(".", 1)[-1]}
    f: Frame | None = frame
    while f is not None:
        ancestors.add(f.key.rstrip(".").rsplit(".", 1)[-1])
        f = f.parent
    if ref in ancestors or ref == key:
        why = "a step cannot start after itself or a block that contains it"
    elif ref in frame.later:
        why = f"{ref!r} comes later; after must name an earlier step"
    else:
        why = f"no earlier step {ref!r}{did_you_mean(ref, visible)}"
    sess.sink.add(ctx.src.loc(path), f"{label}: {why}")
    return None
