"""Located protocol errors and the collector every validation pass reports into."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.protocol.graph import Location

COMMAND_LINE = Location("<command line>", 1, 1)
"""Where problems with ``-p name=value`` overrides are reported."""


@dataclass(frozen=True)
class ProtocolError:
    """One problem in a protocol: where it is and what is wrong.

    ``str()`` gives ``path:line:col: message``, the form editors and CI understand.
    """

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class ProtocolErrors(Exception):
    """Every problem found while loading a protocol (never just the first).

    Attributes:
        errors: the problems, in file order per file, duplicates removed.
    """

    def __init__(self, errors: Iterable[ProtocolError]) -> None:
        self.errors: list[ProtocolError] = list(dict.fromkeys(errors))
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class ErrorSink:
    """Collects errors; passes keep going after reporting one."""

    def __init__(self) -> None:
        self.errors: list[ProtocolError] = []

    def add(self, location: Location, message: str) -> None:
        """Record a problem at ``location``."""
        self.errors.append(ProtocolError(location, message))

    def __len__(self) -> int:
        return len(self.errors)

    def raise_if_any(self) -> None:
        """Raise the collected errors, grouped by file, in line order.

        Raises:
            ProtocolErrors: when anything was reported.
        """
        if self.errors:
            files = {e.location.path: i for i, e in reversed(list(enumerate(self.errors)))}
            files[COMMAND_LINE.path] = -1
            order = sorted(self.errors, key=lambda e: (files[e.location.path], e.location.line, e.location.col))
            raise ProtocolErrors(order)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest of ``choices``, or ``""``."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else ""


def one_of(choices: Iterable[str]) -> str:
    """``a, b or c`` for messages."""
    items = sorted(choices)
    if not items:
        return "(none)"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]
