"""A cell counter speaking the CC-1 line protocol over pyserial ``serial_for_url``.

The transport is any pyserial URL: a device path (``/dev/ttyUSB0``, a pty from
:mod:`simulators.counter_emulator`), ``socket://host:port`` (a serial-to-Ethernet
bridge or the emulator's loopback TCP), or ``loop://`` in tests.

Two kinds of timeout, on purpose:

* ``read_timeout_s`` — real seconds for one request/reply exchange. Bytes move in
  real time even when the engine runs on the virtual clock, so this one is wall time;
  it is short because every CC-1 call answers at once.
* ``count_timeout_s`` — clock seconds for a whole count (``COUNT`` then ``RESULT``
  polls with :meth:`Clock.sleep` in between). Under the virtual clock it is virtual.

Every failure on the wire becomes an :class:`~drivers.errors.InstrumentError` carrying
the bytes received: nothing → :class:`InstrumentTimeout` (``raw=b""``), a partial line
→ :class:`InstrumentTimeout` with the partial bytes, a line that breaks the grammar →
:class:`WireProtocolError`, ``ERR <code>`` → :class:`DeviceFault`, a closed port →
:class:`ConnectionLost`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from drivers.base import CellCounter
from drivers.clock import Clock
from drivers.errors import (
    ConnectionLost,
    DeviceFault,
    InstrumentError,
    InstrumentTimeout,
    StateError,
    WireProtocolError,
    check_state,
)
from drivers.labware import Plate
from drivers.results import CellCount, Identity, InstrumentStatus
from drivers.serial_counter import protocol as cc1
from drivers.spec import DriverConfig, DriverContext


class CounterEmulatorOptions(BaseModel):
    """How ``simulate: emulator`` serves the emulator (ignored for hardware).

    Attributes:
        transport: ``pty`` (a pseudo-terminal path) or ``tcp`` (``socket://127.0.0.1:<port>``).
        count_s: device seconds one count takes.
    """

    model_config = ConfigDict(extra="forbid")
    transport: Literal["pty", "tcp"] = "pty"
    count_s: float = Field(90.0, ge=0)


class SerialCounterConfig(DriverConfig):
    """Workcell config of ``serial.cc1_counter``.

    Attributes:
        url: pyserial URL or device path (``/dev/ttyUSB0``, ``socket://10.0.0.5:4001``).
        baudrate: bits per second (ignored by ``socket://``).
        read_timeout_s: real seconds allowed for one request/reply exchange.
        count_timeout_s: clock seconds allowed for one whole count.
        poll_s: clock seconds between ``RESULT`` polls after the announced ETA.
        emulator: options of emulator mode.
    """

    url: str = "socket://127.0.0.1:4001"
    baudrate: int = Field(9600, gt=0)
    read_timeout_s: float = Field(1.0, gt=0, le=30)
    count_timeout_s: float = Field(600.0, gt=0)
    poll_s: float = Field(5.0, gt=0)
    emulator: CounterEmulatorOptions = CounterEmulatorOptions()


Opener = Callable[..., Any]


class SerialCellCounter(CellCounter):
    """CC-1 cell counter driver.

    Args:
        name: instrument name in the workcell.
        clock: the clock every wait goes through.
        config: see :class:`SerialCounterConfig`.
        durations: per-action duration overrides (s), for the planner.
        opener: replaces ``serial.serial_for_url`` (tests).

    Idempotency: ``connect``/``disconnect`` are idempotent; ``count`` is repeatable
    (recovery class ``repeatable``): it only reads a sample.
    """

    def __init__(
        self,
        name: str,
        clock: Clock,
        config: SerialCounterConfig,
        durations: Mapping[str, float] | None = None,
        opener: Opener | None = None,
    ) -> None:
        super().__init__(name, clock, durations if durations is not None else config.durations)
        self.config = config
        self._opener = opener
        self._ser: Any = None
        self._wanted = False  # connect() called and disconnect() not: reopen a lost port on demand
        self._lock = asyncio.Lock()
        self._state = "offline"
        self._error: InstrumentError | None = None
        self._job: int | None = None
        self.transcript: deque[tuple[str, bytes]] = deque(maxlen=200)
        """Last wire traffic: ``("tx", bytes)`` and ``("rx", bytes)`` in order."""

    # -- lifecycle -----------------------------------------------------------------
    async def connect(self) -> None:
        """Open the port and check the device answers ``IDN?``.

        Raises:
            ConnectionLost: the port cannot be opened.
            InstrumentTimeout, WireProtocolError, DeviceFault: ``IDN?`` failed.
        """
        if self._ser is not None:
            return
        await self._open()
        self._wanted = True
        self._state = "idle"
        self._error = None
        try:
            await self.identify()
        except InstrumentError:
            await self.disconnect()
            raise

    async def _open(self) -> None:
        opener = self._opener
        if opener is None:
            import serial

            opener = serial.serial_for_url
        try:
            self._ser = await asyncio.get_running_loop().run_in_executor(
                None, lambda: opener(self.config.url, baudrate=self.config.baudrate, timeout=self.config.read_timeout_s,
                                     write_timeout=self.config.read_timeout_s)
            )
        except Exception as exc:  # pyserial raises SerialException, ValueError or OSError
            raise ConnectionLost(self.name, f"cannot open {self.config.url}: {exc}") from exc

    async def disconnect(self) -> None:
        """Close the port (idempotent; never raises)."""
        self._wanted = False
        self._state = "offline"
        self._job = None
        await self._close()

    async def _close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, ser.close)
            except Exception:  # closing a dead port must not fail disconnect
                pass

    async def identify(self) -> Identity:
        """``IDN?`` → vendor, model, serial, firmware.

        Raises:
            StateError: not connected.
            InstrumentError: see module docstring.
        """
        reply = await self._call(cc1.IDN)
        f = reply.fields
        return Identity(f.get("vendor", ""), f.get("model", ""), f.get("serial", ""), f.get("fw", ""))

    async def status(self) -> InstrumentStatus:
        """The driver's view of the instrument (no wire traffic)."""
        if self._error is not None:
            return InstrumentStatus("error", self._error.detail, self._error.code)
        return InstrumentStatus(self._state)

    async def abort(self) -> None:
        """Send ``ABORT`` if a count is running (best effort; never raises)."""
        if self._ser is None or self._job is None:
            self._job = None
            return
        await self._abort_quietly()

    async def _abort_quietly(self) -> None:
        self._job = None
        try:
            await self._call(cc1.ABORT)
        except (InstrumentError, StateError):
            pass

    async def reset_error(self) -> None:
        """Send ``RESET`` and clear the error; reopens the port after a lost connection.

        Raises:
            StateError: never connected.
            InstrumentError: the device did not accept ``RESET``.
        """
        check_state(self.name, self._wanted)
        await self._call(cc1.RESET)
        self._error = None
        self._state = "idle"
        self._job = None

    # -- the action --------------------------------------------------------------------
    async def count(self, plate: Plate) -> CellCount:
        """Count the sample of ``plate``: ``COUNT`` then ``RESULT`` polls.

        Raises:
            StateError: not connected, in error, or busy with another count.
            InstrumentTimeout: no result within ``count_timeout_s`` (clock seconds), or
                a reply did not arrive within ``read_timeout_s`` (real seconds).
            WireProtocolError, DeviceFault, ConnectionLost: see module docstring.
        """
        self._require_ready()
        deadline = self.clock.now() + self.config.count_timeout_s
        self._state = "busy"
        try:
            started = await self._call(cc1.COUNT, cc1.sample_token(plate.id))
            job = int(self._number(started, "job"))
            wait = self._number(started, "eta")
            self._job = job
            while True:
                remaining = deadline - self.clock.now()
                if remaining <= 0:
                    raise InstrumentTimeout(self.name, f"count of {plate.id} not done within "
                                            f"{self.config.count_timeout_s:g} s", code="count_timeout")
                await self.clock.sleep(min(max(wait, 0.0), remaining))
                reply = await self._call(cc1.RESULT, str(job))
                if reply.head == cc1.OK:
                    break
                wait = min(self.config.poll_s, max(self._number(reply, "eta"), 0.0) or self.config.poll_s)
            values = {k: self._number(reply, k) for k in cc1.COUNT_FIELDS}
            if not (0.0 <= values["viab"] <= 1.0) or values["total"] < 0 or values["viable"] > values["total"] * 1.0001:
                raise WireProtocolError(self.name, "count values out of range", raw=reply.raw)
            self._state = "idle"
            self._job = None
            return CellCount(values["total"], values["viable"], values["viab"], values["diam"], values["vol"])
        except InstrumentError as exc:
            if not isinstance(exc, ConnectionLost):
                await self._abort_quietly()  # the device may have started a count we lost track of
            self._fail(exc)
            raise
        finally:
            if self._state == "busy":
                self._state = "idle"

    # -- wire ---------------------------------------------------------------------------
    def _require_ready(self) -> None:
        check_state(self.name, self._wanted, self._error)
        if self._state == "busy":
            raise StateError(self.name, "busy with another count")

    def _fail(self, exc: InstrumentError) -> None:
        """Latch the error state for faults a retry cannot fix; recoverable errors do
        not latch (the engine retries them directly)."""
        self._job = None
        if not exc.recoverable:
            self._error = exc
            self._state = "error"

    def _number(self, reply: cc1.Reply, key: str) -> float:
        try:
            return reply.number(key)
        except cc1.ProtocolViolation as exc:
            raise WireProtocolError(self.name, str(exc), raw=reply.raw) from None

    async def _call(self, verb: str, arg: str | None = None) -> cc1.Reply:
        """One request/reply exchange (serialised; the port is never shared mid-call).

        Raises:
            StateError: not connected.
            InstrumentError: see module docstring.
        """
        check_state(self.name, self._wanted or self._ser is not None)
        request = cc1.encode_request(verb, arg)
        async with self._lock:
            if self._ser is None:  # lost earlier: reopen (raises ConnectionLost if it cannot)
                await self._open()
            ser = self._ser
            self.transcript.append(("tx", request))
            try:
                raw = await asyncio.get_running_loop().run_in_executor(None, _exchange, ser, request)
            except Exception as exc:  # SerialException / OSError: the port is gone
                await self._close()
                raise ConnectionLost(self.name, f"{verb}: {exc}", raw=b"") from exc
            self.transcript.append(("rx", raw))
        if not raw:
            raise InstrumentTimeout(self.name, f"no reply to {verb} within {self.config.read_timeout_s:g} s", raw=raw)
        if not raw.endswith(cc1.EOL):
            if len(raw) >= cc1.MAX_LINE:
                raise WireProtocolError(self.name, f"reply to {verb} longer than {cc1.MAX_LINE} bytes", raw=raw)
            raise InstrumentTimeout(self.name, f"incomplete reply to {verb}", raw=raw)
        try:
            reply = cc1.decode_reply(raw)
        except cc1.ProtocolViolation as exc:
            raise WireProtocolError(self.name, f"reply to {verb}: {exc}", raw=raw) from None
        if reply.head == cc1.ERR:
            meaning, recoverable = cc1.ERROR_CODES.get(reply.code, (reply.text, False))
            raise DeviceFault(self.name, f"{verb}: {reply.text or meaning}", code=reply.code,
                              recoverable=recoverable, raw=raw)
        if reply.head == cc1.BUSY and verb != cc1.RESULT:
            raise WireProtocolError(self.name, f"BUSY is not a reply to {verb}", raw=raw)
        return reply


def _exchange(ser: Any, request: bytes) -> bytes:
    """Write one request and read one reply line (runs in a worker thread).

    Stale bytes (a late reply to a timed-out call) are dropped before writing.
    """
    ser.reset_input_buffer()
    ser.write(request)
    ser.flush()
    return bytes(ser.read_until(cc1.EOL, cc1.MAX_LINE))


def create(config: SerialCounterConfig, ctx: DriverContext) -> SerialCellCounter:
    """Factory of the real driver (``DriverSpec.create``)."""
    return SerialCellCounter(ctx.name, ctx.clock, config)
