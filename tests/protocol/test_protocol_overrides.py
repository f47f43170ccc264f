"""Parameter overrides from the command line: coercion, bounds, unknown names."""

from __future__ import annotations

from pathlib import Path

import pytest
from protocol_helpers import BUNDLED, HEADER, errors_of, write

from orchestrator.protocol import load_protocol

IPSC = BUNDLED / "ipsc-maintenance.yaml"


def test_overrides_are_coerced_to_the_declared_type() -> None:
    graph = load_protocol(IPSC, {"days": "14", "passage_at": "0.8", "medium": "StemFlex"})
    assert graph.parameters["days"] == 14 and graph.parameters["passage_at"] == 0.8
    day = next(n for n in graph.steps if n.key == "day")
    assert day.times == 14  # type: ignore[union-attr]
    feed = next(n for n in graph.walk() if n.key == "day.feed")
    assert feed.args["medium"] == "StemFlex"  # type: ignore[union-attr]
    assert feed.when is not None and feed.when.evaluate({"confluence": 0.79}) is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"days": "abc"}, "-p days=abc: expected a whole number, got 'abc' (parameter 'days': int, declared at"),
        ({"days": "99"}, "-p days=99: 99 is above the maximum 60"),
        ({"days": "0"}, "-p days=0: 0 is below the minimum 1"),
        ({"passage_at": "nan"}, "-p passage_at=nan: expected a number"),
        ({"medium": "DMEM"}, "-p medium=DMEM: 'DMEM' is not one of the allowed choices"),
        ({"foo": "1"}, "-p foo=1: unknown parameter 'foo'; parameters: "),
        ({"dayz": "3"}, "-p dayz=3: unknown parameter 'dayz'; did you mean days?"),
    ],
)
def test_bad_overrides_are_located_on_the_command_line(overrides: dict[str, str], message: str) -> None:
    (error,) = errors_of(IPSC, overrides)
    assert str(error.location) == "<command line>:1:1"
    assert message in error.message


def test_all_bad_overrides_are_reported_together() -> None:
    errors = errors_of(IPSC, {"days": "abc", "foo": "1", "passage_at": "5"})
    assert [e.message.split(":")[0] for e in errors] == ["-p days=abc", "-p foo=1", "-p passage_at=5"]


def test_declared_at_points_at_the_parameter() -> None:
    (error,) = errors_of(IPSC, {"days": "x"})
    line = next(i for i, t in enumerate(IPSC.read_text().splitlines(), 1) if t.startswith("  days:"))
    assert f"ipsc-maintenance.yaml:{line + 1}:5)" in error.message  # the block mapping under days:


def test_duration_and_bool_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        HEADER
        + """parameters:
  every: {type: duration, default: 24h, min: 1h, max: 2d}
  flag: {type: bool, default: false}
  lot: {type: str}
steps:
  - id: loop
    repeat: {every: "${every}", times: 2}
    steps:
      - {id: w, wait: "${every / 10}", when: flag}
""",
    )
    graph = load_protocol(path, {"every": "1h30m", "flag": "yes", "lot": "L-042"})
    assert graph.parameters == {"every": 5400.0, "flag": True, "lot": "L-042"}
    loop = graph.steps[0]
    assert loop.every_s == 5400.0 and loop.steps[0].seconds == 540.0  # type: ignore[union-attr]
    (error,) = errors_of(path, {"every": "3d", "lot": "x"})
    assert "-p every=3d: 3d is above the maximum 2d" in error.message
    (error,) = errors_of(path, {"flag": "maybe", "lot": "x"})
    assert "-p flag=maybe: expected true or false" in error.message


def test_required_parameter_without_value(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", HEADER + "parameters:\n  lot: {type: str}\nsteps:\n  - {id: w, wait: 1s}\n")
    (error,) = errors_of(path)
    assert (error.location.line, error.location.col) == (5, 8)
    assert "no default and no value given; pass -p lot=<str>" in error.message
    assert load_protocol(path, {"lot": "A1"}).parameters["lot"] == "A1"


def test_typed_values_from_code_are_accepted() -> None:
    assert load_protocol(IPSC, {"days": 3}).parameters["days"] == 3
    (error,) = errors_of(IPSC, {"days": 2.5})
    assert "expected a whole number, got 2.5" in error.message


def test_expression_columns_in_accept_point_into_the_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        HEADER
        + """labware:
  plate: {model: corning_6_wellplate}
steps:
  - id: count
    do: cell_counter.count
    with: {plate: plate}
    accept: {viability: ">= ${min_viabilty}"}
""",
    )
    (error,) = errors_of(path)
    assert (error.location.line, error.location.col) == (10, 31)  # the m of min_viabilty
    assert "unknown name 'min_viabilty'" in error.message
