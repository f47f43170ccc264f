"""Fixtures of the driver tests: plates, a virtual-clock runner, tracking switches reset."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from drivers.clock import Clock, VirtualClock
from drivers.labware import Plate, labware_model

T = TypeVar("T")


@pytest.fixture
def plate() -> Plate:
    return Plate("P1", labware_model("corning_6_wellplate"), cell_line="201B7", cell_type="ipsc")


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def run() -> Callable[[Clock, Callable[[], Coroutine[Any, Any, T]]], T]:
    """``run(clock, async_fn)``: run ``async_fn()`` on the clock's own loop."""

    def runner(clock: Clock, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return clock.run(fn)

    return runner


@pytest.fixture(autouse=True)
def _tracking_reset() -> Iterator[None]:
    """pylabrobot's tracking switches are process-global: leave them as found."""
    try:
        from pylabrobot.resources import does_tip_tracking, does_volume_tracking, set_tip_tracking, set_volume_tracking
    except ImportError:  # pragma: no cover
        yield
        return
    before = (does_volume_tracking(), does_tip_tracking())
    yield
    set_volume_tracking(before[0])
    set_tip_tracking(before[1])
