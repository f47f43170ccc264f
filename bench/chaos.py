"""Chaos bench: kill -9 a simulated multi-plate campaign at random times, resume, and
check that nothing was lost or repeated.

    python bench/chaos.py [--trials 50] [--seed 1] [--workload bench/workloads/chaos.yaml]

Each trial runs the campaign in a subprocess, kills it (SIGKILL) at a random moment
between its runs being recorded and their end (measured on an uninterrupted reference
run), then resumes until every run is finished. A step whose outcome only a person can judge
is confirmed by a scripted operator who "looks at the plate" (reads the simulated
world's effect log). Reported per trial and in total: steps lost, non-repeatable steps
repeated, in-doubt steps and how each was resolved, audit verification, resume time.
Targets: 0 lost, 0 repeated, audit verifies every time.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLWRIGHT_CRASH")}
    env["CELLWRIGHT_OPERATOR"] = "chaos-bench"
    return env


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd, env=_env(), text=True,
                          capture_output=True, timeout=600)


def _recorded(db: Path) -> bool:
    """True once the campaign's runs are in the database (planning is over)."""
    if not db.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            return bool(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def _start(workload: Path, db: Path, work: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start the campaign; return the process once its runs are recorded, and when that was."""
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "run", str(workload), "--db", str(db),
                             "--json"], cwd=work, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.perf_counter() + 60
    while not _recorded(db) and proc.poll() is None and time.perf_counter() < deadline:
        time.sleep(0.005)
    return proc, time.perf_counter()


def _reference(workload: Path, work: Path) -> tuple[float, dict[str, int]]:
    """Execution time after the runs are recorded, and steps per run, of an uninterrupted run."""
    db = work / "ref.db"
    proc, recorded = _start(workload, db, work)
    if proc.wait() != 0:
        raise SystemExit(f"reference run failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    executing = time.perf_counter() - recorded
    from orchestrator.store import Store

    store = Store(db)
    steps = {r["run_id"]: 0 for r in store.runs()}
    for s in store.query("SELECT run_id FROM steps WHERE kind = 'action' AND status = 'done'"):
        steps[s["run_id"]] += 1
    store.close()
    return executing, steps


def _operator_confirms(db: Path, work: Path) -> int:
    """Confirm every step waiting for a person, by looking at the simulated plate."""
    from orchestrator.engine.history import IN_DOUBT
    from orchestrator.store import Store
    from simulators.effects import load_effects

    store = Store(db)
    waiting = [(s["run_id"], s["key"]) for s in store.query("SELECT run_id, key, status FROM steps")
               if s["status"] in IN_DOUBT]
    store.close()
    effects = [e for path in work.glob("c.sim-*.pkl") for e in load_effects(path)]
    for run_id, key in waiting:
        happened = any(e["step"] and e["step"].startswith(f"{run_id}:{key}:") for e in effects)
        out = _cli("confirm", run_id, key, "--done" if happened else "--redo", "--reason",
                   "inspected the plate", "--db", str(db), cwd=work)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
    return len(waiting)


def trial(workload: Path, work: Path, delay: float, classes: dict[str, str]) -> dict:
    from orchestrator.runner import resume_runs, unfinished_runs
    from orchestrator.store import Store
    from orchestrator.store.audit import verify
    from simulators.effects import load_effects, repeated_steps

    db = work / "c.db"
    proc, _ = _start(workload, db, work)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    restarted = False
    store = Store(db) if db.exists() else None
    recovered = store.recovered if store is not None else 0  # replayed from the redo log on this open
    if store is None or not store.runs():
        # Killed before the campaign was recorded: nothing started; the operator starts it again.
        if store is not None:
            store.close()
        restarted = True
        out = _cli("run", str(workload), "--db", str(db), "--json", cwd=work)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
    elif store is not None:
        store.close()
    resumes, confirmations, resume_times = 0, 0, []
    while True:
        store = Store(db)
        todo = [r["run_id"] for r in unfinished_runs(store)]
        store.close()
        if not todo:
            break
        resumes += 1
        if resumes > 5:
            raise RuntimeError(f"{work}: still unfinished after 5 resumes: {todo}")
        marks: dict[str, float] = {}
        started = time.perf_counter()

        def on_event(run_id: str, kind: str, detail: str) -> None:
            if kind == "restored":
                marks[run_id] = time.perf_counter() - started

        results = resume_runs(todo, db=db, operator="chaos-bench", on_event=on_event)
        if marks:
            resume_times.append(max(marks.values()))
        if any(r.summary["status"] == "paused" for r in results):
            confirmations += _operator_confirms(db, work)
    store = Store(db)
    runs = store.runs()
    steps = store.query("SELECT run_id, key, kind, status FROM steps")
    deviations = store.query("SELECT detail FROM deviations WHERE kind = 'in-doubt'")
    store.close()
    done = Counter(s["run_id"] for s in steps if s["kind"] == "action" and s["status"] == "done")
    unresolved = sum(1 for s in steps if s["status"] not in ("done", "skipped"))
    effects = [e for path in work.glob("c.sim-*.pkl") for e in load_effects(path)]
    report = verify(db)
    resolutions = Counter(d["detail"].split("resolved: ", 1)[1].split(" — ")[0] for d in deviations)
    return {
        "delay_s": round(delay, 3), "killed": killed, "restarted_unrecorded": restarted, "resumes": resumes,
        "recovered": recovered,
        "completed": all(r["status"] == "completed" for r in runs),
        "steps_done": dict(done), "unresolved_steps": unresolved,
        "repeated": repeated_steps(effects, classes),
        "in_doubt": len(deviations), "resolutions": dict(resolutions), "operator_confirmations": confirmations,
        "audit_ok": report.ok, "audit_events": report.events,
        "resume_s": max(resume_times) if resume_times else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workload", type=Path, default=ROOT / "bench" / "workloads" / "chaos.yaml")
    args = parser.parse_args()
    from orchestrator.workcell import load_workcell

    classes = load_workcell().instrument_classes()
    rng = random.Random(args.seed)
    workload = args.workload.resolve()
    with tempfile.TemporaryDirectory(prefix="cellwright-chaos-") as tmp:
        ref_wall, ref_steps = _reference(workload, Path(tmp))
    print(f"reference run: executes {ref_wall:.2f} s wall once recorded, steps per run {ref_steps}")
    trials = []
    for n in range(args.trials):
        with tempfile.TemporaryDirectory(prefix="cellwright-chaos-") as tmp:
            delay = rng.uniform(0.0, ref_wall)  # after the runs are recorded, before they end
            t = trial(workload, Path(tmp), delay, classes)
        lost = sum(max(0, ref_steps[r] - t["steps_done"].get(r, 0)) for r in ref_steps) + t["unresolved_steps"]
        t["steps_lost"] = lost
        trials.append(t)
        print(f"trial {n + 1:3d}: kill at {t['delay_s']:.2f} s{'' if t['killed'] else ' (finished first)'}, "
              f"in doubt {t['in_doubt']}, lost {lost}, repeated {len(t['repeated'])}, audit "
              f"{'ok' if t['audit_ok'] else 'BROKEN'}, resume {t['resume_s'] or 0:.3f} s", flush=True)
    resolutions: Counter[str] = Counter()
    for t in trials:
        resolutions.update(t["resolutions"])
    resume = sorted(t["resume_s"] for t in trials if t["resume_s"] is not None)
    totals = {
        "trials": len(trials), "killed": sum(t["killed"] for t in trials),
        # killed while runs were unfinished (the others were killed while the finished
        # campaign was being summarised): these needed a resume
        "killed_mid_run": sum(t["resumes"] > 0 for t in trials),
        "events_recovered_from_redo_log": sum(t.get("recovered", 0) for t in trials),
        "steps_lost": sum(t["steps_lost"] for t in trials),
        "non_repeatable_repeated": sum(len(t["repeated"]) for t in trials),
        "in_doubt_steps": sum(t["in_doubt"] for t in trials), "resolutions": dict(resolutions),
        "operator_confirmations": sum(t["operator_confirmations"] for t in trials),
        "audit_verified": sum(t["audit_ok"] for t in trials),
        "runs_completed": sum(t["completed"] for t in trials),
        "resume_median_s": resume[len(resume) // 2] if resume else None, "resume_max_s": resume[-1] if resume else None,
    }
    rows = [[k, v if not isinstance(v, dict) else ", ".join(f"{a}: {b}" for a, b in v.items())]
            for k, v in totals.items()]
    print(table(f"chaos: {workload.name}, {args.trials} trials", ["metric", "value"], rows))
    print(f"wrote {write_json('chaos', {'workload': str(workload), 'totals': totals, 'trials': trials})}")


if __name__ == "__main__":
    main()
