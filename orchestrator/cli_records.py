"""``cellwright`` commands about the installation and the records: schema, drivers, audit, report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from orchestrator.cli_common import (
    DEFAULT_DB,
    DbOpt,
    JsonOpt,
    OperatorOpt,
    WorkcellOpt,
    app,
    die,
    open_store,
    operator_identity,
    reason_text,
)


@app.command()
def schema() -> None:
    """Print the JSON Schema of protocol files (for editor completion)."""
    from orchestrator.protocol import protocol_json_schema

    typer.echo(json.dumps(protocol_json_schema(), indent=2))


drivers_app = typer.Typer(help="Installed drivers: list them, or check one against the conformance suite.",
                          invoke_without_command=True, no_args_is_help=False)
app.add_typer(drivers_app, name="drivers")


@drivers_app.callback()
def list_drivers(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List installed drivers: class, capabilities, simulator and emulator."""
    if ctx.invoked_subcommand is not None:
        return
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
        caps = ", ".join(str(c) for c in r["capabilities"]) or "-"  # type: ignore[attr-defined]
        table.add_row(str(r["name"]), str(r["class"]), str(r["transport"]), caps,
                      "yes" if r["simulator"] else "no", "yes" if r["emulator"] else "no")
    Console().print(table)




@drivers_app.command("check")
def check_driver(
    name: Annotated[str, typer.Argument(help="registry name, e.g. sim.imager or plr.cytomat")],
    mode: Annotated[str, typer.Option(help="simulator, emulator or real")] = "simulator",
    config: Annotated[Optional[str], typer.Option(help="driver config as JSON")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the conformance suite of the driver's instrument class; exit 0 when it passes."""
    from drivers.errors import ConfigurationError
    from drivers.testing import run_conformance

    if mode not in ("simulator", "emulator", "real"):
        die(f"--mode: expected simulator, emulator or real, got {mode!r}")
    try:
        raw = json.loads(config) if config else None
    except json.JSONDecodeError as exc:
        die(f"--config: not JSON: {exc}")
    try:
        report = run_conformance(name, mode, raw)
    except ConfigurationError as exc:
        die(str(exc))
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())
    raise typer.Exit(0 if report.ok else 1)


audit_app = typer.Typer(help="The audit trail: verify the SHA-256 hash chain and the records built on it.",
                        no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    db: DbOpt = DEFAULT_DB,
    expect_head: Annotated[Optional[str], typer.Option(
        help="a head hash (or SEQ:HASH) kept outside the database, e.g. from a batch record")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check every record of the chain and the tables built from it (read-only).

    Exit 0 when whole; 1 naming the first broken record and what is wrong (modified,
    deleted, inserted, reordered, truncated, projection-mismatch); 2 when unreadable.
    """
    from orchestrator.store import StoreError
    from orchestrator.store.audit import verify

    if expect_head is not None:
        seq, sep, digest = expect_head.strip().rpartition(":")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", digest.strip()) or (sep and not seq.strip().isdigit()):
            die(f"--expect-head {expect_head!r}: expected a SHA-256 head hash (64 hex digits) or SEQ:HASH, "
                "as `cellwright audit verify` prints it")
    if not db.exists():
        die(f"{db}: no such database (give --db or set CELLWRIGHT_DB)")
    try:
        report = verify(db, expect_head)
    except StoreError as exc:
        die(str(exc))
    typer.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.text())
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("accept-loss")
def audit_accept_loss(
    db: DbOpt = DEFAULT_DB,
    operator: OperatorOpt = None,
    reason: Annotated[str, typer.Option("--reason", help="what you checked (required)")] = "",
) -> None:
    """Accept that a deleted redo log took events with it (after checking the plates).

    Until then no engine runs on the database: a step may have happened without a record.
    """
    from drivers.errors import CellwrightError
    from orchestrator.engine.control import record_loss_accepted

    who = operator_identity(operator)
    why = reason_text(reason, "accept-loss", "TEXT (what you checked)")
    store = open_store(db)
    try:
        seq = record_loss_accepted(store, who, why)
    except CellwrightError as exc:
        die(str(exc))
    finally:
        store.close()
    typer.echo(f"loss of the redo log of the engine started at event seq {seq} accepted by {who}")


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="the run, e.g. R0001")],
    db: DbOpt = DEFAULT_DB,
    out: Annotated[Path, typer.Option(help="directory for the HTML and JSON batch record")] = Path("var/reports"),
) -> None:
    """Write the batch record of a run: self-contained HTML (opens offline) and JSON."""
    from orchestrator.report import write_batch_record
    from orchestrator.store import StoreError

    if not db.exists():
        die(f"{db}: no such database (give --db or set CELLWRIGHT_DB)")
    try:
        html, data = write_batch_record(db, run_id, out)
    except KeyError:
        die(f"{db}: no run {run_id!r} (see `cellwright status`)")
    except StoreError as exc:
        die(str(exc))
    typer.echo(f"batch record: {html}\n              {data}")


@app.command()
def plan(
    campaign: Annotated[Path, typer.Argument(help="campaign (or protocol) YAML")],
    workcell: WorkcellOpt = None,
    as_json: JsonOpt = False,
    time_limit: Annotated[float, typer.Option("--time-limit", help="planner budget, seconds")] = 10.0,
    cpsat: Annotated[bool, typer.Option("--cpsat", help="also optimise with OR-Tools CP-SAT (warm-started)")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="where the Gantt chart goes (default var/plans)")] = None,
) -> None:
    """Plan many runs on shared instruments, keeping every time window.

    Exit 0 feasible; 3 when windows cannot be kept (each unmet constraint, the saturated
    instrument and time span, and the nearest change that would make it feasible are
    named) or no plan was found within the time limit; 2 on invalid input.
    """
    from orchestrator.planning.cli import plan_command

    raise typer.Exit(plan_command(campaign, workcell, as_json, time_limit, cpsat, out))
