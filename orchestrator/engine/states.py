"""The engine's state machines (built with ``transitions``).

Run:        created → validated → planned → running ⇄ paused → completed | failed | aborted
Step:       pending → ready → running → done | failed → recovering → retrying → running
                                                   recovering → done (instrument confirms it happened)
                                                   recovering → skipped | awaiting_operator
            awaiting_operator → running (redo) | done | skipped | failed
Instrument: offline → idle ⇄ busy → error → idle (reset) | maintenance → idle

Every transition calls ``on_transition(model, source, dest, reason)`` *before* the
engine performs the side effect that follows it, so the journal always leads reality.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transitions import EventData, Machine, MachineError

Listener = Callable[[Any, str, str, str], None]

RUN_STATES = ["created", "validated", "planned", "running", "paused", "completed", "failed", "aborted"]
RUN_TRANSITIONS: list[list[Any]] = [
    ["validate", "created", "validated"],
    ["plan", "validated", "planned"],
    ["start", "planned", "running"],
    ["pause", "running", "paused"],
    ["resume", "paused", "running"],
    ["complete", "running", "completed"],
    ["fail", ["created", "validated", "planned", "running", "paused"], "failed"],
    ["abort", ["created", "validated", "planned", "running", "paused"], "aborted"],
]
RUN_FINAL = frozenset({"completed", "failed", "aborted"})

STEP_STATES = ["pending", "ready", "running", "done", "failed", "recovering", "retrying", "skipped",
               "awaiting_operator"]
STEP_TRANSITIONS: list[list[Any]] = [
    ["ready", "pending", "ready"],
    ["skip", ["pending", "ready", "recovering", "awaiting_operator"], "skipped"],
    ["start", ["ready", "retrying", "awaiting_operator"], "running"],
    ["finish", ["running", "awaiting_operator"], "done"],
    ["error", "running", "failed"],
    ["recover", "failed", "recovering"],
    ["confirm", "recovering", "done"],
    ["retry", "recovering", "retrying"],
    ["ask_operator", ["recovering", "running", "ready"], "awaiting_operator"],
    ["give_up", ["recovering", "awaiting_operator"], "failed"],
]
STEP_FINAL = frozenset({"done", "skipped"})

INSTRUMENT_STATES = ["offline", "idle", "busy", "error", "maintenance"]
INSTRUMENT_TRANSITIONS: list[list[Any]] = [
    ["connect", "offline", "idle"],
    ["acquire", "idle", "busy"],
    ["release", "busy", "idle"],
    ["fault", ["idle", "busy"], "error"],
    ["reset", ["error", "maintenance"], "idle"],
    ["service", ["idle", "error"], "maintenance"],
    ["disconnect", ["idle", "busy", "error", "maintenance"], "offline"],
]


class _Model:
    """A state-machine model that reports each transition to a listener first."""

    state: str

    def __init__(self, listener: Listener | None) -> None:
        self._listener = listener

    def _report(self, event: EventData) -> None:
        if self._listener is not None and event.transition is not None:
            reason = str(event.kwargs.get("reason", ""))
            self._listener(self, event.transition.source, str(event.transition.dest), reason)


def _machine(states: list[str], transitions: list[list[Any]], initial: str) -> Machine:
    return Machine(
        model=None, states=states, transitions=transitions, initial=initial, auto_transitions=False,
        send_event=True, before_state_change="_report",
    )


RUN_MACHINE = _machine(RUN_STATES, RUN_TRANSITIONS, "created")
STEP_MACHINE = _machine(STEP_STATES, STEP_TRANSITIONS, "pending")
INSTRUMENT_MACHINE = _machine(INSTRUMENT_STATES, INSTRUMENT_TRANSITIONS, "offline")


class RunState(_Model):
    """Lifecycle of one run."""

    def __init__(self, run_id: str, listener: Listener | None = None, initial: str = "created") -> None:
        super().__init__(listener)
        self.run_id = run_id
        RUN_MACHINE.add_model(self, initial=initial)

    @property
    def final(self) -> bool:
        return self.state in RUN_FINAL

    if TYPE_CHECKING:  # triggers that ``transitions`` binds at run time
        def validate(self, **kw: Any) -> bool: ...
        def plan(self, **kw: Any) -> bool: ...
        def start(self, **kw: Any) -> bool: ...
        def pause(self, **kw: Any) -> bool: ...
        def resume(self, **kw: Any) -> bool: ...
        def complete(self, **kw: Any) -> bool: ...
        def fail(self, **kw: Any) -> bool: ...
        def abort(self, **kw: Any) -> bool: ...


class StepState(_Model):
    """Lifecycle of one step execution; detach with :meth:`close` when final."""

    def __init__(self, key: str, listener: Listener | None = None, initial: str = "pending") -> None:
        super().__init__(listener)
        self.key = key
        STEP_MACHINE.add_model(self, initial=initial)

    def close(self) -> None:
        """Detach from the shared machine (keeps memory flat over long campaigns)."""
        STEP_MACHINE.remove_model(self)

    if TYPE_CHECKING:  # triggers that ``transitions`` binds at run time
        def ready(self, **kw: Any) -> bool: ...
        def skip(self, **kw: Any) -> bool: ...
        def start(self, **kw: Any) -> bool: ...
        def finish(self, **kw: Any) -> bool: ...
        def error(self, **kw: Any) -> bool: ...
        def recover(self, **kw: Any) -> bool: ...
        def confirm(self, **kw: Any) -> bool: ...
        def retry(self, **kw: Any) -> bool: ...
        def ask_operator(self, **kw: Any) -> bool: ...
        def give_up(self, **kw: Any) -> bool: ...


class InstrumentState(_Model):
    """Lifecycle of one instrument."""

    def __init__(self, name: str, listener: Listener | None = None) -> None:
        super().__init__(listener)
        self.name = name
        INSTRUMENT_MACHINE.add_model(self)

    if TYPE_CHECKING:  # triggers that ``transitions`` binds at run time
        def connect(self, **kw: Any) -> bool: ...
        def acquire(self, **kw: Any) -> bool: ...
        def release(self, **kw: Any) -> bool: ...
        def fault(self, **kw: Any) -> bool: ...
        def reset(self, **kw: Any) -> bool: ...
        def service(self, **kw: Any) -> bool: ...
        def disconnect(self, **kw: Any) -> bool: ...


__all__ = ["InstrumentState", "MachineError", "RunState", "StepState", "RUN_FINAL", "STEP_FINAL"]
