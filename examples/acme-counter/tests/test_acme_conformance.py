"""The conformance suite against the Acme driver, as simulator and on its emulator.

Runs whether or not the package is installed (the spec is passed directly); when it
is installed, ``pytest -p drivers.testing.plugin --driver acme.counter`` does the same.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import acme_counter  # noqa: E402
from drivers.testing import run_conformance  # noqa: E402


@pytest.mark.parametrize("mode", ["simulator", "emulator"])
def test_conformance(mode: str) -> None:
    report = run_conformance("acme.counter", mode, {"measure_s": 45}, spec=acme_counter.SPEC)
    assert report.ok, report.summary()
    assert {c.name for c in report.checks if c.status == "pass"} >= {"connect", "main_action", "disconnect"}


def test_registered_when_installed() -> None:
    from drivers.spec import registry

    registry.cache_clear()
    if "acme.counter" not in registry():
        pytest.skip("acme-counter is not pip-installed")
    assert registry()["acme.counter"].config_model is acme_counter.AcmeConfig
