"""Fault injection for the crash tests (unset in normal use)."""

from __future__ import annotations

import os

_CRASH_COUNTS: dict[str, int] = {}


def crash_point(when: str, kind: str, subject: str | None) -> None:
    """Fault injection for crash tests: ``CELLWRIGHT_CRASH_AFTER=step.running:3`` kills the
    process (exit 137, like kill -9) right after the 3rd ``step.running`` event is durable
    (committed, or written to the redo log);
    ``CELLWRIGHT_CRASH_BEFORE=measurement:2`` kills it inside the 2nd ``measurement``
    write, before its commit; ``step.running@feed:1`` counts only events whose subject
    contains ``feed``. Unset in normal use."""
    spec = os.environ.get(f"CELLWRIGHT_CRASH_{when.upper()}")
    if not spec:
        return
    target, _, count = spec.rpartition(":")
    target, _, contains = target.partition("@")
    if target != kind or (contains and contains not in (subject or "")):
        return
    key = f"{when}:{kind}"
    _CRASH_COUNTS[key] = _CRASH_COUNTS.get(key, 0) + 1
    if _CRASH_COUNTS[key] == int(count):
        os._exit(137)
