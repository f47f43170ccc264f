"""Body of ``cellwright plan CAMPAIGN [--workcell W] [--json] [--time-limit S] [--cpsat] [--out DIR]``.

Exit codes: 0 a feasible plan, 3 infeasible (proved) or no plan found within the time
limit, 2 invalid input (a located message on stderr). A single protocol file is planned
as a campaign of one run.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("var/plans")


def _load(path: Path, workcell: Path | None) -> Any:
    from orchestrator.campaign import Campaign, CampaignRun, is_campaign, load_campaign
    from orchestrator.protocol import load_protocol
    from orchestrator.workcell import load_workcell

    if is_campaign(path):
        return load_campaign(path, workcell)
    cell = load_workcell(workcell)
    graph = load_protocol(path, {}, workcell=cell)
    return Campaign(graph.name, graph.title, str(path), cell, (CampaignRun(graph, 0.0, 0, 0, 0),))


def _fmt_s(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    x = float(x)
    if abs(x) >= 86400:
        return f"{x / 86400:.2f} d ({x:.0f} s)"
    if abs(x) >= 3600:
        return f"{x / 3600:.2f} h"
    return f"{x:.1f} s"


def print_plan(summary: dict[str, Any], gantt: Path | None) -> None:
    """The plan summary for people (rich tables)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    ok = summary["feasible"]
    table = Table(title=f"plan of campaign {summary['campaign']} on {summary['workcell']}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("status", f"[{'green' if ok else 'red'}]{summary['status']}[/]"
                  + ("" if ok else " — no plan keeps every window"))
    table.add_row("runs / operations", f"{summary['runs']} / {summary['operations']}")
    table.add_row("makespan", _fmt_s(summary["makespan_s"]))
    table.add_row("lower bound", _fmt_s(summary["lower_bound_s"]) + (
        f"  (ratio {summary['ratio']:.3f})" if summary.get("ratio") else ""))
    table.add_row("cadence error mean / max", f"{_fmt_s(summary['mean_cadence_error_s'])} / "
                                                 f"{_fmt_s(summary['max_cadence_error_s'])}")
    table.add_row("plates out at once", f"{summary['max_plates_out']} (limit {summary['plates_out_limit']})")
    table.add_row("planning time", f"{summary['plan_seconds']:.2f} s ({summary['solver']})")
    pf = summary.get("predicted_false") or []
    if pf:
        table.add_row("measurement-dependent", f"{len(pf)} step(s) predicted not to run; planned when they "
                                               f"happen (re-planning), e.g. {pf[0]['run']} {pf[0]['step']}")
    if gantt is not None:
        table.add_row("Gantt chart", str(gantt))
    console.print(table)
    if not ok and summary.get("violations") and not summary.get("explanation"):
        for v in summary["violations"][:10]:
            console.print(f"  [red]✗[/] {v}")
    exp = summary.get("explanation")
    if exp:
        console.print(f"\n[bold red]{exp['headline']}[/]")
        for c in exp.get("conflicts", [])[:5]:
            console.print(f"  [red]proved:[/] {c[:300]}")
        if exp.get("busiest"):
            console.print(f"  [bold]saturated:[/] {exp['busiest']['text']}")
        if exp.get("unmet"):
            console.print(f"  [bold]constraints not met[/] ({exp.get('unmet_total', len(exp['unmet']))} in the best "
                          f"placement found):")
            for u in exp["unmet"][:10]:
                console.print(f"    ✗ {u}")
        util = exp.get("utilisation") or {}
        if util:
            t = Table(title="busiest day per resource (best placement found)")
            t.add_column("resource")
            t.add_column("peak day")
            t.add_column("utilisation", justify="right")
            for r, days in sorted(util.items(), key=lambda kv: -max(kv[1], default=0.0))[:8]:
                if days:
                    d = max(range(len(days)), key=days.__getitem__)
                    t.add_row(r, str(d), f"{100 * days[d]:.0f} %")
            console.print(t)
        if exp.get("suggestions"):
            console.print("  [bold]nearest changes (computed):[/]")
            for s in exp["suggestions"]:
                console.print(f"    → {s['text']}")
        for n in exp.get("not_tried", []):
            console.print(f"    (not tried: {n})")


def plan_command(path: Path, workcell: Path | None, as_json: bool, time_limit: float, cpsat: bool,
                 out: Path | None) -> int:
    """Plan a campaign (or one protocol) and report it.

    Returns:
        0 feasible, 3 infeasible or not found within ``time_limit``, 2 invalid input.
    """
    from drivers.errors import ConfigurationError
    from orchestrator import logs
    from orchestrator.planner import PlannerUnavailable, ProblemError
    from orchestrator.protocol import ProtocolErrors

    from .gantt import write_plan_html
    from .plan import plan_campaign

    logs.ensure_configured()
    if time_limit <= 0:
        print("<command line>: --time-limit: must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        campaign = _load(path, workcell)
    except (ConfigurationError, ProtocolErrors) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        cp = plan_campaign(campaign, time_limit=time_limit, use_cpsat=cpsat)
    except PlannerUnavailable as exc:
        print(f"--cpsat: {exc}", file=sys.stderr)
        return 2
    except (ConfigurationError, ProblemError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 2
    summary = cp.summary()
    out_dir = out or DEFAULT_OUT
    gantt: Path | None = None
    try:
        gantt = write_plan_html(out_dir / f"{campaign.name}-plan.html", summary, cp.gantt_rows())
        (out_dir / f"{campaign.name}-plan.json").write_text(json.dumps({
            **summary, "starts": {f"R{i + 1:04d}": s for i, s in cp.starts.items()},
            "releases": {f"R{i + 1:04d}": r for i, r in cp.releases.items()}}, indent=1, default=str))
    except OSError as exc:
        print(f"{out_dir}: cannot write the plan: {exc.strerror}", file=sys.stderr)
    if as_json:
        print(json.dumps({**summary, "gantt": str(gantt) if gantt else None}, indent=2, default=str))
    else:
        print_plan(summary, gantt)
    return 0 if cp.feasible else 3
