"""Run the benchmarks quickly, one after the other, and summarise.

    python bench/run_all.py [--only foundation,campaign,jobshop,chaos]

Runs (each in its own process, quick settings):
  foundation.py --repeat 1
  campaign.py --quick
  jobshop.py --limit 0.2
  chaos.py --trials 10
  journal.py --repeat 3
  resume.py --repeat 3

Each benchmark prints its own table and (re)writes its ``bench/results/<name>.json``
(with these quick settings); this script writes ``bench/results/run_all.json`` with the
exit code and wall time of each. Exit code: 0 when every benchmark ran, else 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_json

HERE = Path(__file__).resolve().parent
BENCHES: dict[str, list[str]] = {
    "foundation": ["foundation.py", "--repeat", "1"],
    "campaign": ["campaign.py", "--quick"],
    "jobshop": ["jobshop.py", "--limit", "0.2"],
    "chaos": ["chaos.py", "--trials", "10"],
    "journal": ["journal.py", "--repeat", "3"],
    "resume": ["resume.py", "--repeat", "3"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(BENCHES))
    args = parser.parse_args()
    chosen = [b.strip() for b in args.only.split(",") if b.strip()] or list(BENCHES)
    unknown = [b for b in chosen if b not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}")
    rows, results = [], {}
    for name in chosen:
        script, *extra = BENCHES[name]
        print(f"\n=== {name}: {' '.join([script, *extra])} ===", flush=True)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / script), *extra], check=False)
        wall = time.perf_counter() - t
        results[name] = {"command": [script, *extra], "exit_code": proc.returncode, "wall_s": wall}
        rows.append([name, " ".join(extra), proc.returncode, wall])
    print()
    print(table("benchmarks (quick settings)", ["bench", "args", "exit", "wall s"], rows))
    path = write_json("run_all", {"benches": results})
    print(f"wrote {path}")
    sys.exit(0 if all(r["exit_code"] == 0 for r in results.values()) else 1)


if __name__ == "__main__":
    main()
