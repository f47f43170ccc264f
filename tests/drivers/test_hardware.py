"""Against real instruments; skipped unless ``--hardware``. Ports and hosts come from the environment:

* ``CELLWRIGHT_CYTOMAT_PORT`` — serial device of a Cytomat (C6000 family);
* ``CELLWRIGHT_CC1_URL`` — pyserial URL of a CC-1 counter;
* ``CELLWRIGHT_OT2_HOST`` — address of an OT-2.
"""

from __future__ import annotations

import os

import pytest

from drivers.testing import run_conformance

pytestmark = pytest.mark.hardware


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"set {name}")
    return value


def test_cytomat_conforms():
    report = run_conformance("plr.cytomat", "real", {"port": _env("CELLWRIGHT_CYTOMAT_PORT")})
    assert report.ok, report.summary()


def test_cc1_counter_conforms():
    report = run_conformance("serial.cc1_counter", "real", {"url": _env("CELLWRIGHT_CC1_URL")})
    assert report.ok, report.summary()


def test_ot2_health_and_preflighted_run():
    from pathlib import Path

    report = run_conformance("opentrons.ot2", "real", {
        "host": _env("CELLWRIGHT_OT2_HOST"), "protocol_dirs": [str(Path(__file__).parent / "data")]})
    assert report.ok, report.summary()
