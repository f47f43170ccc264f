"""The JSON schema of protocol files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from protocol_helpers import BUNDLED

from orchestrator.protocol import protocol_json_schema
from orchestrator.protocol.errors import ErrorSink
from orchestrator.protocol.source import read_source


def test_schema_is_json_and_mentions_step_keys() -> None:
    schema = json.loads(json.dumps(protocol_json_schema()))
    step = schema["$defs"]["Step"]
    assert {
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
    } <= set(step["properties"])
    assert step["additionalProperties"] is False
    assert all(p.get("description") for p in step["properties"].values())
    assert set(schema["required"]) == {"protocol", "version", "title", "steps"}
    assert {"every", "window", "times", "until", "max_times"} <= set(schema["$defs"]["RepeatSpec"]["properties"])


@pytest.mark.parametrize("path", sorted(BUNDLED.glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_protocols_validate_against_the_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    src = read_source(path, str(path), ErrorSink())
    assert src is not None
    jsonschema.Draft202012Validator(protocol_json_schema()).validate(src.data)


def test_schema_rejects_unknown_step_keys() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = {"protocol": "x", "version": "1.0.0", "title": "x", "steps": [{"id": "a", "wait": "1m", "colour": 1}]}
    with pytest.raises(jsonschema.ValidationError, match="colour"):
        jsonschema.Draft202012Validator(protocol_json_schema()).validate(doc)
