"""Plumbing shared by the pylabrobot adapters: error mapping, a wire tap, quiet
chatterboxes, tracker switches and timed calls.

pylabrobot is imported lazily (inside functions): importing :mod:`drivers.plr` costs
nothing until a PLR driver is created.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import threading
import warnings
from collections import deque
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

from drivers.clock import Clock
from drivers.errors import (
    ChannelError,
    ConnectionLost,
    DeviceFault,
    InstrumentError,
    InstrumentTimeout,
    WireProtocolError,
)

T = TypeVar("T")
log = logging.getLogger("cellwright.drivers.plr")
RAW_KEEP = 512
"""Most bytes an error carries as ``raw`` (the end of what the failed call received)."""


class _Forward(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        log.handle(record)


def route_plr_logs() -> None:
    """Send the ``pylabrobot`` logger's records (it does not propagate) to the
    ``cellwright.drivers.plr`` logger instead of Python's last-resort stderr handler.
    Leaves the logger alone when someone already attached a handler."""
    plr = logging.getLogger("pylabrobot")
    if not plr.handlers:
        plr.addHandler(_Forward())


class WireTap:
    """Wraps a pylabrobot ``backend.io`` object and records the bytes it moves.

    Every attribute is delegated; ``write``/``read``/``readline`` also append to
    :attr:`transcript` (``("tx"|"rx", bytes)``) and :attr:`last_reply` holds the
    bytes read since the last write — what an error carries as ``raw``.
    """

    def __init__(self, inner: Any, keep: int = 400, flush_before_write: bool = False,
                 line_replies: bool = False) -> None:
        self._inner = inner
        self.flush_before_write = flush_before_write
        self.line_replies = line_replies
        self.transcript: deque[tuple[str, bytes]] = deque(maxlen=keep)
        self.last_reply = b""
        self._received = 0  # bytes read since the tap was made
        self._tail = b""  # the last RAW_KEEP of them

    def mark(self) -> int:
        """A position in the received stream (see :meth:`since`)."""
        return self._received

    def since(self, mark: int) -> bytes:
        """Bytes received since ``mark`` (at most the last :data:`RAW_KEEP`)."""
        n = self._received - mark
        return self._tail[-n:] if n > 0 else b""

    def _got(self, data: bytes) -> None:
        self.transcript.append(("rx", bytes(data)))
        self.last_reply += data
        self._received += len(data)
        self._tail = (self._tail + data)[-RAW_KEEP:]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def write(self, data: bytes, *args: Any, **kwargs: Any) -> Any:
        if self.flush_before_write and hasattr(self._inner, "reset_input_buffer"):
            # A telegram whose caller was cancelled (a clock timeout) may still have its
            # reply in flight: drop it so it is not read as the answer to this one.
            await self._inner.reset_input_buffer()
        self.transcript.append(("tx", bytes(data)))
        self.last_reply = b""
        return await self._inner.write(data, *args, **kwargs)

    async def read(self, *args: Any, **kwargs: Any) -> bytes:
        if self.line_replies:  # every reply ends its line: return at its end, not at the timeout
            data: bytes = await self._inner.readline()
        else:
            data = await self._inner.read(*args, **kwargs)
        self._got(data)
        return data

    async def readline(self, *args: Any, **kwargs: Any) -> bytes:
        data: bytes = await self._inner.readline(*args, **kwargs)
        self._got(data)
        return data


def tap_backend(backend: Any, flush_before_write: bool = False, line_replies: bool = False) -> WireTap | None:
    """Put a :class:`WireTap` on ``backend.io`` (when the backend has one).

    Args:
        flush_before_write: drop unread input before each write (request/response
            serial protocols such as the Cytomat's).
        line_replies: every reply is one line (an emulator's): a read returns at the line's
            end instead of waiting for the read timeout.
    """
    inner = getattr(backend, "io", None)
    if inner is None:
        return None
    if isinstance(inner, WireTap):
        return inner
    tap = WireTap(inner, flush_before_write=flush_before_write, line_replies=line_replies)
    backend.io = tap
    return tap


# -- error mapping ------------------------------------------------------------------------

_RECOVERABLE_CYTOMAT = {0x01, 0x02, 0x03, 0x31, 0x32, 0x33}


def _cytomat_codes() -> tuple[dict[type, str], dict[type, str]]:
    from pylabrobot.storage.cytomat.errors import error_map, error_register_map

    telegram = {type(exc): f"{code:02X}" for code, exc in error_map.items()}
    register = {type(exc): f"ER{reg.value}" for reg, exc in error_register_map.items()}
    return telegram, register


def map_error(device: str, exc: BaseException, raw: bytes | None = None) -> InstrumentError:
    """Translate anything a pylabrobot call raised into our error tree.

    Args:
        device: instrument name.
        exc: the exception.
        raw: bytes received on the wire for the failed exchange, if known.
    """
    if isinstance(exc, InstrumentError):
        return exc
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return InstrumentTimeout(device, text, raw=raw)
    try:
        import serial

        if isinstance(exc, serial.SerialException):
            return ConnectionLost(device, text, raw=raw)
    except ImportError:  # pragma: no cover - pyserial is a dependency
        pass
    if isinstance(exc, (ConnectionError, OSError)):
        return ConnectionLost(device, text, raw=raw)
    if isinstance(exc, UnicodeDecodeError):
        return WireProtocolError(device, f"reply is not text: {exc}", raw=raw)
    module = type(exc).__module__
    if module.startswith("pylabrobot.storage.cytomat"):
        telegram, register = _cytomat_codes()
        if type(exc) in telegram:
            code = telegram[type(exc)]
            return DeviceFault(device, text, code=code, recoverable=int(code, 16) in _RECOVERABLE_CYTOMAT, raw=raw)
        if type(exc) in register:
            return DeviceFault(device, text, code=register[type(exc)], raw=raw)
    if module.startswith("pylabrobot.storage.liconic"):
        return DeviceFault(device, text, code=type(exc).__name__, raw=raw)
    name = type(exc).__name__
    if name == "ChannelizedError":
        errors = getattr(exc, "errors", {})
        detail = "; ".join(f"channel {ch}: {type(e).__name__}: {e}" for ch, e in errors.items()) or text
        return ChannelError(device, detail, raw=raw)
    if name in ("TooLittleLiquidError", "TooLittleVolumeError", "NoTipError", "HasTipError"):
        return ChannelError(device, text, code=name, recoverable=False, raw=raw)
    if isinstance(exc, RuntimeError) and "respond" in str(exc):
        return InstrumentTimeout(device, text, raw=raw if raw is not None else b"")
    if isinstance(exc, (ValueError, IndexError, KeyError, AssertionError)) or "Unknown response" in str(exc) \
            or "Unknown" in str(exc):
        return WireProtocolError(device, text, raw=raw)
    return InstrumentError(device, text, code="plr", raw=raw)


async def timed(clock: Clock, device: str, awaitable: Awaitable[T], timeout_s: float | None,
                tap: WireTap | None = None, what: str = "call") -> T:
    """Await a pylabrobot coroutine with a clock timeout, mapping every failure.

    Raises:
        InstrumentTimeout: ``timeout_s`` (clock seconds) elapsed.
        InstrumentError: any other failure, mapped by :func:`map_error` with the
            bytes the wire tap saw.
    """
    mark = tap.mark() if tap is not None else 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return await clock.wait_for(awaitable, timeout_s)
    except (TimeoutError, asyncio.TimeoutError) as exc:
        raw = tap.since(mark) if tap is not None else None
        raise InstrumentTimeout(device, f"{what} did not finish within {timeout_s:g} s", raw=raw) from exc
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise map_error(device, exc, tap.since(mark) if tap is not None else None) from exc


# -- chatterbox output ----------------------------------------------------------------------

class _LogWriter(io.TextIOBase):
    def write(self, s: str) -> int:
        if s.strip():
            log.debug("chatterbox: %s", s.rstrip())
        return len(s)


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Route ``print`` output of chatterbox backends to the ``cellwright.drivers.plr``
    logger (DEBUG) instead of stdout. Process-wide while active: use around short calls."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(_LogWriter()):
        yield


# -- tracker switches -----------------------------------------------------------------------

_tracking_lock = threading.Lock()
_tracking_users = 0
_tracking_before: tuple[bool, bool] = (False, False)


def tracking_on() -> None:
    """Turn pylabrobot's global volume and tip tracking on (reference counted)."""
    global _tracking_users, _tracking_before
    from pylabrobot.resources import does_tip_tracking, does_volume_tracking, set_tip_tracking, set_volume_tracking

    with _tracking_lock:
        if _tracking_users == 0:
            _tracking_before = (does_volume_tracking(), does_tip_tracking())
        _tracking_users += 1
        set_volume_tracking(True)
        set_tip_tracking(True)


def tracking_off() -> None:
    """Release one :func:`tracking_on`; the last release restores the previous switches."""
    global _tracking_users
    from pylabrobot.resources import set_tip_tracking, set_volume_tracking

    with _tracking_lock:
        if _tracking_users == 0:
            return
        _tracking_users -= 1
        if _tracking_users == 0:
            set_volume_tracking(_tracking_before[0])
            set_tip_tracking(_tracking_before[1])


def resource_factory(name: str) -> Any:
    """A resource-library function of pylabrobot by name (``cor_cos_6_wellplate_16800uL_Fb``).

    Raises:
        ConfigurationError: no such function in ``pylabrobot.resources``.
    """
    import pylabrobot.resources as resources

    from drivers.errors import ConfigurationError

    fn = getattr(resources, name, None)
    if not callable(fn):
        raise ConfigurationError(f"pylabrobot.resources has no resource {name!r}")
    return fn
