"""Campaign files: many protocol runs executed together on one workcell.

    campaign: w24
    title: 24 plates x 14 days iPSC maintenance
    workcell: ../protocols/workcells/default.yaml   # optional; relative to this file
    runs:
      - protocol: ../protocols/ipsc-maintenance.yaml # relative to this file, or a bundled name
        plates: 24                                   # one run per plate
        parameters: {days: 14}
        priority: 1                                  # higher first when instruments are contended
        start: 0h                                    # earliest start of the first plate
        stagger: 20m                                 # start offset between plates (default: planner)

Each plate becomes a run of its own (``R0001`` ...), so it is journaled, resumed and
reported like any run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.errors import ConfigurationError
from orchestrator.protocol import ProtocolErrors, load_protocol
from orchestrator.protocol.errors import ErrorSink
from orchestrator.protocol.graph import ProtocolGraph
from orchestrator.protocol.model import duration_seconds
from orchestrator.protocol.structure import load_document
from orchestrator.workcell import Workcell, load_workcell

BUNDLED = Path(__file__).resolve().parent.parent / "protocols"


class _RunDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol: str = Field(description="protocol file, relative to the campaign file, or a bundled protocol name")
    plates: int = Field(1, ge=1, le=10000, description="plates, one run each")
    parameters: dict[str, Any] = Field(default_factory=dict, description="parameter values")
    priority: int = Field(0, description="higher runs first when instruments are contended")
    start: float = Field(0.0, description="earliest start of the first plate (duration from campaign start)")
    stagger: float | None = Field(None, description="start offset between consecutive plates")

    @field_validator("start", "stagger", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float | None:
        return duration_seconds(value)


class _CampaignDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign: str
    title: str = ""
    workcell: str | None = None
    runs: list[_RunDoc] = Field(min_length=1)


@dataclass(frozen=True)
class CampaignRun:
    """One run of a campaign (one plate)."""

    graph: ProtocolGraph
    release_s: float
    priority: int
    group: int
    index: int


@dataclass(frozen=True)
class Campaign:
    """A validated campaign."""

    name: str
    title: str
    source: str
    workcell: Workcell
    runs: tuple[CampaignRun, ...]


def is_campaign(path: str | Path) -> bool:
    """True when the YAML file's first key is ``campaign`` (cheap sniff, no full parse)."""
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                text = line.strip()
                if text and not text.startswith("#"):
                    return text.startswith("campaign:")
    except OSError:
        return False
    return False


def _protocol_path(base: Path, name: str) -> Path:
    candidate = (base / name).resolve()
    if candidate.exists():
        return candidate
    bundled = BUNDLED / (name if name.endswith(".yaml") else f"{name}.yaml")
    return bundled if bundled.exists() else candidate


def load_campaign(path: str | Path, workcell: str | Path | Workcell | None = None) -> Campaign:
    """Read and validate a campaign and every protocol it names.

    Args:
        workcell: overrides the campaign's own ``workcell:``.
    Raises:
        ConfigurationError: every problem, located ``path:line:col`` (protocol problems
            keep their own file locations).
    """
    path = Path(path)
    try:
        src, parsed = load_document(path, _CampaignDoc, "a mapping with campaign and runs")
    except ProtocolErrors as exc:
        raise ConfigurationError(str(exc)) from None
    base = path.resolve().parent
    if isinstance(workcell, Workcell):
        cell = workcell
    else:
        where = workcell or (base / parsed.workcell if parsed.workcell else None)
        cell = load_workcell(where)
    sink = ErrorSink()
    runs: list[CampaignRun] = []
    for g, entry in enumerate(parsed.runs):
        at = src.loc(("runs", g, "protocol"))
        file = _protocol_path(base, entry.protocol)
        if not file.exists():
            sink.add(at, f"no protocol file {entry.protocol!r} (looked in {base} and the bundled protocols)")
            continue
        try:
            graph = load_protocol(file, entry.parameters, workcell=cell)
        except ProtocolErrors as exc:
            sink.add(at, f"protocol {entry.protocol} is invalid:\n{exc}")
            continue
        stagger = entry.stagger if entry.stagger is not None else 0.0
        for i in range(entry.plates):
            runs.append(CampaignRun(graph, entry.start + i * stagger, entry.priority, g, i))
    if sink:
        raise ConfigurationError("\n".join(str(e) for e in sink.errors))
    return Campaign(parsed.campaign, parsed.title, str(path), cell, tuple(runs))
