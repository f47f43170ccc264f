"""``cellwright`` commands that act on recorded runs: resume, pause, abort, confirm, status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from orchestrator.cli_common import (
    DEFAULT_DB,
    DbOpt,
    JsonOpt,
    OperatorOpt,
    ReasonOpt,
    WorkcellOpt,
    app,
    die,
    engine_running,
    finish,
    finish_campaign,
    open_store,
    operator_identity,
    reason_text,
    redo_pending,
)


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
    from orchestrator.store import StoreError

    who = operator_identity(operator)
    store = open_store(db)
    todo = [run_id] if run_id else [r["run_id"] for r in unfinished_runs(store)]
    store.close()
    if not todo:
        typer.echo(f"{db}: no unfinished runs")
        raise typer.Exit(0)
    try:
        results = resume_runs(todo, db=db, workcell=workcell, operator=who)
    except StoreError as exc:  # busy (another engine) or broken storage: nothing was resumed
        die(str(exc), code=1)
    except (CellwrightError, ProtocolErrors) as exc:
        die(str(exc))
    if len(results) == 1:
        finish({**results[0].summary, "db": str(db)}, as_json)
    wall = max((r.summary["wall_seconds"] or 0.0) for r in results)
    finish_campaign(CampaignResult("resumed", results, wall, str(db)).summary(), as_json)


def _request(run_id: str, action: str, db: Path, operator: str | None, reason: str, step: str | None = None) -> None:
    from drivers.errors import CellwrightError
    from orchestrator.engine.control import record_request

    who = operator_identity(operator)
    store = open_store(db)
    try:
        run_row = store.run(run_id)
        if run_row is None:
            die(f"{db}: no run {run_id!r}")
        if run_row["status"] in ("completed", "failed", "aborted"):
            die(f"run {run_id} is {run_row['status']}; it cannot be changed")
        if action == "pause":
            _check_pause(store, run_row)
        if step is not None:
            rows = store.query("SELECT * FROM steps WHERE run_id = ? AND key = ?", (run_id, step))
            if not rows:
                die(f"run {run_id} has no step {step!r} (see `cellwright status {run_id}`)")
            _check_decision(db, run_row, rows[0], action.partition(":")[2])
        record_request(store, run_id, action, who, reason, step)
    except CellwrightError as exc:
        die(str(exc))
    finally:
        store.close()
    typer.echo(f"{action} of run {run_id}{' step ' + step if step else ''} recorded by {who}")


def _check_pause(store: Any, run_row: dict[str, Any]) -> None:
    """Refuse a pause that would change nothing now and pause the next resume at once."""
    run_id = run_row["run_id"]
    if run_row["status"] == "paused":
        die(f"run {run_id} is already paused; `cellwright resume {run_id}` to continue")
    asked = store.query("SELECT operator FROM operator_actions WHERE run_id = ? AND action = 'pause' AND consumed = 0",
                        (run_id,))
    if asked:
        die(f"a pause of run {run_id} was already requested by {asked[0]['operator']}; "
            "it takes effect at the next safe point")


def _check_decision(db: Path, run_row: dict[str, Any], step: dict[str, Any], choice: str) -> None:
    """Refuse a decision the engine would never read (see engine.recovery and executor._operator_task)."""
    from orchestrator.engine.history import IN_DOUBT

    run_id, key = run_row["run_id"], step["key"]
    if step["status"] not in IN_DOUBT:
        die(f"step {key} of run {run_id} is {step['status']}, not in doubt: there is nothing to confirm")
    if run_row["status"] == "running" and engine_running(db):
        die(f"run {run_id} is running: step {key} is in progress, not in doubt")
    if step["kind"] == "operator":
        if choice == "redo":
            die(f"step {key} is a task for a person: give --done or --skip")
        return
    if step["recovery"] not in ("operator", "query"):
        die(f"step {key} of run {run_id} needs no decision: {_doubt_hint(run_id, step)}")


def _doubt_hint(run_id: str, step: dict[str, Any]) -> str:
    """What happens to a step that is in doubt (or a task for a person) when the run is resumed."""
    key, recovery = step["key"], step["recovery"]
    if step["kind"] == "operator":
        return f"when it is done: cellwright confirm {run_id} '{key}' --done|--skip --reason TEXT"
    if recovery == "repeatable":
        return f"repeatable: `cellwright resume {run_id}` does it again"
    if recovery == "query":
        return f"`cellwright resume {run_id}` asks {step['instrument']} whether it took effect"
    if recovery == "operator":
        return f"check the plate, then: cellwright confirm {run_id} '{key}' --done|--redo|--skip --reason TEXT"
    return f"`cellwright resume {run_id}` continues it"


@app.command()
def pause(run_id: str, db: DbOpt = DEFAULT_DB, operator: OperatorOpt = None, reason: ReasonOpt = "") -> None:
    """Ask a running run to pause at its next safe point (plates go home first)."""
    _request(run_id, "pause", db, operator, reason.strip() or "paused by operator")


@app.command()
def abort(run_id: str, db: DbOpt = DEFAULT_DB, operator: OperatorOpt = None,
          reason: Annotated[str, typer.Option("--reason", help="why (required)")] = "") -> None:
    """Abort a run at its next safe point (plates go home first). Final."""
    _request(run_id, "abort", db, operator, reason_text(reason, "abort"))


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
        die("give exactly one of --done, --redo, --skip")
    _request(run_id, f"confirm:{chosen[0]}", db, operator, reason_text(reason, "confirm", "TEXT (what you checked)"),
             step)


@app.command()
def status(
    run_id: Annotated[Optional[str], typer.Argument(help="one run (default: all)")] = None,
    db: DbOpt = DEFAULT_DB,
    as_json: JsonOpt = False,
) -> None:
    """Show runs, or one run's steps, deviations and what it waits for (read-only)."""
    from orchestrator.store import StoreError

    store = open_store(db, readonly=True)
    if redo_pending(db) and not as_json:
        typer.echo(f"note: a crashed engine left events in {db}-redo that the database does not have yet "
                   "(shown without them); `cellwright resume` applies them", err=True)
    from orchestrator.store.sessions import lost_redo_log

    lost = lost_redo_log(store.conn, store.redo_path)
    if lost is not None and not as_json:
        typer.echo(f"note: {lost[1]}; no engine runs on this database until a person accepts the loss "
                   f"(`cellwright audit accept-loss --operator NAME --reason TEXT`)", err=True)
    live = engine_running(db)
    try:
        if run_id is None:
            _status_all(store, db, live, as_json)
        else:
            _status_one(store, db, run_id, live, as_json)
    except StoreError as exc:
        die(str(exc))
    finally:
        store.close()


def _stalled(run: dict[str, Any], live: bool) -> bool:
    """A run recorded as under way with no engine on its database: it crashed."""
    return not live and run["status"] in ("created", "validated", "planned", "running")


def _status_all(store: Any, db: Path, live: bool, as_json: bool) -> None:
    rows = [{k: r[k] for k in ("run_id", "protocol", "version", "status", "operator", "created_wall", "detail")}
            for r in store.runs()]
    if as_json:
        typer.echo(json.dumps([{**r, "engine_running": live} for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(db))
    for col in ("run", "protocol", "status", "operator", "created", "detail"):
        table.add_column(col)
    for r in rows:
        shown = f"{r['status']} — no engine (crashed?)" if _stalled(r, live) else r["status"]
        table.add_row(r["run_id"], f"{r['protocol']} {r['version']}", shown, r["operator"],
                      r["created_wall"], (r["detail"] or "")[:80])
    Console().print(table)
    if any(_stalled(r, live) for r in rows):
        typer.echo(f"no engine is running on {db}: continue with `cellwright resume --db {db}`")
    from orchestrator.cli_plates import plates_left_behind

    for p in plates_left_behind(store):
        typer.echo(f"left on an instrument: {p['plate']} (run {p['run_id']}, {p['status']}) at {p['site']} — "
                   f"remove it, then `cellwright unload {p['plate']} --reason TEXT`")


def _status_one(store: Any, db: Path, run_id: str, live: bool, as_json: bool) -> None:
    from orchestrator.engine.engine import summarize
    from orchestrator.engine.history import IN_DOUBT

    run = store.run(run_id)
    if run is None:
        die(f"{db}: no run {run_id!r}")
    summary = summarize(store, run_id)
    stopped = run["status"] == "paused" or _stalled(run, live)  # in doubt only when nothing runs it
    waiting = [s for s in store.steps(run_id) if s["status"] in IN_DOUBT] if stopped else []
    summary["in_doubt"] = [s["key"] for s in waiting]
    summary["engine_running"] = live
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    from orchestrator.console import print_summary

    if _stalled(run, live):
        summary["error"] = (f"no engine is running on this database (crashed?): "
                            f"`cellwright resume {run_id} --db {db}`")
    print_summary({**summary, "wall_seconds": summary["wall_seconds"] or 0.0, "db": str(db)})
    for step in waiting:
        what = "waiting for a person" if step["kind"] == "operator" else "in doubt"
        typer.echo(f"{what}: {step['key']} — {_doubt_hint(run_id, step)}")
