"""The driver error tree.

Every failure a driver reports is one of these. Engines branch on the class and on
``recoverable``; people read ``str(error)``.

```
CellwrightError
├── ConfigurationError          bad workcell or driver configuration
├── StateError                  call rejected before any hardware was touched
├── StorageFault                records cannot be written (disk full, read-only)
└── InstrumentError             the instrument (or the way to it) failed
    ├── ConnectionLost          transport closed or never opened
    ├── InstrumentTimeout       no (complete) reply within the timeout
    ├── WireProtocolError       reply could not be parsed; carries the bytes
    ├── DeviceFault             the device reported an error code
    └── ChannelError            one channel / well / slot failed, others fine
```
"""

from __future__ import annotations


class CellwrightError(Exception):
    """Root of every error the project raises on purpose."""


class ConfigurationError(CellwrightError):
    """A workcell, driver or labware configuration is invalid.

    Args:
        message: what is wrong and where (file:line:col or field path).
    """


class StateError(CellwrightError):
    """A call was rejected because the instrument is not in a state that allows it.

    Raised *before* any hardware is touched, so the instrument state is unchanged.

    Args:
        device: instrument name.
        message: what was expected.
    """

    def __init__(self, device: str, message: str) -> None:
        super().__init__(f"{device}: {message}")
        self.device = device
        self.message = message


class StorageFault(CellwrightError):
    """Records cannot be written (disk full, read-only file system): nothing more may
    happen physically until the storage is fixed. The engine pauses the run (its journal
    raises the subclass ``orchestrator.store.StoreError``; a simulator that cannot
    persist its world raises this)."""


class InstrumentError(CellwrightError):
    """An instrument failed.

    Attributes:
        device: instrument name from the workcell.
        code: short machine-readable code (``"E12"``, ``"timeout"``...).
        recoverable: True when a retry or ``reset_error`` may succeed.
        detail: human text.
        raw: the bytes received on the wire, when there were any.
    """

    default_code = "error"
    default_recoverable = False

    def __init__(
        self,
        device: str,
        detail: str,
        *,
        code: str | None = None,
        recoverable: bool | None = None,
        raw: bytes | None = None,
    ) -> None:
        self.device = device
        self.code = code or self.default_code
        self.recoverable = self.default_recoverable if recoverable is None else recoverable
        self.detail = detail
        self.raw = raw
        text = f"{device}: [{self.code}] {detail}"
        if raw is not None:
            text += f" (received {raw!r})"
        super().__init__(text)

    @property
    def kind(self) -> str:
        """Error kind used by recovery policies (``timeout``, ``device_fault``...)."""
        return _KINDS.get(type(self), "instrument_error")


class ConnectionLost(InstrumentError):
    """The transport is closed, unplugged, or could not be opened."""

    default_code = "connection"
    default_recoverable = True


class InstrumentTimeout(InstrumentError):
    """No complete reply arrived within the call's timeout."""

    default_code = "timeout"
    default_recoverable = True


class WireProtocolError(InstrumentError):
    """A reply was garbled, truncated or not of the documented form."""

    default_code = "protocol"
    default_recoverable = True


class DeviceFault(InstrumentError):
    """The device reported an error code of its own."""

    default_code = "fault"


class ChannelError(InstrumentError):
    """One channel, well or slot failed; the rest of the instrument is usable."""

    default_code = "channel"
    default_recoverable = True


_KINDS: dict[type, str] = {
    InstrumentError: "instrument_error",
    ConnectionLost: "connection",
    InstrumentTimeout: "timeout",
    WireProtocolError: "protocol",
    DeviceFault: "device_fault",
    ChannelError: "channel",
}

ERROR_KINDS: tuple[str, ...] = tuple(sorted(set(_KINDS.values())))
"""Every value ``InstrumentError.kind`` can take; protocols name these in ``on_error``."""


def check_state(device: str, connected: bool, error: InstrumentError | None = None, busy: str | None = None) -> None:
    """Reject a call before any hardware is touched (every driver's state check).

    Raises:
        StateError: not connected; or latched in ``error`` (``reset_error()`` clears
            it); or ``busy`` names the action in progress.
    """
    if not connected:
        raise StateError(device, "not connected; call connect() first")
    if error is not None:
        raise StateError(device, f"in error [{error.code}]; call reset_error() first")
    if busy:
        raise StateError(device, f"busy ({busy})")
