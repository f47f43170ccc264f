"""The ``cellwright`` command.

Fast to start: nothing heavy is imported until a command runs. Exit codes: 0 success,
1 the run failed, 2 invalid input (protocol, workcell, arguments), 3 infeasible plan.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

app = typer.Typer(
    name="cellwright",
    help="Run declarative cell-culture and QC protocols on a workcell (simulated or real).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_DB = Path(os.environ.get("CELLWRIGHT_DB", "var/cellwright.db"))

WorkcellOpt = Annotated[Optional[Path], typer.Option("--workcell", "-w", help="workcell YAML (default: bundled simulated workcell)")]
ParamOpt = Annotated[Optional[list[str]], typer.Option("--param", "-p", help="parameter override name=value (repeatable)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")]


def _overrides(params: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in params or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            _die(f"<command line>: -p {item!r}: expected name=value")
        out[name.strip()] = value.strip()
    return out


def _die(message: str, code: int = 2) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _load(protocol: Path, workcell: Path | None, params: list[str] | None) -> tuple[Any, Any]:
    from drivers.errors import ConfigurationError
    from orchestrator.protocol import ProtocolErrors, load_protocol
    from orchestrator.workcell import load_workcell

    overrides = _overrides(params)
    try:
        cell = load_workcell(workcell)
    except ConfigurationError as exc:
        _die(str(exc))
    try:
        graph = load_protocol(protocol, overrides, workcell=cell)
    except ProtocolErrors as exc:
        _die(str(exc))
    _preflight(graph, cell)
    return cell, graph


def _preflight(graph: Any, cell: Any) -> None:
    from orchestrator.preflight import preflight

    problems = preflight(graph, cell)
    if problems:
        _die("\n".join(problems))


def _mention_unfinished(db: Path) -> None:
    """Say so when the database holds runs that were never finished (after a crash)."""
    if not db.exists():
        return
    from orchestrator.runner import unfinished_runs
    from orchestrator.store import Store, StoreError

    try:
        store = Store(db)
    except StoreError as exc:
        _die(str(exc))
    try:
        for r in unfinished_runs(store):
            typer.echo(f"note: {db} holds unfinished run {r['run_id']} ({r['protocol']}, {r['status']}"
                       f"{': ' + r['detail'] if r['detail'] else ''}); continue it with "
                       f"`cellwright resume {r['run_id']} --db {db}`", err=True)
    finally:
        store.close()


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
        graph = load_protocol(protocol, _overrides(param), workcell=cell)
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
        raise typer.Exit(2)
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
    operator: Annotated[Optional[str], typer.Option(help="who starts the run (env CELLWRIGHT_OPERATOR)")] = None,
    as_json: JsonOpt = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every step on the terminal")] = False,
) -> None:
    """Run a protocol (or a campaign file of many runs) on the workcell and print a summary."""
    if clock not in ("virtual", "wall"):
        _die(f"--clock: expected 'virtual' or 'wall', got {clock!r}")
    from orchestrator.campaign import is_campaign

    campaign = is_campaign(protocol)
    if campaign:
        if param:
            _die("-p applies to protocols; a campaign sets parameters per run in its file")
        plan = _load_campaign(protocol, workcell)
        graphs = [r.graph for r in plan.runs]
    else:
        cell, graph = _load(protocol, workcell, param)
        graphs = [graph]
    from orchestrator import logs
    from orchestrator.console import ProgressView
    from orchestrator.runner import run_campaign, run_protocol

    _mention_unfinished(db)
    who = operator or os.environ.get("CELLWRIGHT_OPERATOR") or os.environ.get("USER") or "unknown"
    log_file = log_dir / f"run-{os.getpid()}.jsonl"
    handle = logs.configure(log_file, "info" if verbose else "warning")
    view = None if as_json or not sys.stderr.isatty() else ProgressView(graphs)
    try:
        if view:
            view.start()
        events = view.on_event if view else None
        if campaign:
            outcome = run_campaign(plan, clock=clock, seed=seed, db=str(db), operator=who, on_event=events,
                                   on_start=view.on_start if view else None)
        else:
            result = run_protocol(graph, workcell=cell, clock=clock, seed=seed, db=str(db), operator=who,
                                  on_event=events, on_start=view.on_start if view else None)
    finally:
        if view:
            view.stop()
        if handle:
            handle.close()
    first = outcome.runs[0].run_id if campaign else result.run_id
    final_log = log_dir / f"{first}.jsonl"
    if log_file.exists():
        os.replace(log_file, final_log)
    if campaign:
        _finish_campaign({**outcome.summary(), "log": str(final_log)}, as_json)
    _finish({**result.summary, "db": str(db), "log": str(final_log)}, as_json)


def _load_campaign(path: Path, workcell: Path | None) -> Any:
    from drivers.errors import ConfigurationError
    from orchestrator.campaign import load_campaign

    try:
        return load_campaign(path, workcell)
    except ConfigurationError as exc:
        _die(str(exc))


def _finish_campaign(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        from orchestrator.console import print_campaign

        print_campaign(summary)
    raise typer.Exit({"completed": 0, "paused": 4}.get(summary["status"], 1))


OperatorOpt = Annotated[Optional[str], typer.Option("--operator", help="your identity (env CELLWRIGHT_OPERATOR); required")]
DbOpt = Annotated[Path, typer.Option("--db", help="SQLite database (env CELLWRIGHT_DB)")]


def _operator(given: str | None) -> str:
    who = (given or os.environ.get("CELLWRIGHT_OPERATOR") or "").strip()
    if not who:
        _die("refusing an anonymous change to a run: give --operator NAME or set CELLWRIGHT_OPERATOR")
    return who


def _open_store(db: Path) -> Any:
    from orchestrator.store import Store, StoreError

    if not db.exists():
        _die(f"{db}: no such database (give --db or set CELLWRIGHT_DB)")
    try:
        return Store(db)
    except StoreError as exc:
        _die(str(exc))


def _finish(summary: dict[str, Any], as_json: bool) -> None:
    from orchestrator.console import print_summary

    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        print_summary(summary)
        if summary["status"] == "paused":
            typer.echo(f"\nrun {summary['run_id']} is paused: {summary.get('error') or ''}\n"
                       f"continue with: cellwright resume {summary['run_id']} --db {summary.get('db')}", err=True)
    raise typer.Exit({"completed": 0, "paused": 4}.get(summary["status"], 1))


@app.command()
def resume(
    run_id: Annotated[Optional[str], typer.Argument(help="run to continue (default: every unfinished run, together)")] = None,
    db: DbOpt = DEFAULT_DB,
    workcell: WorkcellOpt = None,
    operator: OperatorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue unfinished runs from the journal after a crash, a pause or an operator wait.

    Finished steps are not repeated; interrupted (in-doubt) steps are resolved by their
    recovery class; a step only a person can judge waits for `cellwright confirm`.
    Exit 0 completed, 1 failed, 4 paused again (e.g. waiting for a confirmation).
    """
    from drivers.errors import CellwrightError
    from orchestrator.protocol import ProtocolErrors
    from orchestrator.runner import CampaignResult, resume_runs, unfinished_runs

    who = _operator(operator)
    store = _open_store(db)
    todo = [run_id] if run_id else [r["run_id"] for r in unfinished_runs(store)]
    store.close()
    if not todo:
        typer.echo(f"{db}: no unfinished runs")
        raise typer.Exit(0)
    try:
        results = resume_runs(todo, db=db, workcell=workcell, operator=who)
    except (CellwrightError, ProtocolErrors) as exc:
        _die(str(exc))
    if len(results) == 1:
        _finish({**results[0].summary, "db": str(db)}, as_json)
    wall = max((r.summary["wall_seconds"] or 0.0) for r in results)
    _finish_campaign(CampaignResult("resumed", results, wall, str(db)).summary(), as_json)


def _request(run_id: str, action: str, db: Path, operator: str | None, reason: str, step: str | None = None) -> None:
    from drivers.errors import CellwrightError
    from orchestrator.engine.control import record_request

    who = _operator(operator)
    store = _open_store(db)
    try:
        run_row = store.run(run_id)
        if run_row is None:
            _die(f"{db}: no run {run_id!r}")
        if run_row["status"] in ("completed", "failed", "aborted"):
            _die(f"run {run_id} is {run_row['status']}; it cannot be changed")
        if step is not None and not store.query("SELECT 1 FROM steps WHERE run_id = ? AND key = ?", (run_id, step)):
            _die(f"run {run_id} has no step {step!r} (see `cellwright status {run_id}`)")
        record_request(store, run_id, action, who, reason, step)
    except CellwrightError as exc:
        _die(str(exc))
    finally:
        store.close()
    typer.echo(f"{action} of run {run_id}{' step ' + step if step else ''} recorded by {who}")


ReasonOpt = Annotated[str, typer.Option("--reason", help="why (recorded in the audit trail)")]


@app.command()
def pause(run_id: str, db: DbOpt = DEFAULT_DB, operator: OperatorOpt = None, reason: ReasonOpt = "") -> None:
    """Ask a running run to pause at its next safe point (plates go home first)."""
    _request(run_id, "pause", db, operator, reason or "paused by operator")


@app.command()
def abort(run_id: str, db: DbOpt = DEFAULT_DB, operator: OperatorOpt = None,
          reason: Annotated[str, typer.Option("--reason", help="why (required)")] = "") -> None:
    """Abort a run at its next safe point (plates go home first). Final."""
    if not reason:
        _die("abort needs --reason TEXT")
    _request(run_id, "abort", db, operator, reason)


@app.command()
def confirm(
    run_id: str,
    step: Annotated[str, typer.Argument(help="the in-doubt step key, e.g. day[3].feed")],
    done: Annotated[bool, typer.Option("--done", help="it happened: do not repeat it")] = False,
    redo: Annotated[bool, typer.Option("--redo", help="it did not happen: do it again")] = False,
    skip: Annotated[bool, typer.Option("--skip", help="neither: skip it and go on")] = False,
    db: DbOpt = DEFAULT_DB,
    operator: OperatorOpt = None,
    reason: Annotated[str, typer.Option("--reason", help="what you checked (required)")] = "",
) -> None:
    """Decide an in-doubt step after checking the plate; then `cellwright resume`."""
    chosen = [name for name, flag in (("done", done), ("redo", redo), ("skip", skip)) if flag]
    if len(chosen) != 1:
        _die("give exactly one of --done, --redo, --skip")
    if not reason:
        _die("confirm needs --reason TEXT (what you checked)")
    _request(run_id, f"confirm:{chosen[0]}", db, operator, reason, step)


@app.command()
def status(
    run_id: Annotated[Optional[str], typer.Argument(help="one run (default: all)")] = None,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
) -> None:
    """Show runs, or one run's steps, deviations and what it waits for."""
    store = _open_store(db)
    try:
        if run_id is None:
            rows = [{k: r[k] for k in ("run_id", "protocol", "version", "status", "operator", "created_wall",
                                       "detail")} for r in store.runs()]
            if as_json:
                typer.echo(json.dumps(rows, indent=2))
                return
            from rich.console import Console
            from rich.table import Table

            table = Table(title=str(db))
            for col in ("run", "protocol", "status", "operator", "created", "detail"):
                table.add_column(col)
            for r in rows:
                table.add_row(r["run_id"], f"{r['protocol']} {r['version']}", r["status"], r["operator"],
                              r["created_wall"], (r["detail"] or "")[:80])
            Console().print(table)
            return
        from orchestrator.engine.engine import summarize
        from orchestrator.engine.history import IN_DOUBT

        if store.run(run_id) is None:
            _die(f"{db}: no run {run_id!r}")
        summary = summarize(store, run_id)
        waiting = [s["key"] for s in store.steps(run_id) if s["status"] in IN_DOUBT]
        summary["in_doubt"] = waiting
        if as_json:
            typer.echo(json.dumps(summary, indent=2, default=str))
            return
        from orchestrator.console import print_summary

        print_summary({**summary, "wall_seconds": summary["wall_seconds"] or 0.0, "db": str(db)})
        for key in waiting:
            typer.echo(f"in doubt: {key} — check the plate, then: cellwright confirm {run_id} '{key}' "
                       f"--done|--redo|--skip --reason TEXT")
    finally:
        store.close()


@app.command()
def schema() -> None:
    """Print the JSON Schema of protocol files (for editor completion)."""
    from orchestrator.protocol import protocol_json_schema

    typer.echo(json.dumps(protocol_json_schema(), indent=2))


@app.command("drivers")
def list_drivers(as_json: JsonOpt = False) -> None:
    """List installed drivers: class, capabilities, simulator and emulator."""
    from drivers.spec import registry

    rows = [{"name": s.name, "class": s.instrument_class.instrument_class, "transport": s.transport,
             "capabilities": s.capabilities(), "simulator": s.create_simulator is not None,
             "emulator": s.create_emulator is not None, "description": s.description}
            for s in registry().values()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="cellwright drivers")
    for col in ("name", "class", "transport", "capabilities", "simulator", "emulator"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["class"], r["transport"], ", ".join(r["capabilities"]) or "-",
                      "yes" if r["simulator"] else "no", "yes" if r["emulator"] else "no")
    Console().print(table)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
