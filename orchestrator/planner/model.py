"""Plain scheduling problem model: resources, operations, time lags, spans, schedules.

All times are in SECONDS (int or float) on one time axis starting at 0. The model knows
nothing of protocols or instruments: a resource is a name with a capacity, an operation is a
duration that occupies one unit of each resource it lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

ResourceSpec = str | tuple[str, ...]
"""A resource name, or a tuple of alternative names of which exactly one is used."""

LagKind = Literal["end_start", "start_start"]
Status = Literal["optimal", "feasible", "infeasible", "unknown"]


class ProblemError(ValueError):
    """A problem is malformed (unknown ids, duplicates, negative durations, min > max...)."""


@dataclass(frozen=True, slots=True)
class Resource:
    """A renewable resource.

    Attributes:
        name: Unique resource name.
        capacity: Units available at any instant; 1 is a unary (disjunctive) resource,
            more is cumulative (e.g. incubator slots, plates allowed out at once).
    """

    name: str
    capacity: int = 1


@dataclass(frozen=True, slots=True)
class Operation:
    """One non-preemptive operation.

    Attributes:
        id: Unique operation id.
        duration: Processing time in seconds (>= 0).
        resources: One entry per resource needed for the whole duration, each a name or a
            tuple of alternatives (exactly one is chosen). Each entry demands one unit.
        release: Earliest start, seconds.
        deadline: Latest END, seconds, or None.
        job: Optional job name (informational; used by bounds and reports).
        group: Optional free-form group name (informational).
        frozen_start: If set, the start is fixed to this value (already started or done).
        frozen_resources: Chosen resource per entry for a frozen operation; required when
            a frozen operation has alternatives.
        target: Ideal start in seconds (soft); the optimiser minimises |start - target|.
    """

    id: str
    duration: float
    resources: tuple[ResourceSpec, ...] = ()
    release: float = 0.0
    deadline: float | None = None
    job: str | None = None
    group: str | None = None
    frozen_start: float | None = None
    frozen_resources: tuple[str, ...] | None = None
    target: float | None = None

    @property
    def choices(self) -> tuple[tuple[str, ...], ...]:
        """Resource entries normalised to tuples of alternatives."""
        return tuple((r,) if isinstance(r, str) else tuple(r) for r in self.resources)


@dataclass(frozen=True, slots=True)
class Lag:
    """A generalized precedence: ``start(b) - end(a)`` (or ``- start(a)``) in ``[min, max]``.

    Attributes:
        a: Reference operation id.
        b: Constrained operation id.
        min: Minimum lag in seconds (may be negative).
        max: Maximum lag in seconds, or None for no upper limit.
        kind: ``"end_start"`` measures from end(a), ``"start_start"`` from start(a).
    """

    a: str
    b: str
    min: float = 0.0
    max: float | None = None
    kind: LagKind = "end_start"


@dataclass(frozen=True, slots=True)
class Span:
    """One unit of a (cumulative) resource held from start(first) to end(last).

    Used e.g. for "plate out of the incubator" from fetch to store.
    """

    resource: str
    first: str
    last: str


@dataclass(frozen=True)
class Problem:
    """A scheduling problem. Lists are converted to tuples.

    Attributes:
        operations: All operations.
        resources: All resources.
        lags: Time lags between operations.
        spans: Resource holdings over several operations.
        horizon: Every operation must end by this time (seconds), or None.
    """

    operations: tuple[Operation, ...]
    resources: tuple[Resource, ...]
    lags: tuple[Lag, ...] = ()
    spans: tuple[Span, ...] = ()
    horizon: float | None = None

    def __post_init__(self) -> None:
        for name in ("operations", "resources", "lags", "spans"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @cached_property
    def op(self) -> dict[str, Operation]:
        """Operations by id (last wins on duplicates; see `validate_problem`)."""
        return {o.id: o for o in self.operations}

    @cached_property
    def capacity(self) -> dict[str, int]:
        """Capacity by resource name."""
        return {r.name: r.capacity for r in self.resources}


@dataclass(frozen=True)
class Schedule:
    """A planner's answer.

    Attributes:
        starts: Start time (seconds) per operation id. Only guaranteed to satisfy every
            constraint when ``status`` is ``"optimal"`` or ``"feasible"``; otherwise it may
            be a best-effort placement (see ``notes``) or empty.
        assignment: Chosen resource per entry of ``Operation.resources``, per operation.
        makespan: Latest end time in seconds (``inf`` if nothing was placed).
        status: ``optimal`` (proved), ``feasible``, ``infeasible`` (proved) or ``unknown``.
        lower_bound: A valid lower bound on the makespan, seconds.
        solver: Which planner produced it (e.g. ``"constructive"``, ``"cpsat"``).
        seconds: Wall time spent, seconds.
        notes: Human-readable remarks (conflicts found, violations, limits hit).
    """

    starts: dict[str, float]
    assignment: dict[str, tuple[str, ...]]
    makespan: float
    status: Status
    lower_bound: float = 0.0
    solver: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the schedule is claimed to satisfy every constraint."""
        return self.status in ("optimal", "feasible")


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate_problem(problem: Problem) -> None:
    """Check that a problem is well-formed (not that it is feasible).

    Raises:
        ProblemError: on duplicate or unknown ids/resources, non-positive capacities,
            negative or non-finite durations, empty alternative sets, a resource listed twice
            in one operation, lag ``min > max``, unknown lag kinds, or bad frozen data.
    """
    caps: dict[str, int] = {}
    for r in problem.resources:
        if r.name in caps:
            raise ProblemError(f"duplicate resource name {r.name!r}")
        if not isinstance(r.capacity, int) or r.capacity < 1:
            raise ProblemError(f"resource {r.name!r}: capacity must be an int >= 1, got {r.capacity!r}")
        caps[r.name] = r.capacity
    ids: set[str] = set()
    for o in problem.operations:
        if o.id in ids:
            raise ProblemError(f"duplicate operation id {o.id!r}")
        ids.add(o.id)
        if not _finite(o.duration) or o.duration < 0:
            raise ProblemError(f"operation {o.id!r}: duration must be finite and >= 0, got {o.duration!r}")
        if not _finite(o.release):
            raise ProblemError(f"operation {o.id!r}: release must be finite, got {o.release!r}")
        for name, val in (("deadline", o.deadline), ("frozen_start", o.frozen_start), ("target", o.target)):
            if val is not None and not _finite(val):
                raise ProblemError(f"operation {o.id!r}: {name} must be finite, got {val!r}")
        fixed: set[str] = set()
        for entry in o.choices:
            if not entry:
                raise ProblemError(f"operation {o.id!r}: empty set of alternative resources")
            for name in entry:
                if name not in caps:
                    raise ProblemError(f"operation {o.id!r}: unknown resource {name!r}")
            if len(entry) == 1:
                if entry[0] in fixed:
                    raise ProblemError(f"operation {o.id!r}: resource {entry[0]!r} listed twice")
                fixed.add(entry[0])
        if o.frozen_resources is not None:
            if o.frozen_start is None:
                raise ProblemError(f"operation {o.id!r}: frozen_resources without frozen_start")
            if len(o.frozen_resources) != len(o.choices):
                raise ProblemError(
                    f"operation {o.id!r}: frozen_resources needs one resource per entry "
                    f"({len(o.choices)}), got {len(o.frozen_resources)}"
                )
            for chosen, entry in zip(o.frozen_resources, o.choices, strict=True):
                if chosen not in entry:
                    raise ProblemError(f"operation {o.id!r}: frozen resource {chosen!r} not in {entry!r}")
        elif o.frozen_start is not None and any(len(e) > 1 for e in o.choices):
            raise ProblemError(f"operation {o.id!r}: frozen operation with alternatives needs frozen_resources")
    for lag in problem.lags:
        for end in (lag.a, lag.b):
            if end not in ids:
                raise ProblemError(f"lag {lag.a!r}->{lag.b!r}: unknown operation {end!r}")
        if lag.kind not in ("end_start", "start_start"):
            raise ProblemError(f"lag {lag.a!r}->{lag.b!r}: unknown kind {lag.kind!r}")
        if not _finite(lag.min) or (lag.max is not None and not _finite(lag.max)):
            raise ProblemError(f"lag {lag.a!r}->{lag.b!r}: min/max must be finite")
        if lag.max is not None and lag.min > lag.max:
            raise ProblemError(f"lag {lag.a!r}->{lag.b!r}: min {lag.min} > max {lag.max}")
        if lag.a == lag.b:
            raise ProblemError(f"lag {lag.a!r}->{lag.b!r}: an operation cannot lag itself")
    for sp in problem.spans:
        if sp.resource not in caps:
            raise ProblemError(f"span on {sp.resource!r}: unknown resource")
        for end in (sp.first, sp.last):
            if end not in ids:
                raise ProblemError(f"span on {sp.resource!r}: unknown operation {end!r}")
    if problem.horizon is not None and (not _finite(problem.horizon) or problem.horizon < 0):
        raise ProblemError(f"horizon must be finite and >= 0, got {problem.horizon!r}")


def frozen_assignment(op: Operation) -> tuple[str, ...]:
    """The fixed resource choice of a frozen operation (first alternative if unambiguous)."""
    if op.frozen_resources is not None:
        return tuple(op.frozen_resources)
    return tuple(e[0] for e in op.choices)
