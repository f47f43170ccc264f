"""The compiled form of a protocol: what the engine and the planner execute.

A protocol file (YAML) is validated and compiled into a :class:`ProtocolGraph`: includes
inlined, parameters resolved, durations in seconds, conditions parsed into
:class:`Expr`. Nothing here refers back to YAML except :class:`Location` for messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union


@dataclass(frozen=True)
class Location:
    """A place in a protocol file (1-based line and column)."""

    path: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Expr:
    """A parsed, safe expression over parameters and saved measurements.

    Attributes:
        source: the text as written.
        names: free variable names it reads (``count`` for ``count.viability``).
        location: where it was written.
        evaluate: evaluates it against a mapping of names to values; raises
            ``ExpressionError`` (a ValueError) on a missing name or bad operand.
    """

    source: str
    names: frozenset[str]
    location: Location
    evaluate: Callable[[Mapping[str, Any]], Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Lag:
    """Time constraint ``start(this) - end(after) in [min_s, max_s]`` (seconds).

    ``after`` is the static key of an earlier step (see :attr:`ActionNode.key`); the
    engine uses that step's most recent end.
    """

    after: str
    min_s: float = 0.0
    max_s: float | None = None


@dataclass(frozen=True)
class Criterion:
    """One acceptance criterion: ``field op value`` (``viability >= 0.9``)."""

    field: str
    op: Literal[">=", ">", "<=", "<", "==", "!="]
    value: float
    source: str

    def check(self, measured: float) -> bool:
        """True when ``measured`` meets the criterion."""
        return {
            ">=": measured >= self.value,
            ">": measured > self.value,
            "<=": measured <= self.value,
            "<": measured < self.value,
            "==": measured == self.value,
            "!=": measured != self.value,
        }[self.op]


@dataclass(frozen=True)
class RecoveryRule:
    """What to do when an action fails with an error of a given kind.

    ``retry`` re-issues the call up to ``retries`` times, waiting ``backoff_s`` x 2^n;
    when retries run out, ``then`` applies (``operator``, ``skip`` or ``fail``).
    """

    policy: Literal["retry", "skip", "operator", "fail"]
    retries: int = 0
    backoff_s: float = 30.0
    then: Literal["skip", "operator", "fail"] = "fail"


@dataclass(frozen=True)
class ActionNode:
    """One instrument action.

    Attributes:
        id: the step id as written.
        key: static dotted path (``day.passage.dissociate``), unique in the graph.
        instrument_class: ``liquid_handler`` ...; ``instrument`` names a specific
            workcell instrument when the protocol wrote one, else None.
        action: action name (``exchange_medium``).
        args: argument values; plate arguments hold a labware name (str); values that
            depend on measurements are :class:`Expr`.
        save: name bound to the result's primary value (and ``name.field``).
        accept: QC criteria on the result's fields.
        on_reject: what a failed criterion does to the run.
        on_error: recovery rule per error kind (``timeout``, ``device_fault`` ...,
            and ``default``).
        when: condition; the step is skipped when it evaluates false.
        lags: time constraints to earlier steps.
        timeout_s: the call's timeout, None for the driver's default.
    """

    id: str
    key: str
    instrument_class: str
    action: str
    args: Mapping[str, Any]
    location: Location
    instrument: str | None = None
    save: str | None = None
    accept: tuple[Criterion, ...] = ()
    on_reject: Literal["continue", "hold", "fail"] = "hold"
    on_error: Mapping[str, RecoveryRule] = field(default_factory=dict)
    when: Expr | None = None
    lags: tuple[Lag, ...] = ()
    timeout_s: float | None = None


@dataclass(frozen=True)
class WaitNode:
    """A pure wait (``wait: 10m``), e.g. an incubation between two actions."""

    id: str
    key: str
    seconds: float
    location: Location
    when: Expr | None = None
    lags: tuple[Lag, ...] = ()


@dataclass(frozen=True)
class OperatorNode:
    """A task for a person (``ask: "Load a fresh plate of Matrigel"``): the run pauses, its
    plates at home, until someone runs ``cellwright confirm RUN STEP --done`` (or
    ``--skip``) and the run is resumed."""

    id: str
    key: str
    message: str
    location: Location
    when: Expr | None = None
    lags: tuple[Lag, ...] = ()


@dataclass(frozen=True)
class GroupNode:
    """A sequence of steps (also what an ``include`` compiles to)."""

    id: str
    key: str
    steps: tuple["Node", ...]
    location: Location
    when: Expr | None = None
    lags: tuple[Lag, ...] = ()


@dataclass(frozen=True)
class RepeatNode:
    """A repeated sequence.

    Iteration ``k`` (0-based) ideally starts at ``first_start + k * every_s`` and must
    start within ``± window_s`` of it (anchored to the first iteration, so it does not
    drift). Runs ``times`` iterations, or until ``until`` is true after an iteration
    (at most ``max_times``).
    """

    id: str
    key: str
    steps: tuple["Node", ...]
    location: Location
    every_s: float | None = None
    window_s: float = 0.0
    times: int | None = None
    until: Expr | None = None
    max_times: int = 1000
    when: Expr | None = None
    lags: tuple[Lag, ...] = ()


Node = Union[ActionNode, WaitNode, OperatorNode, GroupNode, RepeatNode]


@dataclass(frozen=True)
class LabwareDecl:
    """A labware item the protocol uses."""

    name: str
    model: str
    home: str = "incubator"
    cell_line: str | None = None
    cell_type: str | None = None


@dataclass(frozen=True)
class ProtocolGraph:
    """A compiled protocol.

    Attributes:
        name, version, title: from the file.
        source: path of the top-level file.
        content_hash: SHA-256 (hex) over the top-level file and every include, in
            include order, so a batch record names exactly what ran.
        parameters: resolved parameter values (defaults plus overrides).
        labware: declared labware by name.
        steps: the top-level steps.
    """

    name: str
    version: str
    title: str
    source: str
    content_hash: str
    parameters: Mapping[str, Any]
    labware: Mapping[str, LabwareDecl]
    steps: tuple[Node, ...]

    def walk(self) -> list[Node]:
        """Every node, depth-first in file order."""
        out: list[Node] = []

        def visit(nodes: tuple[Node, ...]) -> None:
            for n in nodes:
                out.append(n)
                if isinstance(n, (GroupNode, RepeatNode)):
                    visit(n.steps)

        visit(self.steps)
        return out
