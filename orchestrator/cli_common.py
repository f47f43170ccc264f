"""Shared pieces of the ``cellwright`` command: the app, options, error exits, stores."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
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


class ReadOnlyStore:
    """The read side of a store on a database opened read-only, as ``audit verify`` opens it:
    nothing is written and no file is created (works on a read-only filesystem). A crashed
    engine's redo log is not replayed: :func:`redo_pending` says when it holds events.

    Raises:
        StoreError: not a cellwright database, a newer one, or a damaged one (as Store says).
    """

    def __init__(self, db: Path) -> None:
        from orchestrator.store.audit import open_readonly

        self.path = str(db)
        self.conn = open_readonly(db)
        try:
            self._check_schema()
        except BaseException:
            self.conn.close()
            raise

    def _check_schema(self) -> None:
        from orchestrator.store import StoreError
        from orchestrator.store.schema import SCHEMA_VERSION, schema_damage

        try:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            damage = schema_damage(self.conn) if version else []
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        if version == 0:
            raise StoreError(f"{self.path} is not a cellwright database (no cellwright schema version)")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} has schema version {version}; this cellwright knows up to "
                             f"{SCHEMA_VERSION}: upgrade cellwright")
        if damage:
            raise StoreError(f"{self.path} is damaged: {'; '.join(m for _, m in damage)} (`cellwright audit "
                             f"verify --db {self.path}` checks the rest)")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        from orchestrator.store import StoreError

        try:
            cur = self.conn.execute(sql, params)
            return [dict(zip([d[0] for d in cur.description], row, strict=True)) for row in cur.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def runs(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM runs ORDER BY created_wall")

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", (run_id,))

    def measurements(self, run_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM measurements WHERE run_id = ? ORDER BY sim_time, id", (run_id,))

    def verdicts(self, run_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM verdicts WHERE run_id = ? ORDER BY id", (run_id,))

    def deviations(self, run_id: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM deviations WHERE run_id = ? ORDER BY id", (run_id,))

    @property
    def head(self) -> str:
        rows = self.query("SELECT hash FROM chain_head WHERE id = 1")
        return str(rows[0]["hash"]) if rows else "0" * 64

    def close(self) -> None:
        self.conn.close()


def open_readonly_store(db: Path) -> ReadOnlyStore:
    from orchestrator.store import StoreError

    if not db.exists():
        die(f"{db}: no such database (give --db or set CELLWRIGHT_DB)")
    if db.is_file() and db.stat().st_size == 0:
        die(f"{db}: an empty file, not a cellwright database (nothing was written to it)")
    try:
        return ReadOnlyStore(db)
    except StoreError as exc:
        die(str(exc))


def engine_running(db: Path) -> bool:
    """Whether an engine holds ``db``: it keeps an exclusive flock on ``<db>-redo`` (see
    orchestrator.store.redo). Probed with a shared lock taken and dropped at once; no file is created."""
    try:
        fd = os.open(f"{db}-redo", os.O_RDONLY)
    except OSError:
        return False  # no log: no engine (an engine keeps its log until it closes)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops our lock
    return False


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


