"""Durations: ``90s``, ``30m``, ``24h``, ``1h30m``, ``2d``; plain numbers are seconds."""

from __future__ import annotations

import math
import re

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([dhms])")
_WHOLE = re.compile(r"(?:(?:\d+(?:\.\d+)?|\.\d+)\s*[dhms]\s*)+")

DURATION_HINT = "a duration like 90s, 30m, 24h, 1h30m, 2d or a number of seconds"


def parse_duration(value: str | float) -> float:
    """Seconds in a duration.

    Units ``d``, ``h``, ``m``, ``s`` may be combined largest first (``1h30m``) and may
    be fractional (``1.5h``); a number (or a numeric string) is seconds.

    Raises:
        ValueError: for anything else, including negative, infinite or NaN values and
            booleans; the message says what was expected.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HINT}, got {value!r}")  # noqa: TRY004 - one error type for callers
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            seconds = float(text)
        except ValueError:
            if not _WHOLE.fullmatch(text):
                raise ValueError(f"expected {DURATION_HINT}, got {value!r}") from None
            parts = [(float(n), u) for n, u in _PART.findall(text)]
            order = [list(_UNITS).index(u) for _, u in parts]
            if order != sorted(set(order)):
                raise ValueError(f"units in {value!r} must be written once each, largest first (1h30m)") from None
            seconds = sum(n * _UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"expected {DURATION_HINT}, got {type(value).__name__}")  # noqa: TRY004
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"expected a finite duration >= 0, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """Compact form of ``seconds`` (``1h30m``, ``45s``) for messages."""
    if seconds != int(seconds) or seconds == 0:
        return f"{seconds:g}s"
    rest, out = int(seconds), ""
    for unit, size in _UNITS.items():
        n, rest = divmod(rest, int(size))
        if n:
            out += f"{n}{unit}"
    return out
