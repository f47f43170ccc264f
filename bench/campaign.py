"""Campaign planning bench: W24 and W96 planned and run through the engine, a capacity
sweep, re-planning latency, against the engine without a plan (greedy baseline).

    python bench/campaign.py [--repeat 3] [--quick] [--no-sweep] [--cpsat]

Per workload (each measured in a fresh subprocess so peak memory is its own):
planning time (median of ``--repeat``, OR-Tools not used unless ``--cpsat``), violations,
mean/max cadence error, makespan, lower bound and their ratio; then the whole campaign
through the engine and simulators following the plan (``runner.run_campaign``, db
``:memory:``): wall time, window deviations the ENGINE recorded (``window-missed``), peak
RSS; and the engine alone without a plan (``runner.run_campaign(planned=False)``, greedy: every step at
its earliest time) for comparison. W24 also gets the median re-planning latency after a
disruption (a feed overrunning by 2 min + another plate's day-5 feed turned into a
passage). The capacity sweep finds the largest number of plates one liquid handler takes
on the 14-day cadence (w24 workcell, incubator slots raised), confirms it with the full
planner (and through the engine), and that one more plate is not planned.

Targets: W24 0 violations, mean cadence error <= 30 s, none > 5 min, planned < 2 s
without OR-Tools, whole campaign through the engine < 5 s; W96 0 violations, < 60 s,
< 500 MB; re-plan median < 200 ms; sweep >= 100 plates per liquid handler (bound ~117).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_json

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORKLOADS = ROOT / "bench" / "workloads"


def _window_missed(summary: dict[str, Any]) -> int:
    return sum(1 for r in summary["run_summaries"] for d in r["deviations"] if d["kind"] == "window-missed")


def measure(name: str, repeat: int, cpsat: bool, greedy: bool, replan: bool) -> dict[str, Any]:
    """One workload, in this process (called in a subprocess by main)."""
    from orchestrator.campaign import load_campaign
    from orchestrator.planning import plan_campaign
    from orchestrator.runner import run_campaign

    campaign = load_campaign(WORKLOADS / f"{name}.yaml")
    times = []
    cp = None
    for _ in range(repeat):
        t = time.perf_counter()
        cp = plan_campaign(campaign, time_limit=30.0, use_cpsat=cpsat)
        times.append(time.perf_counter() - t)
    assert cp is not None
    out: dict[str, Any] = {
        "workload": name, "runs": len(campaign.runs), "operations": cp.operations, "status": cp.status,
        "plan_s_median": statistics.median(times), "plan_s": times, "violations": len(cp.violations),
        "mean_cadence_error_s": cp.mean_cadence_error_s, "max_cadence_error_s": cp.max_cadence_error_s,
        "makespan_s": cp.makespan_s, "lower_bound_s": cp.lower_bound_s,
        "ratio": cp.makespan_s / cp.lower_bound_s if cp.lower_bound_s else None,
        "max_plates_out": cp.max_plates_out, "solver": cp.schedule.solver,
    }
    t = time.perf_counter()
    result = run_campaign(campaign, db=":memory:", campaign_plan=cp)
    wall = time.perf_counter() - t
    assert result is not None
    s = result.summary()
    out["engine"] = {"wall_s": wall, "engine_wall_s": s["wall_seconds"], "status": s["status"],
                     "steps_done": s["steps_done"], "moves": s["transport_moves"],
                     "window_missed": _window_missed(s), "deviations": s["deviations"], "sim_seconds": s["sim_seconds"],
                     "sim_vs_plan_makespan_s": s["sim_seconds"] - cp.makespan_s,
                     "plan_plus_engine_wall_s": wall + out["plan_s_median"]}
    if replan:
        out["replan"] = replan_latency(cp)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if greedy:
        from orchestrator.runner import run_campaign

        t = time.perf_counter()
        g = run_campaign(campaign, db=":memory:", planned=False).summary()
        out["greedy"] = {"wall_s": time.perf_counter() - t, "status": g["status"], "steps_done": g["steps_done"],
                         "window_missed": _window_missed(g), "deviations": g["deviations"],
                         "sim_seconds": g["sim_seconds"]}
    return out


def replan_latency(cp: Any, trials: int = 11) -> dict[str, Any]:
    """Median latency of `replan_during_run` after a disruption on W24-like plans."""
    from orchestrator.planning.replan import replan_during_run

    n = len(cp.expansion.runs)
    lat, ok, cad = [], 0, []
    for i in range(trials):
        r = (i * 5) % n
        key = "day[3].feed"
        s = cp.schedule.starts[f"R{r + 1:04d}:{key}"]
        d = cp.problem.op[f"R{r + 1:04d}:{key}"].duration
        rp = replan_during_run(cp, now=s + 60, actual={r: {key: (s, d + 120)}},
                               decisions={(r + 3) % n: {"day[5].feed": False, "day[5].passage": True}})
        lat.append(rp.seconds)
        ok += rp.feasible
        cad.append(rp.mean_cadence_error_s)
    hard = []
    for i in range(5):  # a dissociation overrunning in the passage pipeline (harder; may be infeasible)
        r = (i * 7) % n
        key = "day[4].passage.dissociate"
        s = cp.schedule.starts[f"R{r + 1:04d}:{key}"]
        rp = replan_during_run(cp, now=s + 60, actual={r: {key: (s, 180 + 120)}}, commit="started")
        hard.append((rp.seconds, rp.feasible))
    return {"median_ms": 1000 * statistics.median(lat), "max_ms": 1000 * max(lat), "trials": trials,
            "feasible": ok, "mean_cadence_error_s": statistics.mean(cad),
            "passage_overrun": {"median_ms": 1000 * statistics.median(t for t, _ in hard),
                                "feasible": sum(f for _, f in hard), "trials": len(hard),
                                "commit": "started (needs the executor to re-read its plan)"}}


def sweep(confirm: bool, time_limit: float) -> dict[str, Any]:
    """Largest number of plates per liquid handler on the 14-day cadence."""
    import dataclasses

    from orchestrator.campaign import CampaignRun, load_campaign
    from orchestrator.planning import expand, plan_campaign
    from orchestrator.runner import run_campaign
    from orchestrator.planning.explain import Prober, largest_feasible, with_slots

    base = load_campaign(WORKLOADS / "W24.yaml")
    cell = with_slots(base.workcell, 400)
    r0 = base.runs[0]
    big = dataclasses.replace(base, workcell=cell,
                              runs=tuple(CampaignRun(r0.graph, 0.0, 0, 0, i) for i in range(160)))
    t = time.perf_counter()
    prober = Prober(expand(big))
    n, _, done = largest_feasible(prober, deadline=time.perf_counter() + 300)
    search_s = time.perf_counter() - t
    from orchestrator.planning.explain import with_runs

    t = time.perf_counter()
    at_n = plan_campaign(with_runs(big, n), time_limit=time_limit, explain=False)
    plan_n_s = time.perf_counter() - t
    t = time.perf_counter()
    above = plan_campaign(with_runs(big, n + 1), time_limit=time_limit, explain=False)
    plan_above_s = time.perf_counter() - t
    out: dict[str, Any] = {
        "plates_per_liquid_handler": n, "search_complete": done, "search_s": search_s,
        "full_planner_at_n": {"status": at_n.status, "violations": len(at_n.violations), "seconds": plan_n_s,
                              "mean_cadence_error_s": at_n.mean_cadence_error_s,
                              "max_cadence_error_s": at_n.max_cadence_error_s},
        "full_planner_at_n_plus_1": {"status": above.status, "seconds": plan_above_s,
                                     "time_limit_s": time_limit},
        "bound_estimate": 117,
    }
    if confirm and at_n.feasible:
        t = time.perf_counter()
        res = run_campaign(with_runs(big, n), db=":memory:", campaign_plan=at_n)
        assert res is not None
        s = res.summary()
        out["engine_at_n"] = {"wall_s": time.perf_counter() - t, "status": s["status"],
                              "window_missed": _window_missed(s), "steps_done": s["steps_done"]}
    return out


def _child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="planning repeats per workload (median)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, no W96 greedy baseline, no engine confirmation")
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--cpsat", action="store_true", help="let the planner use OR-Tools")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, _, name = args.child.partition(":")
        if kind == "sweep":
            print(json.dumps(sweep(confirm=name == "confirm", time_limit=20.0), default=str))
        else:
            flags = set(name.split(","))
            wl = kind
            print(json.dumps(measure(wl, args.repeat, args.cpsat, "greedy" in flags, "replan" in flags), default=str))
        return
    repeat = 1 if args.quick else args.repeat
    common = ["--repeat", str(repeat)] + (["--cpsat"] if args.cpsat else [])
    w24 = _child(["--child", "W24:greedy,replan", *common])
    w96 = _child(["--child", "W96:" + ("" if args.quick else "greedy"), *common])
    sw = None if args.no_sweep else _child(["--child", "sweep:" + ("" if args.quick else "confirm")])
    rows = []
    for r in (w24, w96):
        e, g = r["engine"], r.get("greedy")
        rows.append([r["workload"], r["runs"], r["operations"], r["status"], r["plan_s_median"], r["violations"],
                     r["mean_cadence_error_s"], r["max_cadence_error_s"], r["makespan_s"] / 86400,
                     r["ratio"], e["wall_s"], e["window_missed"],
                     f"{g['window_missed']} / {g['wall_s']:.2f} s" if g else "-", r["peak_rss_mb"]])
    print(table(f"campaign planning (plan: median of {repeat}; OR-Tools {'on' if args.cpsat else 'off'})",
                ["workload", "runs", "ops", "status", "plan s", "viol.", "cad. mean s", "cad. max s",
                 "makespan d", "mk/LB", "engine wall s", "engine window-missed", "greedy missed / wall",
                 "peak MB"], rows))
    rp = w24["replan"]
    print(f"\nre-plan after a disruption on W24 (feed +2 min overrun + a day-5 feed turned into a passage): "
          f"median {rp['median_ms']:.0f} ms, max {rp['max_ms']:.0f} ms, {rp['feasible']}/{rp['trials']} feasible, "
          f"mean cadence error {rp['mean_cadence_error_s']:.1f} s; dissociation +2 min in the passage pipeline "
          f"(commit=started): median {rp['passage_overrun']['median_ms']:.0f} ms, "
          f"{rp['passage_overrun']['feasible']}/{rp['passage_overrun']['trials']} feasible")
    if sw:
        full = sw["full_planner_at_n"]
        print(f"capacity sweep (w24 cell, 14-day cadence): {sw['plates_per_liquid_handler']} plates per liquid "
              f"handler (search {sw['search_s']:.1f} s; full planner at n: {full['status']} in {full['seconds']:.1f} s, "
              f"cadence error mean {full['mean_cadence_error_s']:.1f} s; at n+1: "
              f"{sw['full_planner_at_n_plus_1']['status']} within {sw['full_planner_at_n_plus_1']['time_limit_s']:.0f} s)"
              + (f"; through the engine: {sw['engine_at_n']['status']}, {sw['engine_at_n']['window_missed']} "
                 f"window-missed, {sw['engine_at_n']['wall_s']:.1f} s" if "engine_at_n" in sw else ""))
    path = write_json("campaign", {
        "repeat": repeat, "cpsat": args.cpsat, "W24": w24, "W96": w96, "sweep": sw,
        "targets": {"W24": {"violations": 0, "mean_cadence_error_s": 30, "max_cadence_error_s": 300, "plan_s": 2.0,
                            "engine_wall_s": 5.0},
                    "W96": {"violations": 0, "engine_wall_s": 60.0, "peak_mb": 500},
                    "replan_median_ms": 200, "plates_per_liquid_handler": 100},
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
