"""Results of the conformance suite."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    """One check's outcome."""

    name: str
    status: Status
    message: str = ""


@dataclass
class ConformanceReport:
    """Outcome of :func:`run_conformance`.

    Attributes:
        driver: registry name; mode: ``simulator``, ``emulator`` or ``real``.
        instrument_class: the interface checked.
        checks: in run order.
    """

    driver: str
    mode: str
    instrument_class: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(c.status != "fail" for c in self.checks)

    def failed(self) -> list[Check]:
        """The failed checks."""
        return [c for c in self.checks if c.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"driver": self.driver, "mode": self.mode, "instrument_class": self.instrument_class, "ok": self.ok,
                "checks": [{"name": c.name, "status": c.status, "message": c.message} for c in self.checks]}

    def summary(self) -> str:
        """Human text, one line per check."""
        lines = [f"{self.driver} ({self.mode}, {self.instrument_class}): {'PASS' if self.ok else 'FAIL'}"]
        lines += [f"  {c.status:4}  {c.name}" + (f" — {c.message}" if c.message else "") for c in self.checks]
        return "\n".join(lines)
