"""Scriptable, seeded faults for the behavioural simulators.

A simulator's config takes a list of :class:`FaultSpec`; ``sim.inject(FaultSpec(...))``
arms one at run time. Each armed fault counts the calls of its action (those that
passed the state checks) from the moment it was armed:

* ``on_call: n`` — fires on the n-th such call, once;
* ``probability: p`` — fires on each call with probability ``p`` (seeded per call);
* neither — fires on the next such call, once.

``when: before`` fails the call before the physical effect (after ``delay_s`` simulated
seconds, e.g. the wait before a timeout); ``when: after`` lets the effect happen and
the call's full duration pass, then fails: the engine sees an error although the plate
moved or the medium was exchanged (the in-doubt case).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.errors import (
    ChannelError,
    ConnectionLost,
    DeviceFault,
    InstrumentError,
    InstrumentTimeout,
    WireProtocolError,
)

FaultKind = Literal["timeout", "device_fault", "connection", "protocol", "channel"]

ERROR_CLASSES: dict[str, type[InstrumentError]] = {
    "timeout": InstrumentTimeout,
    "device_fault": DeviceFault,
    "connection": ConnectionLost,
    "protocol": WireProtocolError,
    "channel": ChannelError,
}


class FaultSpec(BaseModel):
    """One scripted fault.

    Attributes:
        action: action name (``exchange_medium``) or ``*`` for any action.
        on_call: fire on the n-th matching call after arming (1-based), once.
        probability: fire on each matching call with this probability (0..1).
        kind: ``timeout``, ``device_fault``, ``connection``, ``protocol`` or ``channel``.
        code: error code (default: the error class's own, e.g. ``timeout``).
        recoverable: override the class default (device faults are not recoverable by default).
        detail: human text.
        when: ``before`` (no effect) or ``after`` (effect applied, then the error).
        delay_s: simulated seconds spent before a ``before`` fault is raised.
    """

    model_config = ConfigDict(extra="forbid")

    action: str = "*"
    on_call: int | None = Field(default=None, ge=1)
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    kind: FaultKind = "device_fault"
    code: str | None = None
    recoverable: bool | None = None
    detail: str = ""
    when: Literal["before", "after"] = "before"
    delay_s: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="after")
    def _one_trigger(self) -> FaultSpec:
        if self.on_call is not None and self.probability is not None:
            raise ValueError("give on_call or probability, not both")
        return self

    def error(self, device: str, action: str) -> InstrumentError:
        """The exception this fault raises on ``device`` during ``action``."""
        cls = ERROR_CLASSES[self.kind]
        detail = self.detail or f"simulated {self.kind.replace('_', ' ')} during {action} ({self.when} effect)"
        raw = b"\x15ERR?\r" if self.kind == "protocol" else None
        return cls(device, detail, code=self.code, recoverable=self.recoverable, raw=raw)

    @property
    def is_recoverable(self) -> bool:
        """Whether the raised error is recoverable (explicit value or the class default)."""
        if self.recoverable is not None:
            return self.recoverable
        return ERROR_CLASSES[self.kind].default_recoverable


@dataclass
class _Armed:
    spec: FaultSpec
    index: int
    seen: int = 0
    spent: bool = False


class FaultPlan:
    """The faults armed on one simulator.

    Args:
        device: instrument name (part of the RNG seed).
        faults: faults from the config, armed at creation.
        seed: workcell seed.
    """

    def __init__(self, device: str, faults: list[FaultSpec] | None = None, seed: int = 0) -> None:
        self.device = device
        self.seed = seed
        self._armed: list[_Armed] = []
        self.fired: list[tuple[str, FaultSpec]] = []
        for spec in faults or []:
            self.inject(spec)

    def inject(self, spec: FaultSpec) -> None:
        """Arm ``spec``; its ``on_call`` counts from now."""
        self._armed.append(_Armed(spec, index=len(self._armed)))

    def clear(self) -> None:
        """Disarm every fault."""
        self._armed.clear()

    def draw(self, action: str) -> FaultSpec | None:
        """Count one call of ``action`` and return the fault to raise, if any (first armed wins)."""
        hit: FaultSpec | None = None
        for armed in self._armed:
            spec = armed.spec
            if armed.spent or spec.action not in ("*", action):
                continue
            armed.seen += 1
            if spec.probability is not None:
                rng = random.Random(f"{self.seed}:{self.device}:fault:{armed.index}:{action}:{armed.seen}")
                fires = rng.random() < spec.probability
            else:
                fires = armed.seen == (spec.on_call or 1)
                armed.spent = fires
            if fires and hit is None:
                hit = spec
        if hit is not None:
            self.fired.append((action, hit))
        return hit
