"""Plate transport: the engine, not the protocol author, moves plates.

A plate is at its home (an incubator slot) or on one instrument site. Before an
action the engine brings the plate to the action's instrument (incubator fetch, arm
transfer); before a long wait, and at the end of a run, it takes it home (arm
transfer, incubator store). Each move is a journaled step of its own.

Deadlock freedom: a plate never *waits* for a busy instrument while sitting on
another one; it first goes home (its slot is always reserved), and the shared
resources are always taken in the order target site → plates-out → incubator
station → arm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from drivers.labware import Plate
from orchestrator.engine.cell import Cell
from orchestrator.engine.dispatch import Dispatcher
from orchestrator.engine.history import History, locations_from
from orchestrator.engine.recovery import resolve
from orchestrator.store import Journal

SLOT = ":slot"


class Transport:
    """Moves one run's plates, recording each move and each new location."""

    def __init__(self, cell: Cell, dispatcher: Dispatcher, journal: Journal, run_id: str,
                 next_key: Callable[[str], str]) -> None:
        self.cell = cell
        self.dispatcher = dispatcher
        self.journal = journal
        self.run_id = run_id
        self.next_key = next_key
        self.locations: dict[str, str] = {}
        self.plates: dict[str, Plate] = {}

    # -- bookkeeping ---------------------------------------------------------------
    def home_slot(self, plate: Plate) -> str:
        return f"{plate.home or self.cell.incubator}{SLOT}"

    def at_home(self, plate: Plate) -> bool:
        return self.locations.get(plate.id, "").endswith(SLOT)

    def _moved(self, plate: Plate, site: str) -> None:
        self.locations[plate.id] = site
        self.journal.location(plate.id, site, self.cell.clock.now(), run_id=self.run_id)

    def out_plates(self) -> list[Plate]:
        """This run's plates that are somewhere other than their home slot."""
        return [p for p in self.plates.values() if p.id in self.locations and not self.at_home(p)]

    # -- moves ---------------------------------------------------------------------
    async def _step(self, instrument: str, action: str, plate: Plate, arrives: str, **extra: str) -> None:
        """One journaled move; the plate's new location ``arrives`` is written with its outcome."""
        key = self.next_key(action)
        args = {"plate": plate, **extra}
        await self.dispatcher.run(self.run_id, key, f"transport.{action}", instrument, action, args,
                                  kind="transport", journal_args={"plate": plate.id, **extra},
                                  on_done=lambda _: self._moved(plate, arrives))

    def _mover(self) -> str:
        if not self.cell.movers:
            raise RuntimeError("the workcell has no plate mover")
        return min(self.cell.movers, key=lambda m: len(self.cell.sites[m].holders) + self.cell.sites[m].queue)

    async def restore(self, plates: Iterable[Plate], history: History) -> None:
        """Take over the run's plates: resolve interrupted moves, re-take the sites they
        occupy, and check in plates never checked in (a new run: all of them).

        Raises:
            OperatorNeeded: an interrupted move the instruments cannot vouch for.
        """
        for plate in plates:
            self.plates[plate.id] = plate
        for record in history.in_doubt():
            if record.kind != "transport":
                continue
            plate = self.plates[record.args["plate"]]
            args = {**record.args, "plate": plate}
            choice = await resolve(self.cell, self.journal, history, self.run_id, record, args)
            if choice == "done":
                history.steps[record.key] = replace(record, status="done")
            elif choice == "redo":
                self.journal.step_transition(self.run_id, record.key, record.status, "skipped", self.cell.clock.now(),
                                             static_key=record.static_key, kind="transport",
                                             reason="did not take effect; the plate is moved again as needed")
        locations = locations_from(history, lambda p: self.home_slot(self.plates[p]),
                                   lambda p: self.plates[p].home or self.cell.incubator)
        for plate in self.plates.values():
            site = locations.get(plate.id)
            if site is None:
                await self.check_in(plate)
                continue
            self.locations[plate.id] = site
            if not site.endswith(SLOT):
                self.cell.plates_out.try_take(plate.id)
                self.cell.sites[site].try_take(plate.id)

    async def check_in(self, plate: Plate) -> None:
        """Register a plate the operator loaded into its home incubator."""
        self.plates[plate.id] = plate
        home = plate.home or self.cell.incubator
        await self._step(home, "check_in", plate, self.home_slot(plate))

    async def _arm(self, plate: Plate, source: str, destination: str) -> None:
        mover = self._mover()
        arm = self.cell.sites[mover]
        await arm.take(plate.id)
        try:
            await self._step(mover, "transfer", plate, destination, source=source, destination=destination)
        finally:
            arm.release(plate.id)

    async def bring(self, plate: Plate, instrument: str) -> None:
        """Bring ``plate`` to ``instrument``'s site; the caller already holds that site."""
        where = self.locations[plate.id]
        if where == instrument:
            return
        if where.endswith(SLOT):
            incubator = where[: -len(SLOT)]
            await self.cell.plates_out.take(plate.id)
            station = self.cell.sites[incubator]
            await station.take(plate.id)
            try:
                await self._step(incubator, "fetch", plate, incubator)
                if instrument != incubator:
                    await self._arm(plate, incubator, instrument)
            finally:
                if instrument != incubator:
                    station.release(plate.id)
            return
        await self._arm(plate, where, instrument)
        self.cell.sites[where].release(plate.id)

    async def home(self, plate: Plate) -> None:
        """Take ``plate`` back to its incubator slot (no-op when it is there, or was never checked in)."""
        where = self.locations.get(plate.id)
        if where is None or where.endswith(SLOT):
            return
        incubator = plate.home or self.cell.incubator
        station = self.cell.sites[incubator]
        if where != incubator:
            await station.take(plate.id)
            await self._arm(plate, where, incubator)
            self.cell.sites[where].release(plate.id)
        try:
            await self._step(incubator, "store", plate, self.home_slot(plate))
        finally:
            station.release(plate.id)
        self.cell.plates_out.release(plate.id)

    async def home_all(self) -> None:
        """Take every plate of the run home."""
        for plate in self.out_plates():
            await self.home(plate)

    def estimate_bring(self, plate: Plate, instrument: str) -> float:
        """Seconds the moves to ``instrument`` are expected to take."""
        where = self.locations.get(plate.id, "")
        if where == instrument:
            return 0.0
        total = 0.0
        if where.endswith(SLOT):
            incubator = where[: -len(SLOT)]
            total += self.cell.estimate(incubator, "fetch", {})
            if instrument == incubator:
                return total
        if self.cell.movers:
            total += self.cell.estimate(self.cell.movers[0], "transfer", {})
        return total
