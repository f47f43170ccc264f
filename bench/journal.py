"""Journal overhead: the same campaign with its journal in an SQLite file (WAL,
synchronous=NORMAL, as for virtual-time runs) vs an in-memory SQLite store, in the same
process, alternating, medians over repeats; and with the simulated world persisted too.

    python bench/journal.py [--plates 24] [--days 14] [--repeat 9]

Target: file journal within 10 % of the in-memory store. The overhead is the median of the
paired ratios (each file run against the memory run just before it, so slow drifts of a
shared machine cancel); the ratio of medians and of minimums are reported beside it.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plates", type=int, default=24)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    from orchestrator import runner
    from orchestrator.campaign import load_campaign
    from orchestrator.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "c.yaml"
        root = Path(__file__).resolve().parents[1]
        spec.write_text(f"campaign: journal-bench\nruns:\n  - protocol: {root}/protocols/ipsc-maintenance.yaml\n"
                        f"    plates: {args.plates}\n    parameters: {{days: {args.days}}}\n    stagger: 10m\n")
        plan = load_campaign(spec)
        sim_state_for = runner.sim_state_for
        times: dict[str, list[float]] = {"memory": [], "file": [], "file+sim-world": []}
        events = 0
        for i in range(args.repeat):
            for mode in times:  # alternate, so machine noise hits every mode alike
                db = ":memory:" if mode == "memory" else str(Path(tmp) / f"{mode}-{i}.db")
                # The simulated world is persisted beside a file database (so simulated runs
                # survive a crash); "file" measures the journal alone, "file+sim-world" both.
                runner.sim_state_for = sim_state_for if mode == "file+sim-world" else (lambda db, label: None)
                try:
                    gc.collect()
                    t = time.perf_counter()
                    result = runner.run_campaign(plan, db=db)
                    times[mode].append(time.perf_counter() - t)
                finally:
                    runner.sim_state_for = sim_state_for
                if mode == "file" and i == 0:
                    store = Store(db)
                    events = store.query("SELECT COUNT(*) AS n FROM events")[0]["n"]
                    store.close()
                assert result.summary()["status"] == "completed"
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = {k: statistics.median(f / m for f, m in zip(v, times["memory"], strict=True)) - 1 for k, v in times.items()}
    best = {k: min(v) / min(times["memory"]) - 1 for k, v in times.items()}
    rows = [[k, med[k], min(times[k]), f"{(med[k] / med['memory'] - 1) * 100:+.1f} %", f"{best[k] * 100:+.1f} %",
             f"{paired[k] * 100:+.1f} %"] for k in times]
    print(table(f"journal overhead: {args.plates} plates x {args.days} days, {events} events, {args.repeat} repeats",
                ["store", "median s", "min s", "median ratio", "min ratio", "paired (target < 10 %)"], rows))
    print(f"wrote {write_json('journal', {'plates': args.plates, 'days': args.days, 'events': events, 'times': times, 'median_s': med, 'overhead_journal': paired['file'], 'overhead_journal_and_world': paired['file+sim-world'], 'overhead_of_medians': med['file'] / med['memory'] - 1, 'overhead_of_minimums': best['file'], 'target_overhead': 0.10})}")

if __name__ == "__main__":
    main()
