"""The result of an audit: :class:`AuditReport` and its :class:`AuditProblem` findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBLEM_KINDS = ("modified", "deleted", "inserted", "reordered", "truncated", "projection-mismatch")
"""The classifications :class:`AuditProblem.kind` takes."""

MAX_PROBLEMS = 50
"""At most this many chain problems and this many projection problems are listed."""

@dataclass(frozen=True)
class AuditProblem:
    """One finding.

    Attributes:
        seq: the event sequence number concerned (the first broken record, the first
            missing one, or the event behind a projection row); ``None`` if unknown.
        kind: one of :data:`PROBLEM_KINDS`.
        message: what is wrong, naming the record (and table, row, column for
            projections).
    """

    seq: int | None
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"seq": self.seq, "kind": self.kind, "message": self.message}


@dataclass
class AuditReport:
    """Result of :func:`verify`.

    Attributes:
        ok: no problem found.
        events: number of event records in the database.
        head: hash of the newest stored event (``GENESIS`` when empty).
        problems: chain problems in sequence order, then head, then projection problems.
        head_seq: sequence number of the newest stored event.
        recorded_head: ``(seq, hash)`` from the ``chain_head`` table, or ``None``.
        path: the database verified (``None`` for an in-memory connection).
        notes: what could not be checked and other remarks (not problems).
    """

    ok: bool
    events: int
    head: str
    problems: list[AuditProblem] = field(default_factory=list)
    head_seq: int = 0
    recorded_head: tuple[int, str] | None = None
    path: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def first_problem(self) -> AuditProblem | None:
        """The first problem found (the earliest broken record), or ``None``."""
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for ``--json`` output and batch records)."""
        return {
            "ok": self.ok, "events": self.events, "head": self.head, "head_seq": self.head_seq,
            "recorded_head": list(self.recorded_head) if self.recorded_head else None, "path": self.path,
            "first_problem": self.first_problem.to_dict() if self.first_problem else None,
            "problems": [p.to_dict() for p in self.problems], "notes": list(self.notes),
        }

    def text(self) -> str:
        """Human-readable summary, one finding per line."""
        where = f"{self.path}: " if self.path else ""
        if self.ok:
            lines = [(f"{where}OK — {self.events} events, hash chain intact, projections match; "
                      f"head {self.head_seq}:{self.head}")]
        else:
            lines = [(f"{where}FAILED — {len(self.problems)} problem(s) in {self.events} events; "
                      f"stored head {self.head_seq}:{self.head}")]
            for p in self.problems:
                lines.append(f"  [{p.kind}] " + (f"seq {p.seq}: " if p.seq is not None else "") + p.message)
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)
