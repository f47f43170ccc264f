"""``cellwright unload``: a person took a plate off the workcell."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from orchestrator.cli_common import (
    DEFAULT_DB,
    DbOpt,
    OperatorOpt,
    app,
    die,
    open_store,
    operator_identity,
    reason_text,
)


@app.command()
def unload(
    plate: Annotated[str, typer.Argument(help="the plate id, e.g. R0001.plate (see `cellwright status`)")],
    db: DbOpt = DEFAULT_DB,
    operator: OperatorOpt = None,
    reason: Annotated[str, typer.Option("--reason", help="where the plate went (required)")] = "",
) -> None:
    """Record that you took a plate off the workcell (one a stopped run left on an
    instrument); then `cellwright resume`. In a simulated workcell the plate leaves the
    simulated world when the next engine starts."""
    from drivers.errors import CellwrightError
    from orchestrator.engine.control import record_unload

    who = operator_identity(operator)
    why = reason_text(reason, "unload", "TEXT (where the plate went)")
    store = open_store(db)
    try:
        run_id, site = record_unload(store, plate, who, why)
    except CellwrightError as exc:
        die(str(exc))
    finally:
        store.close()
    typer.echo(f"plate {plate} of run {run_id} unloaded from {site}, recorded by {who}")


def plates_left_behind(store: Any) -> list[dict[str, Any]]:
    """Plates of finished runs the record puts on an instrument (not in an incubator slot,
    not unloaded): each blocks its place until a person unloads it."""
    from orchestrator.engine.control import FINAL
    from orchestrator.engine.transport import SLOT
    from orchestrator.store.projector import UNLOADED

    marks = ", ".join("?" * len(FINAL))
    return store.query(f"SELECT l.plate, l.run_id, l.site, r.status FROM locations l JOIN runs r"
                       f" ON r.run_id = l.run_id WHERE r.status IN ({marks}) AND l.site != ?"
                       f" AND l.site NOT LIKE ? ORDER BY l.plate", (*FINAL, UNLOADED, f"%{SLOT}"))
