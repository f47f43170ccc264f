"""Suite-wide settings: hardware tests are skipped unless --hardware is given; opentrons
writes its config under a temporary directory, never into the home directory."""

from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("OT_API_CONFIG_DIR", tempfile.mkdtemp(prefix="cellwright-ot-"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true", default=False, help="run tests that need real instruments")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware"):
        return
    skip = pytest.mark.skip(reason="needs real hardware (use --hardware)")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)
