"""Driver conformance suite: :func:`run_conformance` and a pytest plugin
(``pytest -p drivers.testing.plugin --driver NAME [--driver-mode MODE]``)."""

from drivers.testing.conformance import run_conformance
from drivers.testing.report import Check, ConformanceReport

__all__ = ["Check", "ConformanceReport", "run_conformance"]
