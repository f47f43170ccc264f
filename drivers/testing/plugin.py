"""pytest plugin running the conformance suite against installed drivers.

Usage::

    pytest -p drivers.testing.plugin --driver acme.counter [--driver-mode simulator|emulator|real]
           [--driver-config '{"port": "/dev/ttyUSB0"}'] [path ...]

Every check of :func:`drivers.testing.run_conformance` becomes one test item
(``conformance[<driver>-<mode>]::<check>``); a failed check fails its item, a skipped
one is reported as skipped. ``--driver`` may be given several times. Without it the
plugin adds nothing. Real mode talks to hardware: its items carry the ``hardware``
marker.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from drivers.testing.conformance import run_conformance
from drivers.testing.report import Check, ConformanceReport


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cellwright-drivers", "cellwright driver conformance")
    group.addoption("--driver", action="append", default=[], metavar="NAME",
                    help="run the conformance suite against this registered driver (repeatable)")
    group.addoption("--driver-mode", default="simulator", choices=("simulator", "emulator", "real"),
                    help="build the driver as simulator (default), emulator or real")
    group.addoption("--driver-config", default="", metavar="JSON",
                    help="the driver's config mapping as JSON")


class ConformanceItem(pytest.Item):
    """One check of one driver's report."""

    def __init__(self, *, report_key: tuple[str, str], check: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report_key = report_key
        self.check = check

    def runtest(self) -> None:
        report: ConformanceReport = self.config.stash[_REPORTS][self.report_key]
        found: Check | None = next((c for c in report.checks if c.name == self.check), None)
        if found is None:
            pytest.skip(f"{self.check} not run (an earlier check failed)")
        elif found.status == "skip":
            pytest.skip(found.message)
        elif found.status == "fail":
            raise ConformanceFailure(found.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            return f"conformance check {self.check!r} failed: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "conformance", None, f"{self.name}"


class ConformanceFailure(AssertionError):
    """A conformance check failed (the message is the check's)."""


_REPORTS = pytest.StashKey[dict[tuple[str, str], ConformanceReport]]()
CHECKS = ("spec", "actions", "before_connect", "connect", "identify", "status", "main_action", "absent_plate",
          "timeout", "wire_fault", "error_reset", "disconnect")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    drivers: list[str] = config.getoption("--driver")
    if not drivers:
        return
    mode: str = config.getoption("--driver-mode")
    raw = config.getoption("--driver-config")
    driver_config = json.loads(raw) if raw else None
    reports = config.stash.setdefault(_REPORTS, {})
    for name in drivers:
        key = (name, mode)
        reports[key] = run_conformance(name, mode, driver_config)
        for check in CHECKS:
            item = ConformanceItem.from_parent(session, name=f"conformance[{name}-{mode}]::{check}",
                                               report_key=key, check=check)
            if mode == "real":
                item.add_marker(pytest.mark.hardware)
            items.append(item)
