"""Compiling against a workcell: instrument names and classes that must be present."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from protocol_helpers import BUNDLED, HEADER, errors_of, write

from orchestrator.protocol import WorkcellView, load_protocol
from orchestrator.protocol.graph import ActionNode


class Cell:
    def __init__(self, instruments: Mapping[str, str]) -> None:
        self.instruments = dict(instruments)

    def instrument_classes(self) -> Mapping[str, str]:
        return self.instruments


FULL = Cell(
    {
        "lh1": "liquid_handler",
        "inc1": "incubator",
        "img1": "imager",
        "cc1": "cell_counter",
        "pr1": "plate_reader",
        "arm": "plate_mover",
    }
)


def test_workcell_view_is_a_protocol() -> None:
    assert isinstance(FULL, WorkcellView)


def test_instrument_names_set_the_instrument(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        HEADER
        + """labware:
  plate: {model: corning_6_wellplate}
steps:
  - {id: a, do: lh1.exchange_medium, with: {plate: plate, volume_ul: 1000}}
  - {id: b, do: imager.confluence, with: {plate: plate}}
""",
    )
    a, b = load_protocol(path, workcell=FULL).steps
    assert isinstance(a, ActionNode) and (a.instrument_class, a.instrument, a.action) == (
        "liquid_handler",
        "lh1",
        "exchange_medium",
    )
    assert isinstance(b, ActionNode) and b.instrument is None
    (error,) = errors_of(path)  # without a workcell, lh1 is not an instrument class
    assert (error.location.line, error.location.col) == (7, 17) and "no instrument class 'lh1'" in error.message


def test_classes_missing_from_the_workcell(tmp_path: Path) -> None:
    small = Cell({"lh1": "liquid_handler", "img": "imager"})
    errors = errors_of(BUNDLED / "qc-panel.yaml", workcell=small)
    messages = [e.message for e in errors]
    assert any("the workcell has no incubator; instruments: img (imager), lh1 (liquid_handler)" in m for m in messages)
    assert any("the workcell has no cell_counter" in m for m in messages)
    assert any("the workcell has no plate_reader" in m for m in messages)
    path = write(tmp_path, "p.yaml", HEADER + "steps:\n  - {id: a, do: lh2.seed}\n")
    (error,) = errors_of(path, workcell=small)
    assert "no instrument class or workcell instrument 'lh2'; did you mean lh1?" in error.message


def test_bundled_protocols_compile_against_a_full_workcell() -> None:
    for path in BUNDLED.glob("*.yaml"):
        assert load_protocol(path, workcell=FULL).steps
