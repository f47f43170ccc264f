"""The live workcell: connected instruments, their state machines, sites and limits.

Sites model where plates can be: every instrument has one site (its deck nest,
transfer station or gripper) holding ``nests`` plates. A plate holds the site it
sits on until it leaves, so two runs never put two plates on one nest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from drivers.base import Instrument, SupportsOutcomeQuery
from drivers.clock import Clock
from drivers.context import current_step
from drivers.errors import CellwrightError, ConfigurationError, InstrumentError, InstrumentTimeout, StateError
from drivers.spec import DriverContext
from orchestrator.engine.states import InstrumentState
from orchestrator.workcell import Workcell

log = structlog.get_logger("cellwright.cell")


class SiteBlocked(CellwrightError):
    """A place is taken by plates of runs that stopped and could not take them home: only a
    person can free it (the waiting run pauses, saying which plate to remove)."""


class Site:
    """A place holding up to ``capacity`` plates; plates wait in FIFO order."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self.holders: list[str] = []
        self._waiters: list[tuple[int, int, str, asyncio.Future[None]]] = []
        self._arrivals = 0
        self.priority: dict[str, int] = {}
        self.stranded: dict[str, str] = {}
        """Plates of stopped runs left here, and why (see :meth:`strand`)."""

    def strand(self, plate: str, why: str) -> None:
        """Mark ``plate`` (a holder) as left here by a run that stopped; when stranded
        plates fill the place, every waiter fails with :class:`SiteBlocked` instead of
        waiting for ever."""
        if plate not in self.holders:
            return
        self.stranded[plate] = why
        if self._blocked():
            waiters, self._waiters = self._waiters, []
            for _, _, _, future in waiters:
                if not future.done():
                    future.set_exception(SiteBlocked(self._blocked_message()))

    def _blocked(self) -> bool:
        return len(self.holders) >= self.capacity and all(h in self.stranded for h in self.holders)

    def _blocked_message(self) -> str:
        return "; ".join(self.stranded[h] for h in self.holders)

    def holds(self, plate: str) -> bool:
        return plate in self.holders

    def try_take(self, plate: str) -> bool:
        """Take a place at once if one is free and nobody queues; True on success."""
        if plate in self.holders:
            return True
        if len(self.holders) < self.capacity and not self._waiters:
            self.holders.append(plate)
            return True
        return False

    async def take(self, plate: str) -> None:
        """Wait for a place: higher ``priority[plate]`` first, then first come first served."""
        if self.try_take(plate):
            return
        if self._blocked():
            raise SiteBlocked(self._blocked_message())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._arrivals += 1
        entry = (-self.priority.get(plate, 0), self._arrivals, plate, future)
        self._waiters.append(entry)
        self._waiters.sort(key=lambda w: (w[0], w[1]))
        try:
            await future
        except asyncio.CancelledError:
            if entry in self._waiters:
                self._waiters.remove(entry)
            elif plate in self.holders:
                self.release(plate)
            raise

    def release(self, plate: str) -> None:
        """Give the place back and hand it to the next waiter."""
        if plate in self.holders:
            self.holders.remove(plate)
        self.stranded.pop(plate, None)
        while self._waiters and len(self.holders) < self.capacity:
            _, _, waiter, future = self._waiters.pop(0)
            if not future.done():
                self.holders.append(waiter)
                future.set_result(None)

    @property
    def queue(self) -> int:
        """Number of plates waiting."""
        return len(self._waiters)


class Cell:
    """Instruments of one workcell, ready to be called.

    Args:
        workcell: validated configuration.
        clock: shared clock.
        seed: simulator seed.
        on_instrument: listener for instrument state changes ``(name, source, dest, reason)``.
        shared: objects shared by the drivers (see below).
        sim_state: file the simulated world is persisted to.
    """

    def __init__(self, workcell: Workcell, clock: Clock, seed: int = 0,
                 on_instrument: Callable[[str, str, str, str], None] | None = None,
                 shared: dict[str, Any] | None = None, sim_state: str | None = None) -> None:
        self.workcell = workcell
        self.clock = clock
        # Objects every driver of this workcell shares (a simulator's culture model). Pass
        # the dict of a previous Cell to keep simulated plates across an engine restart,
        # or name a file (``sim_state``) the simulated world is persisted to.
        self.shared: dict[str, Any] = shared if shared is not None else {}
        if sim_state:
            self.shared.setdefault("sim_state_path", sim_state)
        self.instruments: dict[str, Instrument] = {}
        self.states: dict[str, InstrumentState] = {}
        self.sites: dict[str, Site] = {}
        self._calls: dict[str, int] = {}
        self.actions = workcell.actions()
        # One physical action at a time per instrument (its config ``capacity`` if it has one).
        self.locks: dict[str, asyncio.Semaphore] = {}
        self.plates_out = Site("plates-out", workcell.plates_out)
        self.incubator = workcell.incubator
        self.movers = workcell.of_class("plate_mover")
        listener = (lambda m, s, d, r: on_instrument(m.name, s, d, r)) if on_instrument else None
        for name, inst in workcell.instruments.items():
            ctx = DriverContext(name=name, clock=clock, seed=seed, shared=self.shared)
            self.instruments[name] = inst.driver.build(inst.mode, inst.config, ctx)
            self.states[name] = InstrumentState(name, listener)
            self.sites[name] = Site(name, inst.nests)
            concurrent = getattr(inst.config, "capacity", 1)
            self.locks[name] = asyncio.Semaphore(concurrent if isinstance(concurrent, int) else 1)

    async def connect(self) -> None:
        """Connect every instrument (in file order).

        Raises:
            InstrumentError: an instrument could not be reached (named in the error).
        """
        for name, instrument in self.instruments.items():
            await instrument.connect()
            if self.states[name].state == "offline":
                self.states[name].connect()

    async def disconnect(self) -> None:
        """Disconnect every instrument; errors are logged, not raised."""
        for name, instrument in self.instruments.items():
            try:
                await instrument.disconnect()
            except Exception as exc:  # shutting down: report, keep going
                log.warning("disconnect failed", device=name, error=str(exc))
            if self.states[name].state != "offline":
                self.states[name].disconnect()

    def estimate(self, instrument: str, action: str, args: Mapping[str, Any]) -> float:
        """Expected duration (s) of an action on an instrument."""
        return self.instruments[instrument].duration_of(action, **args)

    async def invoke(self, instrument: str, action: str, args: Mapping[str, Any], timeout: float | None,
                     idempotency: str | None = None) -> Any:
        """Call one driver action with a timeout, keeping the instrument state machine.

        Args:
            timeout: seconds; None = 2 x expected duration + 120 s.
        Raises:
            InstrumentError: the driver's error (a timeout becomes InstrumentTimeout).
            StateError: the call was refused before touching hardware.
            ConfigurationError: the instrument has no such action.
        """
        driver = self.instruments[instrument]
        method = getattr(driver, action, None)
        if method is None:
            raise ConfigurationError(f"instrument {instrument!r} has no action {action!r}")
        if timeout is None:
            timeout = 2 * driver.duration_of(action, **args) + 120.0
        if self._physical(instrument, action):
            async with self.locks[instrument]:
                return await self._call(instrument, action, method, args, timeout, idempotency)
        return await self._call(instrument, action, method, args, timeout, idempotency)

    def _physical(self, instrument: str, action: str) -> bool:
        info = self.actions.get(f"{self.workcell.instruments[instrument].instrument_class}.{action}")
        return info is None or info.physical

    async def _call(self, instrument: str, action: str, method: Any, args: Mapping[str, Any], timeout: float,
                    idempotency: str | None) -> Any:
        driver = self.instruments[instrument]
        state = self.states[instrument]
        self._begin(instrument)
        token = current_step.set(idempotency)
        try:
            result = await self.clock.wait_for(method(**args), timeout)
        except TimeoutError:
            try:
                await driver.abort()
            finally:
                if state.state in ("idle", "busy"):
                    state.fault(reason="timeout")
            raise InstrumentTimeout(instrument, f"{action} did not finish within {timeout:.0f} s") from None
        except InstrumentError as exc:
            if not exc.recoverable and state.state in ("idle", "busy"):
                state.fault(reason=str(exc))
            raise
        finally:
            current_step.reset(token)
            self._end(instrument)
        return result

    def _begin(self, instrument: str) -> None:
        self._calls[instrument] = self._calls.get(instrument, 0) + 1
        if self.states[instrument].state == "idle":
            self.states[instrument].acquire()

    def _end(self, instrument: str) -> None:
        self._calls[instrument] -= 1
        if self._calls[instrument] == 0 and self.states[instrument].state == "busy":
            self.states[instrument].release()

    async def outcome(self, instrument: str, action: str, args: Mapping[str, Any]) -> bool | None:
        """Ask the instrument whether ``action`` with ``args`` took effect (None: it cannot tell)."""
        driver = self.instruments.get(instrument)
        if driver is None or not isinstance(driver, SupportsOutcomeQuery):
            return None
        try:
            return await driver.action_outcome(action, args)
        except (InstrumentError, StateError):
            return None

    async def recover_instrument(self, instrument: str) -> None:
        """Clear an instrument's error state (``reset_error``)."""
        await self.instruments[instrument].reset_error()
        if self.states[instrument].state == "error":
            self.states[instrument].reset(reason="reset_error")
