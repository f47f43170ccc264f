"""The document model of a protocol file (pydantic v2, unknown keys forbidden).

These models check structure and scalar types; meaning (actions, names, expressions,
includes) is checked by :mod:`orchestrator.protocol.compiler`. The same models give
the JSON schema editors use for completion (:func:`protocol_json_schema`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from orchestrator.protocol.durations import DURATION_HINT, parse_duration

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
SEMVER_PATTERN = r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
STEP_ID_PATTERN = r"^[a-z0-9_]+$"
IDENT_PATTERN = r"^[a-z_][a-z0-9_]*$"

PATTERN_HINTS = {
    NAME_PATTERN: "a name of lowercase letters, digits and '-' (ipsc-maintenance)",
    SEMVER_PATTERN: "a semantic version like 1.0.0 (quote it if YAML reads it as a number)",
    STEP_ID_PATTERN: "an id of lowercase letters, digits and '_' (exchange_medium)",
    IDENT_PATTERN: "a name of lowercase letters, digits and '_', not starting with a digit",
}


def _has_expr(value: object) -> bool:
    return isinstance(value, str) and "${" in value


def _duration(value: Any) -> Any:
    if _has_expr(value):
        return value
    try:
        parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None
    return value


def duration_seconds(value: Any) -> float | None:
    """Seconds in a duration, for ``mode="before"`` validators of workcell and campaign files.

    None stays None (an optional duration left out).

    Raises:
        PydanticCustomError: type ``duration``; the message says what was expected.
    """
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc)) from None


def _count(value: Any) -> Any:
    if _has_expr(value) or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise PydanticCustomError(
        "count", "expected a whole number >= 0 or a ${...} expression, got {v}", {"v": repr(value)}
    )


def _names(value: Any) -> Any:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise PydanticCustomError("names", "expected a step id or a list of step ids, got {v}", {"v": repr(value)})


def _comparison(value: Any) -> Any:
    if isinstance(value, str):
        return value
    raise PydanticCustomError(
        "comparison", "expected a comparison string like '>= 0.9' (operator and value), got {v}", {"v": repr(value)}
    )


Duration = Annotated[
    str | float,
    BeforeValidator(_duration),
    Field(description=f"{DURATION_HINT}; or a ${{...}} expression over parameters"),
]
Count = Annotated[int | str, BeforeValidator(_count)]
StepRefs = Annotated[str | list[str], BeforeValidator(_names)]
Comparison = Annotated[str, BeforeValidator(_comparison)]
Scalar = bool | int | float | str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ParameterSpec(_Model):
    """A protocol parameter, overridable with ``-p name=value``."""

    type: Literal["int", "float", "str", "bool", "duration"] = Field(description="value type")
    default: Scalar | None = Field(None, description="value when not overridden; no default = must be given")
    min: float | str | None = Field(None, description="lowest allowed value (a duration for type duration)")
    max: float | str | None = Field(None, description="highest allowed value (a duration for type duration)")
    choices: list[Scalar] | None = Field(None, description="the only allowed values")
    description: str | None = Field(None, description="what the parameter means, with its unit")


class LabwareSpec(_Model):
    """A plate the protocol works on."""

    model: str = Field(description="labware model, e.g. corning_6_wellplate")
    cells: str | None = Field(None, description="cell line, e.g. 201B7")
    cell_type: Literal["ipsc", "msc"] | None = Field(None, description="cell type (drives the culture model)")
    home: str = Field("incubator", description="site the plate returns to between steps")
    description: str | None = None


class RepeatSpec(_Model):
    """How often a block repeats. Iteration k ideally starts at first_start + k*every."""

    every: Duration | None = Field(None, description="period between iteration starts (24h)")
    window: Duration | None = Field(None, description="allowed deviation either side of the ideal start (1h)")
    times: Count | None = Field(None, description="number of iterations (int or ${parameter})")
    until: str | None = Field(None, description="stop once this condition is true after an iteration")
    max_times: Count | None = Field(None, description="upper bound on iterations with until (default 1000)")


class StartWithin(_Model):
    """Time lag: min <= start(this step) - end(after) <= max."""

    after: str = Field(description="id of an earlier step")
    min: Duration | None = Field(None, description="shortest allowed lag (default 0s)")
    max: Duration | None = Field(None, description="longest allowed lag (default unbounded)")


class RetrySpec(_Model):
    """Retry an action ``retry`` times, waiting ``backoff`` x 2^n; then apply ``then``."""

    retry: int = Field(ge=0, description="number of retries")
    backoff: Duration | None = Field(None, description="first wait between retries (default 30s)")
    then: Literal["skip", "operator", "fail"] = Field("fail", description="what to do when retries run out")


def _policy_kind(value: Any) -> str:
    return "rule" if isinstance(value, dict) else "policy"


Recovery = Annotated[
    Annotated[Literal["retry", "skip", "operator", "fail"], Tag("policy")] | Annotated[RetrySpec, Tag("rule")],
    Discriminator(_policy_kind),
]


class Step(_Model):
    """One step: exactly one of do, wait, ask, include, or steps (with optional repeat)."""

    id: str = Field(pattern=STEP_ID_PATTERN, description="unique among its siblings; [a-z0-9_]")
    description: str | None = Field(None, description="free text for people")
    do: str | None = Field(None, description="action: instrument_class.action (liquid_handler.seed)")
    with_: dict[str, Any] | None = Field(
        None, alias="with", description="action arguments, or labware bindings and parameters of an include"
    )
    save: str | None = Field(None, pattern=IDENT_PATTERN, description="bind the result's primary value to this name")
    accept: dict[str, Comparison] | None = Field(
        None, description="QC criteria on result fields: {viability: '>= 0.90'}"
    )
    on_reject: Literal["continue", "hold", "fail"] | None = Field(
        None, description="what a failed acceptance criterion does (default hold)"
    )
    on_error: dict[str, Recovery] | None = Field(
        None, description="recovery per error kind (timeout, device_fault, ..., default)"
    )
    timeout: Duration | None = Field(None, description="time limit for the instrument call")
    wait: Duration | None = Field(None, description="pause for this long (a wait step)")
    ask: str | None = Field(None, min_length=1,
                            description="a task for a person; the run pauses until `cellwright confirm` says done")
    include: str | None = Field(None, description="another protocol file, inlined here")
    repeat: RepeatSpec | None = Field(None, description="repeat the nested steps")
    steps: list[Step] | None = Field(None, description="nested steps (a group, or the body of a repeat)")
    when: str | None = Field(None, description="condition; the step is skipped when false")
    after: StepRefs | None = Field(None, description="earlier step id(s) this step starts after")
    start_within: StartWithin | None = Field(None, description="time lag to an earlier step")


class ProtocolDocument(_Model):
    """A cellwright protocol file."""

    model_config = ConfigDict(title="cellwright protocol")

    protocol: str = Field(pattern=NAME_PATTERN, description="protocol name, [a-z0-9-]")
    version: str = Field(pattern=SEMVER_PATTERN, description="semantic version, e.g. 1.0.0")
    title: str = Field(description="one-line title")
    description: str | None = Field(None, description="longer description")
    parameters: dict[str, ParameterSpec] = Field(default_factory=dict, description="run parameters by name")
    labware: dict[str, LabwareSpec] = Field(default_factory=dict, description="plates by name")
    steps: list[Step] = Field(description="the steps, in order")


def protocol_json_schema() -> dict[str, Any]:
    """JSON schema of a protocol file, for ``cellwright schema`` and editors."""
    schema = ProtocolDocument.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cellwright.dev/schema/protocol.json"
    return schema
