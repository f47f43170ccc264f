"""Resume time: a 24-plate, 14-day campaign killed in the middle (like kill -9, at an
intent), then resumed; measured from the resume call to the moment every run has its
state rebuilt from the journal and is ready to continue. Median over repeats, each on a
fresh copy of the crashed database.

    python bench/resume.py [--plates 24] [--repeat 5]

Target: under 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class _Ready(BaseException):  # not an Exception: the engine must not report it as a run failure
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plates", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from orchestrator.runner import resume_runs, unfinished_runs
    from orchestrator.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "c.yaml").write_text(
            f"campaign: resume-bench\nruns:\n  - protocol: {ROOT}/protocols/ipsc-maintenance.yaml\n"
            f"    plates: {args.plates}\n    parameters: {{days: 14}}\n    stagger: 10m\n")
        env = {**os.environ, "CELLWRIGHT_OPERATOR": "resume-bench",
               "CELLWRIGHT_CRASH_AFTER": f"step.running:{args.plates * 100}"}
        out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", "c.yaml", "--db", "c.db", "--json"],
                             cwd=work, env=env, capture_output=True, text=True)
        if out.returncode != 137:
            raise SystemExit(f"the campaign was not killed as planned (exit {out.returncode}): {out.stderr[-500:]}")
        store = Store(work / "c.db")
        todo = [r["run_id"] for r in unfinished_runs(store)]
        events = store.query("SELECT COUNT(*) AS n FROM events")[0]["n"]
        store.close()
        # The journal records where the simulated world lives (absolute path), so each
        # trial puts the crashed files back in place before resuming.
        crashed = work / "crashed"
        crashed.mkdir()
        files = [p for p in work.iterdir() if p.name.startswith("c.")]
        for p in files:
            shutil.copy(p, crashed / p.name)
        times = []
        for i in range(args.repeat):
            for p in files:
                shutil.copy(crashed / p.name, p)
            ready: dict[str, float] = {}
            started = time.perf_counter()

            def on_event(run_id: str, kind: str, detail: str) -> None:
                if kind == "restored":
                    ready[run_id] = time.perf_counter() - started
                    if len(ready) == len(todo):
                        raise _Ready

            try:
                resume_runs(todo, db=work / "c.db", operator="bench", on_event=on_event)
            except _Ready:
                pass
            times.append(max(ready.values()))
    med = statistics.median(times)
    print(table(f"resume: {len(todo)} runs, {events} events in the journal", ["what", "seconds"],
                [["median", med], ["min", min(times)], ["max", max(times)], ["target", 1.0]]))
    print(f"wrote {write_json('resume', {'runs': len(todo), 'events': events, 'times_s': times, 'median_s': med, 'target_s': 1.0})}")


if __name__ == "__main__":
    main()
