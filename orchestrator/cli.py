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
    return cell, graph


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

    try:
        cell = load_workcell(workcell)
        graph = load_protocol(protocol, _overrides(param), workcell=cell)
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
    protocol: Annotated[Path, typer.Argument(help="protocol YAML file")],
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
    """Run a protocol on the workcell and print a summary."""
    if clock not in ("virtual", "wall"):
        _die(f"--clock: expected 'virtual' or 'wall', got {clock!r}")
    cell, graph = _load(protocol, workcell, param)
    from orchestrator import logs
    from orchestrator.console import ProgressView, print_summary
    from orchestrator.runner import run_protocol

    who = operator or os.environ.get("CELLWRIGHT_OPERATOR") or os.environ.get("USER") or "unknown"
    log_file = log_dir / f"run-{os.getpid()}.jsonl"
    handle = logs.configure(log_file, "info" if verbose else "warning")
    view = None if as_json or not sys.stderr.isatty() else ProgressView(graph)
    try:
        if view:
            view.start()
        result = run_protocol(graph, workcell=cell, clock=clock, seed=seed, db=str(db), operator=who,
                              on_event=view.on_event if view else None,
                              on_start=view.on_start if view else None)
    finally:
        if view:
            view.stop()
        if handle:
            handle.close()
    final_log = log_dir / f"{result.run_id}.jsonl"
    os.replace(log_file, final_log) if log_file.exists() else None
    summary = {**result.summary, "db": str(db), "log": str(final_log)}
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        print_summary(summary)
    raise typer.Exit(0 if summary["status"] == "completed" else 1)


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
