"""Every deliberately malformed protocol in bad/ reports exactly the marked problems.

Each offending line carries ``# ERROR@<col>: <text>``: an error must be reported at
that line and column whose message contains the text, and no error may be reported on
a line without a marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from protocol_helpers import BAD, errors_of, markers

MARKED = sorted(p for p in BAD.glob("*.yaml") if markers(p))


@pytest.mark.parametrize("path", MARKED, ids=lambda p: p.name)
def test_marked_errors_are_reported_at_their_line_and_column(path: Path) -> None:
    errors = errors_of(path)
    here = [e for e in errors if Path(e.location.path).resolve() == path.resolve()]
    for line, col, text in markers(path):
        hits = [e for e in here if (e.location.line, e.location.col) == (line, col) and text in e.message]
        assert hits, f"no error at {path.name}:{line}:{col} containing {text!r}; got:\n" + "\n".join(map(str, errors))
    marked_lines = {line for line, _, _ in markers(path)}
    unexpected = [str(e) for e in here if e.location.line not in marked_lines]
    assert not unexpected, "unexpected errors:\n" + "\n".join(unexpected)


def test_every_error_kind_has_a_bad_file() -> None:
    names = {p.stem for p in BAD.glob("*.yaml")}
    assert {
        "unknown_keys",
        "wrong_types",
        "parameters",
        "actions",
        "expressions",
        "injection",
        "references",
        "results",
        "kinds",
        "duplicates",
        "syntax",
        "missing_include",
        "cycle_a",
        "cycle_b",
        "many",
    } <= names


def test_a_file_with_many_problems_reports_all_of_them() -> None:
    errors = errors_of(BAD / "many.yaml")
    assert len(errors) == len(markers(BAD / "many.yaml")) == 9
    assert [e.location.line for e in errors] == sorted(e.location.line for e in errors)


def test_yaml_syntax_error_is_located() -> None:
    (error,) = errors_of(BAD / "syntax.yaml")
    assert str(error).startswith(f"{BAD / 'syntax.yaml'}:7:7: YAML syntax error")


def test_circular_include_names_the_cycle() -> None:
    (error,) = errors_of(BAD / "cycle_a.yaml")
    assert Path(error.location.path).name == "cycle_b.yaml"
    assert (error.location.line, error.location.col) == (8, 14)
    assert "circular include" in error.message
    cycle = error.message.split("circular include: ")[1].split(" -> ")
    assert [Path(p).name for p in cycle] == ["cycle_a.yaml", "cycle_b.yaml", "cycle_a.yaml"]


def test_messages_have_the_path_line_col_form() -> None:
    for error in errors_of(BAD / "results.yaml"):
        path, line, col, message = str(error).split(":", 3)
        assert path.endswith("results.yaml") and int(line) > 0 and int(col) > 0 and message.strip()
