"""Records of a campaign expansion (see :mod:`orchestrator.planning.expand`): the
operations' meaning (:class:`OpInfo`), repeat cadences, one run / the whole campaign
expanded, and the resource-name constants they use. All times are seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from drivers.errors import ConfigurationError
from orchestrator.campaign import Campaign
from orchestrator.planner import Lag, Operation, Resource, Span
from orchestrator.protocol.graph import ProtocolGraph

SLOT = "<slot>"
PLATES_OUT = "plates-out"
SITE = "/site"
DAY = 86400.0


class ExpansionError(ConfigurationError):
    """The campaign cannot be turned into a plan (no plate mover, unknown instrument...)."""


@dataclass(frozen=True, slots=True)
class OpInfo:
    """What an operation of the expansion stands for.

    Attributes:
        id: operation id (``R0003:day[4].passage.harvest``, ``R0003:day[4].passage.harvest>home``).
        run: index of the run in ``campaign.runs``.
        kind: ``action``, ``fetch``, ``transfer``, ``home`` (arm transfer to the incubator) or ``store``.
        key: the executor's dynamic step key (actions only).
        static_key: the protocol's static key (actions only).
        instrument: instrument (or mover) it runs on.
        action: driver action name.
        plate: labware name moved / worked on.
        visit: visit number in the run (plate out of the incubator once per visit).
        engine_offset: planned start minus the value to give the executor for this action
            (the executor starts bringing the plate ``lead`` s before the value it is given,
            with ``lead`` estimated before a plate is taken home, see `plan_value`).
        planned: False for ops of steps the executor would not run as predicted.
    """

    id: str
    run: int
    kind: str
    key: str | None
    static_key: str | None
    instrument: str
    action: str
    plate: str | None
    visit: int
    engine_offset: float = 0.0


@dataclass(frozen=True, slots=True)
class Cadence:
    """Iteration ``k`` of a repeat instance: its first action and the anchor (iteration 0).

    ``anchor`` is None for the iteration that anchors the cadence (k = 0).
    """

    op: str
    anchor: str | None
    k: int
    every: float
    window: float
    repeat: str


@dataclass
class RunExpansion:
    """One run, expanded (times in ``rel`` are relative to the run's first operation)."""

    index: int
    label: str
    release: float
    priority: int
    graph: ProtocolGraph
    pins: dict[str, str]
    ops: list[Operation] = field(default_factory=list)
    info: list[OpInfo] = field(default_factory=list)
    lags: list[Lag] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    roles: dict[Lag, str] = field(default_factory=dict)
    node_pins: dict[str, str] = field(default_factory=dict)
    rel: dict[str, float] = field(default_factory=dict)
    cadence: list[Cadence] = field(default_factory=list)
    unknown: list[tuple[str, str]] = field(default_factory=list)
    spread: float = DAY

    @property
    def first(self) -> str | None:
        """Id of the run's first operation (None when it predicts no work)."""
        return self.ops[0].id if self.ops else None

    @property
    def length(self) -> float:
        """Template length: first op start to last op end, seconds."""
        if not self.ops:
            return 0.0
        return max(self.rel[o.id] + o.duration for o in self.ops)


@dataclass
class Expansion:
    """A whole campaign, expanded. See the module docstring."""

    campaign: Campaign
    runs: list[RunExpansion]
    resources: list[Resource]
    keep_out: float
    durations: dict[tuple[str, str], float]
    decisions: dict[int, dict[str, bool]] = field(default_factory=dict)
    home_before: dict[int, set[str]] = field(default_factory=dict)

    @cached_property
    def info(self) -> dict[str, OpInfo]:
        """OpInfo by operation id."""
        return {i.id: i for r in self.runs for i in r.info}

    @cached_property
    def roles(self) -> dict[Lag, str]:
        """What each lag stands for (``cadence``, ``protocol``, ``keep-out``, ``transport``...)."""
        out: dict[Lag, str] = {}
        for r in self.runs:
            out.update(r.roles)
        return out

    @property
    def operations(self) -> int:
        """Number of operations."""
        return sum(len(r.ops) for r in self.runs)

