"""The ``cellwright`` command.

Fast to start: nothing heavy is imported until a command runs. Exit codes: 0 success,
1 the run failed, 2 invalid input (protocol, workcell, arguments), 3 infeasible plan.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli_common import (
    DEFAULT_DB,
    JsonOpt,
    OperatorOpt,
    ParamOpt,
    WorkcellOpt,
    app,
    die,
    finish,
    finish_campaign,
    load_campaign_or_die,
    operator_identity,
    overrides,
)

def _load(protocol: Path, workcell: Path | None, params: list[str] | None) -> tuple[Any, Any]:
    from drivers.errors import ConfigurationError
    from orchestrator.protocol import ProtocolErrors, load_protocol
    from orchestrator.workcell import load_workcell

    given = overrides(params)
    try:
        cell = load_workcell(workcell)
    except ConfigurationError as exc:
        die(str(exc))
    try:
        graph = load_protocol(protocol, given, workcell=cell)
    except ProtocolErrors as exc:
        die(str(exc))
    _preflight(graph, cell)
    return cell, graph


def _preflight(graph: Any, cell: Any) -> None:
    from orchestrator.preflight import preflight

    problems = preflight(graph, cell)
    if problems:
        die("\n".join(problems))


def _mention_unfinished(db: Path) -> None:
    """Refuse a database another engine is running on; say so when it holds runs that
    were never finished (after a crash or a pause)."""
    if not db.exists():
        return
    from orchestrator.runner import unfinished_runs
    from orchestrator.store import Store, StoreError

    try:
        store = Store(db)
    except StoreError as exc:
        die(str(exc))
    from orchestrator.store.redo import engine_holds

    try:
        if engine_holds(store.redo_path):  # probed, not claimed: the run claims it itself
            raise store.busy_error()
        runs = unfinished_runs(store)
    except StoreError as exc:
        store.close()
        die(str(exc), code=1)
    store.close()
    if len(runs) > 3:
        typer.echo(f"note: {db} holds {len(runs)} unfinished runs ({runs[0]['run_id']} … {runs[-1]['run_id']}); "
                   f"continue them with `cellwright resume --db {db}`", err=True)
        return
    for r in runs:
        typer.echo(f"note: {db} holds unfinished run {r['run_id']} ({r['protocol']}, {r['status']}"
                   f"{': ' + r['detail'] if r['detail'] else ''}); continue it with "
                   f"`cellwright resume {r['run_id']} --db {db}`", err=True)


@app.command()
def validate(
    protocol: Annotated[Path, typer.Argument(help="protocol YAML file")],
    workcell: WorkcellOpt = None,
    param: ParamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a protocol (and its includes) against the workcell; report every problem as path:line:col."""
    from drivers.errors import ConfigurationError
    from orchestrator.protocol import ProtocolErrors, load_protocol
    from orchestrator.workcell import load_workcell

    from orchestrator.preflight import preflight

    try:
        cell = load_workcell(workcell)
        graph = load_protocol(protocol, overrides(param), workcell=cell)
        problems = preflight(graph, cell)
        if problems:
            raise ConfigurationError("\n".join(problems))
    except (ProtocolErrors, ConfigurationError) as exc:
        lines = str(exc).splitlines()
        if as_json:
            typer.echo(json.dumps({"valid": False, "errors": lines}, indent=2))
        else:
            typer.echo(str(exc), err=True)
            typer.echo(f"{len(lines)} problem(s) found", err=True)
        raise typer.Exit(2) from None
    steps = graph.walk()
    if as_json:
        typer.echo(json.dumps({"valid": True, "protocol": graph.name, "version": graph.version,
                               "content_hash": graph.content_hash, "steps": len(steps),
                               "parameters": dict(graph.parameters)}, indent=2, default=str))
    else:
        typer.echo(f"{protocol}: valid — {graph.name} {graph.version}, {len(steps)} steps, sha256 {graph.content_hash[:12]}")


@app.command()
def run(
    protocol: Annotated[Path, typer.Argument(help="protocol or campaign YAML file")],
    workcell: WorkcellOpt = None,
    param: ParamOpt = None,
    clock: Annotated[str, typer.Option(help="virtual (simulation) or wall (hardware)")] = "virtual",
    seed: Annotated[int, typer.Option(help="simulator seed")] = 0,
    db: Annotated[Path, typer.Option(help="SQLite database (env CELLWRIGHT_DB)")] = DEFAULT_DB,
    log_dir: Annotated[Path, typer.Option(help="where per-run JSON-lines logs go")] = Path("var/logs"),
    operator: OperatorOpt = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every step on the terminal")] = False,
    planned: Annotated[bool, typer.Option("--plan/--no-plan", help="campaigns: follow a plan (default) or run greedily")] = True,
    time_limit: Annotated[float, typer.Option("--time-limit", help="campaigns: planner budget, seconds")] = 10.0,
    follow_branches: Annotated[bool, typer.Option("--follow-branches", help="campaigns: follow the plan even "
                                                  "when steps depend on measurements (re-plans at each branch)")] = False,
) -> None:
    """Run a protocol (or a campaign file of many runs) on the workcell and print a summary."""
    if clock not in ("virtual", "wall"):
        die(f"--clock: expected 'virtual' or 'wall', got {clock!r}")
    who = operator_identity(operator)
    from orchestrator.campaign import is_campaign

    campaign = is_campaign(protocol)
    if campaign:
        if param:
            die("-p applies to protocols; a campaign sets parameters per run in its file")
        plan = load_campaign_or_die(protocol, workcell)
        graphs = [r.graph for r in plan.runs]
    else:
        cell, graph = _load(protocol, workcell, param)
        graphs = [graph]
    from orchestrator import logs
    from orchestrator.console import ProgressView
    from orchestrator.runner import run_campaign, run_protocol

    _mention_unfinished(db)
    log_file = log_dir / f"run-{os.getpid()}.jsonl"
    handle = logs.configure(log_file, "info" if verbose else "warning")
    view = None if as_json or not sys.stderr.isatty() else ProgressView(graphs)
    from orchestrator.store import StoreError

    try:
        if view:
            view.start()
        events = view.on_event if view else None
        if campaign:
            outcome = run_campaign(plan, clock=clock, seed=seed, db=str(db), operator=who, on_event=events,
                                   on_start=view.on_start if view else None, planned=planned, time_limit=time_limit,
                                   follow_branches=follow_branches)
        else:
            result = run_protocol(graph, workcell=cell, clock=clock, seed=seed, db=str(db), operator=who,
                                  on_event=events, on_start=view.on_start if view else None)
    except StoreError as exc:  # the database is busy or broken: nothing was run
        die(str(exc), code=1)
    finally:
        if view:
            view.stop()
        logs.close(handle)
    first = outcome.runs[0].run_id if campaign else result.run_id
    final_log = log_dir / f"{first}.jsonl"
    if log_file.exists():
        os.replace(log_file, final_log)
    if campaign:
        finish_campaign({**outcome.summary(), "log": str(final_log)}, as_json)
    finish({**result.summary, "db": str(db), "log": str(final_log)}, as_json)


def main() -> None:
    """Console-script entry point."""
    from orchestrator import cli_plates, cli_records, cli_runs  # noqa: F401  (register their commands)

    app()


if __name__ == "__main__":
    main()
