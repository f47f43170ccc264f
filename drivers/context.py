"""Which step a driver call belongs to, for drivers that want it.

The engine sets :data:`current_step` around every driver call to the call's
idempotency key (``run:step:attempt``). A driver may pass it to a device that
supports idempotent requests, or log it; simulators record it with every physical
effect so a test can prove a step never happened twice.
"""

from __future__ import annotations

from contextvars import ContextVar

current_step: ContextVar[str | None] = ContextVar("cellwright_current_step", default=None)
