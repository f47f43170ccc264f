"""Shared pieces of the ``cellwright`` command: the app, options, error exits, stores."""

from __future__ import annotations

import json
import os
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


def overrides(params: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in params or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            die(f"<command line>: -p {item!r}: expected name=value")
        out[name.strip()] = value.strip()
    return out


def die(message: str, code: int = 2) -> None:
    typer.echo(message, err=True)
    raise typer.Exit(code)


OperatorOpt = Annotated[Optional[str], typer.Option("--operator", help="your identity (env CELLWRIGHT_OPERATOR); required")]
DbOpt = Annotated[Path, typer.Option("--db", help="SQLite database (env CELLWRIGHT_DB)")]


def operator_identity(given: str | None) -> str:
    who = (given or os.environ.get("CELLWRIGHT_OPERATOR") or "").strip()
    if not who:
        die("refusing an anonymous change to a run: give --operator NAME or set CELLWRIGHT_OPERATOR")
    return who


def open_store(db: Path) -> Any:
    from orchestrator.store import Store, StoreError

    if not db.exists():
        die(f"{db}: no such database (give --db or set CELLWRIGHT_DB)")
    if db.is_file() and db.stat().st_size == 0:
        die(f"{db}: an empty file, not a cellwright database (nothing was written to it)")
    try:
        return Store(db)
    except StoreError as exc:
        die(str(exc))


def finish(summary: dict[str, Any], as_json: bool) -> None:
    from orchestrator.console import print_summary

    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        print_summary(summary)
        if summary["status"] == "paused":
            typer.echo(f"\nrun {summary['run_id']} is paused: {summary.get('error') or ''}\n"
                       f"continue with: cellwright resume {summary['run_id']} --db {summary.get('db')}", err=True)
    raise typer.Exit({"completed": 0, "paused": 4}.get(summary["status"], 1))


def load_campaign_or_die(path: Path, workcell: Path | None) -> Any:
    from drivers.errors import ConfigurationError
    from orchestrator.campaign import load_campaign

    try:
        return load_campaign(path, workcell)
    except ConfigurationError as exc:
        die(str(exc))


def finish_campaign(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        from orchestrator.console import print_campaign

        print_campaign(summary)
    raise typer.Exit({"completed": 0, "paused": 4}.get(summary["status"], 1))


