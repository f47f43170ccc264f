"""Synthetic cell-culture campaign generator (also a timing script).

Every plate is visited once a day: fetch from the incubator -> arm transfer -> liquid handler
(either of two) -> imager -> arm -> store. Consecutive steps may wait at most ``max_wait``
seconds (max lags), the fetch starts within +-1 h of the plate's ideal time (release/deadline,
target = ideal) and at most ``out_capacity`` plates are out of the incubator at once (a Span
from fetch to store on a cumulative resource).

Run ``python tests/planner/planner_campaign.py --plates 60 --days 28`` to time the planner.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from orchestrator.planner import Lag, Operation, Problem, Resource, Span

STEPS = (  # (name, duration s, resources)
    ("fetch", 45.0, ("incubator",)),
    ("load", 30.0, ("arm",)),
    ("feed", 600.0, (("lh1", "lh2"),)),
    ("image", 240.0, ("imager",)),
    ("unload", 30.0, ("arm",)),
    ("store", 45.0, ("incubator",)),
)


def make_campaign(plates: int, days: int, *, stagger: float = 330.0, window: float = 3600.0,
                  max_wait: float = 120.0, out_capacity: int = 4, first_hour: float = 8.0,
                  anchored: bool = False) -> Problem:
    """A campaign of ``plates * days * 6`` operations (times in seconds).

    With ``anchored``, day ``d``'s fetch is tied to the plate's first fetch by a start-start lag
    in ``[d*24h - window, d*24h + window]`` (no drift) instead of absolute release/deadline.
    """
    ops: list[Operation] = []
    lags: list[Lag] = []
    spans: list[Span] = []
    for d in range(days):
        for p in range(plates):
            ideal = d * 86400.0 + first_hour * 3600.0 + p * stagger
            prev = None
            ids = []
            for name, dur, res in STEPS:
                oid = f"p{p}d{d}.{name}"
                kw: dict[str, object] = {}
                if name == "fetch" and anchored and d > 0:
                    kw = {"target": ideal}
                    lags.append(Lag(f"p{p}d0.fetch", oid, d * 86400.0 - window, d * 86400.0 + window, "start_start"))
                elif name == "fetch":
                    kw = {"release": ideal - window, "deadline": ideal + window + dur, "target": ideal}
                ops.append(Operation(oid, dur, res, job=f"p{p}", group=f"p{p}d{d}", **kw))  # type: ignore[arg-type]
                if prev is not None:
                    lags.append(Lag(prev, oid, 0.0, max_wait))
                prev = oid
                ids.append(oid)
            spans.append(Span("out", ids[0], ids[-1]))
    resources = [Resource(r) for r in ("incubator", "arm", "lh1", "lh2", "imager")]
    resources.append(Resource("out", out_capacity))
    return Problem(ops, resources, lags, spans)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--plates", type=int, default=60)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--limit", type=float, default=0.0, help="improvement time limit, s")
    args = ap.parse_args()
    from orchestrator.planner import check, plan

    problem = make_campaign(args.plates, args.days)
    t = time.perf_counter()
    sched = plan(problem, time_limit=args.limit, iterations=0 if args.limit == 0 else None)
    el = time.perf_counter() - t
    dev = [abs(sched.starts[o.id] - o.target) for o in problem.operations if o.target is not None]
    print(f"{len(problem.operations)} ops: {sched.status} in {el:.2f} s, "
          f"{len(check(problem, sched))} violations, mean |start-ideal| {sum(dev) / len(dev):.0f} s, "
          f"max {max(dev):.0f} s; notes: {sched.notes}")


if __name__ == "__main__":
    main()
