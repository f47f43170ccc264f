"""The located YAML loader."""

from __future__ import annotations

from pathlib import Path

from protocol_helpers import HEADER, errors_of, write

from orchestrator.protocol.errors import ErrorSink, ProtocolErrors
from orchestrator.protocol.source import read_source


def load(tmp: Path, text: str) -> tuple[object, ErrorSink]:
    sink = ErrorSink()
    path = write(tmp, "f.yaml", text)
    return read_source(path, "f.yaml", sink), sink


def test_every_key_and_value_is_located(tmp_path: Path) -> None:
    src, sink = load(tmp_path, "a: 1\nb:\n  - {c: 'x y', d: 2.5e3}\n  - ~\n")
    assert not sink.errors
    assert src.data == {"a": 1, "b": [{"c": "x y", "d": 2500.0}, None]}  # type: ignore[attr-defined]
    assert str(src.loc(("b", 0, "d"))) == "f.yaml:3:19"  # type: ignore[attr-defined]
    assert str(src.loc(("b", 0, "d"), key=True)) == "f.yaml:3:16"  # type: ignore[attr-defined]
    assert str(src.loc(("b", 1))) == "f.yaml:4:5"  # type: ignore[attr-defined]
    assert str(src.at(("b", 0, "c"), 2)) == "f.yaml:3:12"  # type: ignore[attr-defined]  # inside the quotes
    assert str(src.loc(("b", 0, "missing"))) == "f.yaml:3:5"  # type: ignore[attr-defined]


def test_yaml_12_scalars(tmp_path: Path) -> None:
    src, _ = load(tmp_path, "v: 1.0.0\nd: 24h\nb: yes\nt: true\ni: 0x1f\nz: 007\nn: 1_000\ns: !!str 5\n")
    assert src.data == {
        "v": "1.0.0",
        "d": "24h",
        "b": "yes",
        "t": True,
        "i": 31,
        "z": 7,
        "n": 1000,  # type: ignore[attr-defined]
        "s": "5",
    }


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    _, sink = load(tmp_path, "a: 1\nb: {x: 1, x: 2}\na: 3\n")
    assert [str(e) for e in sink.errors] == [
        "f.yaml:2:11: duplicate key 'x' (first at line 2:5)",
        "f.yaml:3:1: duplicate key 'a' (first at line 1:1)",
    ]


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    (error,) = errors_of(write(tmp_path, "empty.yaml", "# nothing\n"))
    assert error.location.line == 1 and "empty file" in error.message
    (error,) = errors_of(write(tmp_path, "list.yaml", "- a\n- b\n"))
    assert "expected a mapping with protocol" in error.message
    (error,) = errors_of(write(tmp_path, "nosteps.yaml", HEADER + "steps: []\n"))
    assert (error.location.line, "at least one step" in error.message) == (4, True)
    (error,) = errors_of(tmp_path / "absent.yaml")
    assert "cannot read" in error.message


def test_protocol_errors_print_one_per_line(tmp_path: Path) -> None:
    errors = errors_of(write(tmp_path, "p.yaml", "protocol: X\nversion: one\ntitle: t\nsteps: [{id: a, wait: 1s}]\n"))
    text = str(ProtocolErrors(errors))
    assert text.splitlines()[0].startswith(str(tmp_path / "p.yaml") + ":1:11: protocol:")
    assert len(text.splitlines()) == 2 and ":2:10: version: expected a semantic version" in text
