"""Duration parsing: unit strings, plain numbers and what is refused."""

from __future__ import annotations

import pytest

from orchestrator.protocol import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("30m", 1800),
        ("24h", 86400),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1.5h", 5400),
        ("2d12h", 216000),
        (" 10m ", 600),
        ("45", 45),
        (45, 45),
        (2.5, 2.5),
        (0, 0),
        ("0s", 0),
        ("1h 30m", 5400),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "10q", "h", "30m1h", "1h1h", "-5m", -1, True, "ten minutes", float("nan"), None])
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match="duration|largest first"):
        parse_duration(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("seconds", "text"), [(5400, "1h30m"), (45, "45s"), (86400, "1d"), (0, "0s"), (1.5, "1.5s")])
def test_format_duration_round_trips(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(format_duration(seconds)) == seconds
