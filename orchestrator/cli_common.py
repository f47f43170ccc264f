"""Shared pieces of the ``cellwright`` command: the app, options, error exits, stores."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

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


def die(message: str, code: int = 2) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


OperatorOpt = Annotated[Optional[str], typer.Option(
    "--operator", help="your identity (else env CELLWRIGHT_OPERATOR, else `operator` in cellwright.toml); required")]
DbOpt = Annotated[Path, typer.Option("--db", help="SQLite database (env CELLWRIGHT_DB)")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="why (recorded in the audit trail)")]


def config_files() -> list[Path]:
    """Where ``operator = "NAME"`` may be set: ./cellwright.toml, then the user's config.toml."""
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    if not base:
        try:
            base = str(Path.home() / ".config")
        except RuntimeError:  # no home directory
            return [Path("cellwright.toml")]
    return [Path("cellwright.toml"), Path(base) / "cellwright" / "config.toml"]


def _configured_operator() -> str:
    import tomllib

    for path in config_files():
        try:
            with path.open("rb") as f:
                who = tomllib.load(f).get("operator", "")
        except FileNotFoundError:
            continue
        except tomllib.TOMLDecodeError as exc:
            die(f"{path}: not valid TOML: {exc}")
        except OSError as exc:
            die(f"{path}: cannot read it: {exc.strerror or exc}")
        if not isinstance(who, str):
            die(f"{path}: operator must be a string, e.g. operator = \"alice\"")
        if who.strip():
            return who.strip()
    return ""


def operator_identity(given: str | None) -> str:
    """Who acts: --operator, else CELLWRIGHT_OPERATOR, else a config file; never anonymous (exit 2)."""
    if given is not None:
        if not given.strip():
            die("--operator: a blank name is anonymous; give your name")
        return given.strip()
    who = os.environ.get("CELLWRIGHT_OPERATOR", "").strip() or _configured_operator()
    if not who:
        places = " or ".join(str(p) for p in config_files())
        die("refusing an anonymous change to a run: give --operator NAME, set CELLWRIGHT_OPERATOR, "
            f"or put operator = \"NAME\" in {places}")
    return who


def reason_text(reason: str, command: str, what: str = "TEXT") -> str:
    """A required --reason, stripped; blank counts as missing (exit 2)."""
    if not reason.strip():
        die(f"{command} needs --reason {what}")
    return reason.strip()


def open_store(db: Path, readonly: bool = False) -> Any:
    """The store of an existing database (``readonly``: nothing is written or created);
    exit 2 when the file is missing, empty or not a cellwright database."""
    from orchestrator.store import Store, StoreError

    if not db.exists():
        die(f"{db}: no such database (give --db or set CELLWRIGHT_DB)")
    if db.is_file() and db.stat().st_size == 0:
        die(f"{db}: an empty file, not a cellwright database (nothing was written to it)")
    try:
        return Store(db, readonly=readonly)
    except StoreError as exc:
        die(str(exc))


def engine_running(db: Path) -> bool:
    """Whether an engine holds ``db`` (see :func:`orchestrator.store.redo.engine_holds`)."""
    from orchestrator.store.redo import engine_holds

    return engine_holds(f"{db}-redo")


def redo_pending(db: Path) -> bool:
    """Whether a crashed engine left events in ``<db>-redo`` that the database does not have yet."""
    try:
        return os.path.getsize(f"{db}-redo") > 0 and not engine_running(db)
    except OSError:
        return False


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


