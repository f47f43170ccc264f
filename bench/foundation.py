"""Foundation benchmarks: a 14-day single-plate run through engine and simulators, and
how long `cellwright --help` takes (opentrons must not be imported for it).

    python bench/foundation.py [--repeat 5]

Targets (issue: foundation): 14-day run < 5 s wall; `cellwright --help` < 0.5 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import stats, table, timed, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from orchestrator.runner import run_protocol

    protocol = ROOT / "protocols" / "ipsc-maintenance.yaml"
    run_times, result = timed(lambda: run_protocol(protocol, overrides={"days": "14"}, seed=0), args.repeat)
    exe = Path(sys.executable).with_name("cellwright")
    help_times, _ = timed(lambda: subprocess.run([str(exe), "--help"], capture_output=True, check=True), args.repeat)
    baseline, _ = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], capture_output=True, check=True),
                        args.repeat)
    probe = subprocess.run([sys.executable, "-c", "import sys, orchestrator.cli; "
                            "print('opentrons' in sys.modules, 'pylabrobot' in sys.modules)"],
                           capture_output=True, text=True, check=True).stdout.split()
    s = result.summary
    run_stats, help_stats, base_stats = stats(run_times), stats(help_times), stats(baseline)
    rows = [
        ["14-day run, 1 plate (virtual time)", run_stats["median_s"], "5.0", f"{s['steps_done']} steps, "
         f"{s['transport_moves']} moves, {s['sim_days']} sim days"],
        ["cellwright --help", help_stats["median_s"], "0.5", f"bare python start {base_stats['median_s']:.3f} s"],
    ]
    print(table(f"foundation (median of {args.repeat})", ["what", "wall s", "target s", "notes"], rows))
    print(f"opentrons imported by the CLI: {probe[0]}; pylabrobot: {probe[1]}")
    path = write_json("foundation", {
        "run_14_days": {**run_stats, "steps_done": s["steps_done"], "moves": s["transport_moves"],
                        "sim_seconds": s["sim_seconds"], "speedup_vs_real_time": s["sim_seconds"] / run_stats["median_s"]},
        "cli_help": help_stats, "python_startup": base_stats,
        "cli_imports_opentrons": probe[0] == "True", "cli_imports_pylabrobot": probe[1] == "True",
        "targets": {"run_14_days_s": 5.0, "cli_help_s": 0.5},
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
