"""Shared helpers for protocol tests: load a file expecting errors, read ERROR markers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.protocol import ProtocolError, ProtocolErrors, load_protocol

HERE = Path(__file__).parent
BAD = HERE / "bad"
BUNDLED = HERE.parents[1] / "protocols"
_MARKER = re.compile(r"# ERROR@(\d+): (.*?)(?=\s+# ERROR@|$)")


def errors_of(
    path: str | Path, overrides: Mapping[str, Any] | None = None, workcell: Any = None
) -> list[ProtocolError]:
    """The errors loading ``path`` raises (fails the test when it loads clean)."""
    with pytest.raises(ProtocolErrors) as info:
        load_protocol(path, overrides, workcell)
    assert info.value.errors, "ProtocolErrors raised without errors"
    return info.value.errors


def markers(path: Path) -> list[tuple[int, int, str]]:
    """``(line, col, text)`` of every ``# ERROR@col: text`` comment in a file."""
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        for m in _MARKER.finditer(line):
            out.append((lineno, int(m.group(1)), m.group(2).strip()))
    return out


def write(tmp: Path, name: str, text: str) -> Path:
    """Write a protocol file into ``tmp`` and return its path."""
    path = tmp / name
    path.write_text(text)
    return path


HEADER = """protocol: t
version: 1.0.0
title: test
"""
