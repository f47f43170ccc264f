"""Workcell and campaign files report problems as ``path:line:col: message``, like protocols."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.errors import ConfigurationError
from orchestrator.campaign import load_campaign
from orchestrator.workcell import load_workcell

INCUBATOR = "  inc: {class: incubator, driver: sim.incubator}\n"


def _error_lines(load, path: Path) -> list[str]:
    with pytest.raises(ConfigurationError) as info:
        load(path)
    return str(info.value).splitlines()


def test_workcell_unknown_key_and_wrong_type_are_located(tmp_path):
    wc = tmp_path / "wc.yaml"
    wc.write_text("workcell: x\nlimits: {plates_out: many}\ninstruments:\n" + INCUBATOR
                  + "  lh: {class: liquid_handler, driver: sim.liquid_handler, nest: 2}\n")
    lines = _error_lines(load_workcell, wc)
    assert lines == [
        f"{wc}:2:22: limits.plates_out: expected a whole number, got 'many'",
        f"{wc}:5:59: instruments.lh.nest: unknown key 'nest'; did you mean nests?",
    ]


def test_workcell_missing_file_and_yaml_syntax(tmp_path):
    missing = tmp_path / "missing.yaml"
    [line] = _error_lines(load_workcell, missing)
    assert line.startswith(f"{missing}:1:1: cannot read")
    broken = tmp_path / "broken.yaml"
    broken.write_text("workcell: x\ninstruments:\n  inc: {class: incubator\n")
    [line] = _error_lines(load_workcell, broken)
    assert line.startswith(f"{broken}:4:1: YAML syntax error:")


def test_campaign_errors_are_located(tmp_path):
    campaign = tmp_path / "c.yaml"
    campaign.write_text("campaign: c\nruns:\n  - protocol: ipsc-maintenance\n    plate: 2\n    stagger: soon\n")
    lines = _error_lines(load_campaign, campaign)
    assert lines == [
        f"{campaign}:4:5: runs.0.plate: unknown key 'plate'; did you mean plates?",
        f"{campaign}:5:14: runs.0.stagger: expected a duration like 90s, 30m, 24h, 1h30m, 2d or a number of seconds, "
        "got 'soon'",
    ]
    campaign.write_text("campaign: c\nruns:\n  - protocol: no-such-protocol.yaml\n")
    [line] = _error_lines(load_campaign, campaign)
    assert line.startswith(f"{campaign}:3:15: no protocol file 'no-such-protocol.yaml'")
