"""``cellwright`` commands about the installation and the records: schema, drivers."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from orchestrator.cli_common import JsonOpt, app, die


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
        table.add_row(r["name"], r["class"], r["transport"], ", ".join(r["capabilities"]) or "-",
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
