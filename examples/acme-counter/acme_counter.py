"""cellwright driver for the Acme CytoCount 3000 (a fictional serial cell counter).

One file, one entry point, the conformance suite: see ``docs/driver-guide.md`` of
cellwright. The device speaks a terse ASCII protocol, CR-terminated, 9600 8N1::

    M <sample>\\r   -> A\\r                         measurement accepted
    ?\\r            -> B\\r                         busy measuring
                   -> R <total> <viable> <diam>\\r   result: cells/mL, cells/mL, µm
    X\\r            -> A\\r                         abort / clear error
    I\\r            -> ACME CC3000 <serial> <fw>\\r  identity
    any            -> E <n>\\r                       error n (1 bad command, 2 no sample, 9 lamp)

Three things live here: the driver (:class:`AcmeCounter`), its behavioural simulator
(:class:`AcmeCounterSim`, built on cellwright's simulator base so it shares the
workcell's culture model) and a wire-level emulator (:class:`AcmeEmulator`, on a pty).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any, ClassVar

from pydantic import Field

from drivers.base import CellCounter
from drivers.clock import Clock
from drivers.errors import ConnectionLost, DeviceFault, InstrumentTimeout, StateError, WireProtocolError
from drivers.labware import Plate
from drivers.results import CellCount, Identity, InstrumentStatus
from drivers.spec import DriverConfig, DriverContext, DriverSpec

CR = b"\r"


class AcmeConfig(DriverConfig):
    """Workcell config of ``acme.counter``.

    Attributes:
        port: serial device or pyserial URL.
        timeout_s: real seconds for one reply.
        measure_s: seconds one measurement takes (the driver waits this on the clock).
        max_wait_s: clock seconds before a measurement counts as hung.
    """

    port: str = "/dev/ttyACM0"
    timeout_s: float = Field(1.0, gt=0)
    measure_s: float = Field(45.0, ge=0)
    max_wait_s: float = Field(300.0, gt=0)


class AcmeCounter(CellCounter):
    """The real driver (pyserial in a worker thread, one request at a time)."""

    def __init__(self, name: str, clock: Clock, config: AcmeConfig) -> None:
        super().__init__(name, clock, config.durations)
        self.config = config
        self._ser: Any = None
        self._error: DeviceFault | None = None
        self._busy = False
        self._lock = asyncio.Lock()

    async def connect(self) -> None:
        if self._ser is None:
            import serial

            try:
                self._ser = serial.serial_for_url(self.config.port, baudrate=9600, timeout=self.config.timeout_s)
            except (serial.SerialException, ValueError) as exc:
                raise ConnectionLost(self.name, f"cannot open {self.config.port}: {exc}") from exc

    async def disconnect(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            ser.close()

    async def identify(self) -> Identity:
        words = (await self._ask(b"I")).split()
        if len(words) < 4 or words[0] != "ACME":
            raise WireProtocolError(self.name, "bad identity reply", raw=" ".join(words).encode())
        return Identity("Acme", words[1], words[2], words[3])

    async def status(self) -> InstrumentStatus:
        if self._ser is None:
            return InstrumentStatus("offline")
        if self._error is not None:
            return InstrumentStatus("error", self._error.detail, self._error.code)
        return InstrumentStatus("busy" if self._busy else "idle")

    async def abort(self) -> None:
        if self._ser is not None and self._busy:
            try:
                await self._ask(b"X")
            except Exception:  # best effort
                pass

    async def reset_error(self) -> None:
        if self._ser is None:
            raise StateError(self.name, "not connected")
        await self._ask(b"X")
        self._error = None

    async def count(self, plate: Plate) -> CellCount:
        if self._ser is None:
            raise StateError(self.name, "not connected")
        if self._error is not None or self._busy:
            raise StateError(self.name, "in error or busy")
        self._busy = True
        try:
            if await self._ask(b"M " + plate.id.encode("ascii", "replace")[:32]) != "A":
                raise WireProtocolError(self.name, "measurement not acknowledged")
            deadline = self.clock.now() + self.config.max_wait_s
            await self.clock.sleep(self.config.measure_s)
            while (reply := await self._ask(b"?")) == "B":
                if self.clock.now() >= deadline:
                    raise InstrumentTimeout(self.name, "measurement hung")
                await self.clock.sleep(5.0)
            words = reply.split()
            try:
                total, viable, diam = (float(w) for w in words[1:4])
            except ValueError:
                raise WireProtocolError(self.name, "bad result", raw=reply.encode()) from None
            if words[0] != "R" or total <= 0:
                raise WireProtocolError(self.name, "bad result", raw=reply.encode())
            return CellCount(total, viable, viable / total, diam)
        except DeviceFault as exc:
            if not exc.recoverable:
                self._error = exc
            raise
        finally:
            self._busy = False

    async def _ask(self, request: bytes) -> str:
        """Send one request, return the reply text; errors carry the bytes."""
        if self._ser is None:
            raise StateError(self.name, "not connected; call connect() first")
        async with self._lock:
            loop = asyncio.get_running_loop()
            try:
                raw = await loop.run_in_executor(None, self._exchange, request + CR)
            except Exception as exc:  # the port is gone
                raise ConnectionLost(self.name, str(exc), raw=b"") from exc
        if not raw.endswith(CR):
            raise InstrumentTimeout(self.name, f"no complete reply to {request!r}", raw=raw)
        try:
            text = raw[:-1].decode("ascii")
        except UnicodeDecodeError:
            raise WireProtocolError(self.name, "reply is not ASCII", raw=raw) from None
        if text.startswith("E "):
            code = text[2:].strip()
            raise DeviceFault(self.name, f"device error {code}", code=f"E{code}", recoverable=code != "9", raw=raw)
        return text

    def _exchange(self, data: bytes) -> bytes:
        self._ser.reset_input_buffer()
        self._ser.write(data)
        return bytes(self._ser.read_until(CR, 128))


# -- the behavioural simulator ------------------------------------------------------------

def _sim_class() -> type:
    from simulators import assays
    from simulators.base import MeasureConfig, SimulatedInstrument

    class AcmeCounterSim(SimulatedInstrument, CellCounter):
        """Behavioural simulator: counts from the shared culture model, 45 s per count."""

        config_model: ClassVar[type[MeasureConfig]] = MeasureConfig
        model_name: ClassVar[str] = "Acme CytoCount 3000 (simulated)"

        async def count(self, plate: Plate) -> CellCount:
            return await self._run("count", lambda: assays.count(self.culture, plate, self.config.noise),
                                   plate=plate, check=lambda: assays.check_count(self.culture, plate, self.name),
                                   args={"plate": plate}, duration=45.0)

    return AcmeCounterSim


# -- the wire-level emulator ----------------------------------------------------------------

def _emulator(clock: Clock, measure_s: float, seed: int) -> Any:
    from simulators.serial_emulator import LineEmulator

    class AcmeEmulator(LineEmulator):
        """The device on a pty: measurements take ``measure_s`` clock seconds."""

        def __init__(self) -> None:
            super().__init__(clock.now)
            self.rng = random.Random(seed)
            self.done_at: float | None = None
            self.next_error: str | None = None

        def device_fault_next(self) -> None:
            self.next_error = "9"

        def handle(self, line: bytes) -> bytes:
            if self.next_error:
                code, self.next_error = self.next_error, None
                return f"E {code}\r".encode()
            cmd = line.split(b" ")[0]
            if cmd == b"I":
                return b"ACME CC3000 SN0042 2.1\r"
            if cmd == b"M":
                self.done_at = self.time_fn() + measure_s
                return b"A\r"
            if cmd == b"X":
                self.done_at = None
                return b"A\r"
            if cmd == b"?":
                if self.done_at is None:
                    return b"E 2\r"
                if self.time_fn() < self.done_at:
                    return b"B\r"
                total = self.rng.uniform(0.8e6, 1.2e6)
                return f"R {total:.0f} {0.92 * total:.0f} 12.8\r".encode()
            return b"E 1\r"

    return AcmeEmulator()


def create(config: AcmeConfig, ctx: DriverContext) -> AcmeCounter:
    return AcmeCounter(ctx.name, ctx.clock, config)


def create_simulator(config: AcmeConfig, ctx: DriverContext) -> CellCounter:
    cls = _sim_class()
    return cls.from_context({"durations": dict(config.durations)}, ctx)  # type: ignore[no-any-return, attr-defined]


def create_emulator(config: AcmeConfig, ctx: DriverContext) -> CellCounter:
    """The real driver on a pty served by the emulator (started now, stopped on disconnect)."""
    emulator = _emulator(ctx.clock, config.measure_s, ctx.seed)

    class Emulated(AcmeCounter):
        async def connect(self) -> None:
            if self._ser is None and not emulator.running:
                self.config = self.config.model_copy(update={"port": emulator.start_pty()})
            await super().connect()

        async def disconnect(self) -> None:
            await super().disconnect()
            emulator.stop()

    driver = Emulated(ctx.name, ctx.clock, config)
    driver.emulator = emulator  # type: ignore[attr-defined]
    return driver


SPEC = DriverSpec(
    name="acme.counter",
    instrument_class=CellCounter,
    config_model=AcmeConfig,
    create=create,
    create_simulator=create_simulator,
    create_emulator=create_emulator,
    description="Acme CytoCount 3000 cell counter (serial)",
    transport="serial",
    driver_class=AcmeCounter,
)
