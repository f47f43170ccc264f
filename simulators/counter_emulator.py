"""Wire-level emulator of the CC-1 cell counter, and the ``emulator`` factory of
``serial.cc1_counter``.

It parses and builds lines with :mod:`drivers.serial_counter.protocol` — the very
module the driver uses — so the two cannot drift apart. It serves on a pty (default)
or loopback TCP (``socket://127.0.0.1:<port>``) through
:class:`simulators.serial_emulator.LineEmulator`.

Device model: one count at a time, lasting ``count_s`` device seconds (``time_fn``,
i.e. the driver's clock); numbers come from ``numbers_fn(sample)`` — in emulator mode the shared
culture model (see :mod:`simulators.culture_sync`) — else from a seeded generator.

Device faults on demand: :meth:`CounterEmulator.fail_next` (answer the next request
with ``ERR <code>``; a non-recoverable code latches the error state until ``RESET``)
and :meth:`CounterEmulator.hang_next_count` (the next count never finishes). Wire
faults: :meth:`LineEmulator.inject`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from drivers.base import CellCounter
from drivers.clock import Clock
from drivers.serial_counter import protocol as cc1
from drivers.serial_counter.driver import SerialCellCounter, SerialCounterConfig
from drivers.spec import DriverContext
from simulators.serial_emulator import LineEmulator

NumbersFn = Callable[[str], Mapping[str, float]]
"""sample id -> {total, viable, viab, diam, vol} (cells/mL, cells/mL, 0..1, µm, mL)."""


@dataclass
class _Job:
    sample: str
    start: float
    duration: float
    hang: bool = False
    aborted: bool = False


class CounterEmulator(LineEmulator):
    """The CC-1 device model.

    Args:
        time_fn: device time (s); pass ``clock.now``.
        count_s: duration of one count (device seconds).
        numbers_fn: where counts come from (default: seeded random, plausible iPSC values).
        seed: seed of the default generator.
        serial: serial number reported by ``IDN?``.
    """

    def __init__(self, time_fn: Callable[[], float] | None = None, count_s: float = 90.0,
                 numbers_fn: NumbersFn | None = None, seed: int = 0, serial: str = "CC1-000417") -> None:
        super().__init__(time_fn)
        self.count_s = count_s
        self.serial = serial
        self._rng = random.Random(seed)
        self.numbers_fn: NumbersFn = numbers_fn or self._random_numbers
        self.jobs: dict[int, _Job] = {}
        self.error: str | None = None
        self._next_job = 1
        self._fail: list[str] = []
        self._hang = False

    # -- faults --------------------------------------------------------------------------
    def fail_next(self, code: str) -> None:
        """Answer the next request with ``ERR <code>`` (a code of :data:`cc1.ERROR_CODES`)."""
        with self._lock:
            self._fail.append(code)

    def device_fault_next(self) -> None:
        """Conformance hook: the next request is answered ``ERR E20`` (lamp failure, latched)."""
        self.fail_next("E20")

    def hang_next_count(self) -> None:
        """The next ``COUNT`` starts but never finishes (``RESULT`` stays ``BUSY``)."""
        with self._lock:
            self._hang = True

    # -- protocol ------------------------------------------------------------------------
    def handle(self, line: bytes) -> bytes | None:
        try:
            verb, arg = cc1.decode_request(line)
        except cc1.ProtocolViolation:
            return cc1.encode_error("E01")
        if self._fail:
            code = self._fail.pop(0)
            if not cc1.ERROR_CODES.get(code, ("", False))[1]:
                self.error = code
            return cc1.encode_error(code)
        if verb == cc1.IDN:
            return cc1.encode_reply(cc1.OK, {"vendor": "Cellwright", "model": "CC-1", "serial": self.serial, "fw": "1.4.2"})
        if verb == cc1.RESET:
            self.error = None
            return cc1.encode_reply(cc1.OK)
        if verb == cc1.STATUS:
            state = "error" if self.error else ("busy" if self._running() else "idle")
            running = self._running()
            return cc1.encode_reply(cc1.OK, {"state": state, "job": running or 0, "code": self.error or "-"})
        if verb == cc1.ABORT:
            for job in self.jobs.values():
                job.aborted = True
            return cc1.encode_reply(cc1.OK)
        if self.error:
            return cc1.encode_error(self.error)
        if verb == cc1.COUNT:
            if arg is None or not cc1.SAMPLE_RE.match(arg):
                return cc1.encode_error("E02")
            if self._running():
                return cc1.encode_error("E03")
            job_id, self._next_job = self._next_job, self._next_job + 1
            self.jobs[job_id] = _Job(arg, self.time_fn(), self.count_s, hang=self._hang)
            self._hang = False
            return cc1.encode_reply(cc1.OK, {"job": job_id, "eta": round(self.count_s, 3)})
        if verb == cc1.RESULT:
            job = self.jobs.get(int(arg)) if arg and arg.isdigit() else None
            if job is None or job.aborted:
                return cc1.encode_error("E04")
            remaining = job.start + job.duration - self.time_fn()
            if job.hang or remaining > 1e-9:
                return cc1.encode_reply(cc1.BUSY, {"eta": round(max(remaining, 0.0), 3) if not job.hang else 60})
            n = self.numbers_fn(job.sample)
            return cc1.encode_reply(cc1.OK, {k: float(n[k]) for k in cc1.COUNT_FIELDS})
        return cc1.encode_error("E01")

    def _running(self) -> int | None:
        now = self.time_fn()
        for job_id, job in self.jobs.items():
            if not job.aborted and (job.hang or job.start + job.duration > now):
                return job_id
        return None

    def _random_numbers(self, sample: str) -> dict[str, float]:
        total = self._rng.gauss(1.2e6, 0.1e6)
        viab = min(0.99, max(0.5, self._rng.gauss(0.93, 0.02)))
        return {"total": total, "viable": total * viab, "viab": viab, "diam": self._rng.gauss(12.5, 0.6), "vol": 1.0}


class EmulatedCellCounter(SerialCellCounter):
    """The unmodified driver, wired to a :class:`CounterEmulator` it starts on connect
    and stops on disconnect (the device model survives a reconnect)."""

    def __init__(self, name: str, clock: Clock, config: SerialCounterConfig, emulator: CounterEmulator,
                 transport: str = "pty") -> None:
        super().__init__(name, clock, config)
        self.emulator = emulator
        self.transport = transport

    async def connect(self) -> None:
        if self._ser is None and not self.emulator.running:
            url = self.emulator.start_tcp() if self.transport == "tcp" else self.emulator.start_pty()
            self.config = self.config.model_copy(update={"url": url})
        await super().connect()

    async def disconnect(self) -> None:
        await super().disconnect()
        self.emulator.stop()


def create_emulated(config: SerialCounterConfig, ctx: DriverContext) -> CellCounter:
    """``DriverSpec.create_emulator`` of ``serial.cc1_counter``: the real driver on an emulator."""
    emulator = CounterEmulator(time_fn=ctx.clock.now, count_s=config.emulator.count_s, seed=ctx.seed)
    driver = EmulatedCellCounter(ctx.name, ctx.clock, config, emulator, config.emulator.transport)
    return _with_culture(driver, ctx)


def _with_culture(driver: EmulatedCellCounter, ctx: DriverContext) -> CellCounter:
    """Wrap the driver so counts and plate locations follow the workcell's culture model
    (``ctx.shared["culture"]``, created when absent), like the behavioural simulators."""
    from simulators.culture import culture_of
    from simulators.culture_sync import SyncedCellCounter

    synced = SyncedCellCounter(driver, culture_of(ctx))
    driver.emulator.numbers_fn = synced.numbers
    return synced
