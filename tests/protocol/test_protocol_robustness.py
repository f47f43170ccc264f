"""Whatever a file holds, loading it returns a graph or raises ProtocolErrors — never crashes."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_helpers import HERE

from orchestrator.protocol import ProtocolErrors, load_protocol

STEP_KEYS = [
    "id",
    "do",
    "with",
    "save",
    "accept",
    "on_reject",
    "on_error",
    "timeout",
    "wait",
    "include",
    "repeat",
    "steps",
    "when",
    "after",
    "start_within",
    "every",
    "times",
    "until",
    "retry",
    "plate",
    "volume_ul",
]
WORDS = [
    "plate",
    "image",
    "imager.confluence",
    "liquid_handler.seed",
    "cell_counter.count",
    "1h",
    "24h",
    "x",
    "${days}",
    "${conf.mean}",
    "conf >= 0.5",
    ">= 0.9",
    "hold",
    "operator",
    "passage.yaml",
    "conf",
    "__import__",
    "iteration > 1",
    "${",
    "timeout",
    "default",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 100),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(WORDS),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(STEP_KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)
steps = st.lists(st.dictionaries(st.sampled_from(STEP_KEYS), values, max_size=6), max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps, params=st.dictionaries(st.sampled_from(["days", "conf", "x"]), values, max_size=2))
def test_random_documents_never_crash(steps: list[dict[str, Any]], params: dict[str, Any]) -> None:
    doc = {
        "protocol": "fuzz",
        "version": "1.0.0",
        "title": "fuzz",
        "parameters": params,
        "labware": {"plate": {"model": "corning_6_wellplate"}},
        "steps": steps,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text(json.dumps(doc))  # JSON is YAML
        try:
            load_protocol(path)
        except ProtocolErrors as exc:
            assert all(e.location.line >= 1 and e.location.col >= 1 and e.message for e in exc.errors)


def test_reference_example_loads(tmp_path: Path) -> None:
    text = (HERE.parents[1] / "docs" / "protocol-reference.md").read_text()
    match = re.search(r"```yaml\n(.*?)```", text, re.DOTALL)
    assert match is not None
    path = tmp_path / "example.yaml"
    path.write_text(match.group(1))
    keys = [n.key for n in load_protocol(path).walk()]
    assert keys[:3] == ["seed", "day", "day.image"] and "day.passage.reseed" in keys


@settings(max_examples=100, deadline=None)
@given(text=st.lists(st.sampled_from([*"ab:- {}[],'\"#&*!|>\n\t0.9${}_%@`", "id", "steps"]), max_size=40).map("".join))
def test_random_text_never_crashes(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.yaml"
        path.write_text(text)
        try:
            load_protocol(path)
        except ProtocolErrors as exc:
            assert exc.errors and all(e.location.line >= 1 for e in exc.errors)
