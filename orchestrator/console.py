"""What people see on a terminal: a live progress view and the end-of-run summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from drivers.actions import catalogue
from orchestrator.protocol.graph import ActionNode, GroupNode, Node, ProtocolGraph, RepeatNode, WaitNode


def expected_seconds(nodes: tuple[Node, ...]) -> float:
    """Rough expected duration (s) of a step list: nominal action durations, waits, repeats."""
    total = 0.0
    info = catalogue()
    for node in nodes:
        if isinstance(node, ActionNode):
            entry = info.get(f"{node.instrument_class}.{node.action}")
            total += entry.duration_s if entry else 0.0
        elif isinstance(node, WaitNode):
            total += node.seconds
        elif isinstance(node, RepeatNode):
            body = expected_seconds(node.steps)
            times = node.times or 1
            total += node.every_s * (times - 1) + body if node.every_s else body * times
        elif isinstance(node, GroupNode):
            total += expected_seconds(node.steps)
    return total


class ProgressView:
    """A rich progress bar over simulated time, with the current step and deviations."""

    def __init__(self, graphs: list[ProtocolGraph]) -> None:
        self.console = Console(stderr=True)
        self.total = max(max(expected_seconds(g.steps) for g in graphs), 1.0)
        name = graphs[0].name if len(graphs) == 1 else f"{len(graphs)} runs"
        self.progress = Progress(
            TextColumn("[bold]{task.fields[run]}[/]"),
            BarColumn(),
            TextColumn("day {task.fields[day]:>5}"),
            TextColumn("{task.fields[step]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task("run", total=self.total, run=name, day="0.00", step="starting")
        self.engine: Any = None

    def start(self) -> None:
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def on_start(self, engine: Any, run_ids: str | list[str]) -> None:
        self.engine = engine
        if isinstance(run_ids, str):
            self.progress.update(self.task, run=f"{run_ids} {engine.runs[run_ids].graph.name}")

    def on_event(self, run_id: str, kind: str, detail: str) -> None:
        now = self.engine.clock.now() if self.engine else 0.0
        fields: dict[str, Any] = {"day": f"{now / 86400:.2f}"}
        if kind == "step":
            fields["step"] = f"{run_id} {detail}"
        elif kind == "deviation":
            self.console.print(f"[yellow]deviation[/] {detail}")
        elif kind == "step-failed":
            self.console.print(f"[red]failed[/] {detail}")
        self.progress.update(self.task, completed=min(now, self.total), **fields)


def print_summary(summary: dict[str, Any]) -> None:
    """Print the end-of-run summary table."""
    console = Console()
    status = summary["status"]
    colour = {"completed": "green", "failed": "red"}.get(status, "yellow")
    console.print(f"\n[bold]{summary['protocol']} {summary['version']}[/] run {summary['run_id']}: "
                  f"[{colour}]{status}[/]" + (f" — {summary['error']}" if summary.get("error") else ""))
    t = Table(show_header=False, box=None)
    t.add_row("steps done / failed / skipped",
              f"{summary['steps_done']} / {summary['steps_failed']} / {summary['steps_skipped']}")
    t.add_row("plate moves", str(summary["transport_moves"]))
    t.add_row("passages", str(summary["passages"]))
    sim = summary.get("sim_seconds") or 0.0
    t.add_row("simulated time", f"{sim / 86400:.2f} days ({sim:,.0f} s)")
    t.add_row("wall time", f"{summary['wall_seconds']:.2f} s")
    t.add_row("QC", summary["qc_status"])
    t.add_row("deviations", str(len(summary["deviations"])))
    t.add_row("database", summary.get("db", ""))
    t.add_row("log", summary.get("log", ""))
    console.print(t)
    conf = [m for m in summary["measurements"] if "mean" in m["values"] and m["name"].startswith("confluence")]
    if conf:
        ct = Table(title="confluence per imaging")
        ct.add_column("day", justify="right")
        ct.add_column("step")
        ct.add_column("mean confluence", justify="right")
        for m in conf:
            ct.add_row(f"{m['day']:.2f}", m["step"], f"{m['values']['mean']:.1%}")
        console.print(ct)
    if summary["qc"]:
        qt = Table(title="QC verdicts")
        for col in ("step", "criterion", "value", "verdict"):
            qt.add_column(col)
        for q in summary["qc"]:
            value = "-" if q["value"] is None else f"{q['value']:.4g}"
            qt.add_row(q["step"], q["criterion"], value, "[green]pass[/]" if q["passed"] else "[red]fail[/]")
        console.print(qt)
    for d in summary["deviations"][:10]:
        console.print(f"[yellow]deviation[/] {d['step']}: {d['kind']} — {d['detail']}")


def print_campaign(summary: dict[str, Any]) -> None:
    """Print a campaign's totals and one line per run."""
    console = Console()
    colour = {"completed": "green", "failed": "red"}.get(summary["status"], "yellow")
    console.print(f"\n[bold]campaign {summary['campaign']}[/]: [{colour}]{summary['status']}[/] — "
                  f"{summary['completed']}/{summary['runs']} runs completed, {summary['steps_done']} steps, "
                  f"{summary['transport_moves']} plate moves, {summary['deviations']} deviations, "
                  f"{(summary['sim_seconds'] or 0) / 86400:.2f} simulated days in {summary['wall_seconds']:.2f} s")
    t = Table()
    for col in ("run", "protocol", "status", "steps", "passages", "QC", "deviations"):
        t.add_column(col)
    for r in summary["run_summaries"]:
        t.add_row(r["run_id"], r["protocol"], r["status"], str(r["steps_done"]), str(r["passages"]), r["qc_status"],
                  str(len(r["deviations"])))
    console.print(t)
    console.print(f"database: {summary['db']}   log: {summary.get('log', '')}")
