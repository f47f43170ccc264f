"""Wire-level emulator of a Thermo Cytomat automated incubator (serial protocol).

It answers the telegrams pylabrobot 0.2.2's unmodified ``CytomatBackend`` sends
(``<type>:<command> <params>`` + CR LF; CR alone on a C2C 425):

========================  =====================================  ===========================
request                   meaning                                reply
========================  =====================================  ===========================
``ch:bs``                 overview register                      ``bs <hex>``
``ch:be`` / ``ch:bw``     error / warning register               ``be <hex>`` / ``bw <hex>``
``ch:ba``                 action register                        ``ba <hex>``
``ch:sw``                 swap (transfer) station                ``sw <pos><front><proc>``
``ch:ts``                 sensor register                        ``ts <base-12 digits>``
``ch:it|ic|ih|io``        temperature, CO2, humidity, O2         ``it +<nominal> +<actual>``
``rs:be``                 reset error register                   ``ok 00``
``ll:in``                 initialise                             ``ok <overview>``
``ll:gp 001|002``         close / open the automatic gate        ``ok <overview>``
``ll:sp 001|002``         shovel in / out                        ``ok <overview>``
``ll:vi|va|vd``, ``se:pb`` shakers (init / start / stop / speed) ``ok <hex>``
``mv:st <slot>``          storage -> transfer station            ``ok <overview>``
``mv:ts <slot>``          transfer station -> storage            ``ok <overview>``
``mv:sw|ws|wt|tw|...``    other handler moves                    ``ok <overview>``
========================  =====================================  ===========================

An action is accepted at once and runs for ``move_s`` device seconds with the busy
bit set; its effect (a plate changes place) happens when it completes. A refused
telegram is answered ``er <code>`` with the device's codes (01 busy, 02 unknown
command, 03 telegram structure, 04 bad parameter, 05 unknown location, 31 transfer
station empty, 32 transfer station occupied, ...). A failed move sets the error bit
and the error register, as the device does. Slots are absolute (``001``...) or
``<rack> <site>`` on a C2C 425.

Faults on demand: :meth:`CytomatEmulator.reply_error_next` (``er <code>``),
:meth:`CytomatEmulator.fail_next_move` (error register after the move),
:meth:`CytomatEmulator.jam_next_move` (busy bit never clears), :meth:`open_device_door`,
:meth:`set_co2`; wire faults (no reply, garbled, partial, disconnect) from
:class:`~simulators.serial_emulator.LineEmulator`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from simulators.serial_emulator import LineEmulator

_TELEGRAM = re.compile(r"^(?P<type>[a-z]{2}):(?P<cmd>[a-z]{2})(?: (?P<params>.*))?$")

# Overview register bits, as pylabrobot reads them (MSB first).
TRANSFER_OCCUPIED, DEVICE_DOOR_OPEN, GATE_OPEN, HANDLER_OCCUPIED = 0x80, 0x40, 0x20, 0x10
ERROR_SET, WARNING_SET, READY, BUSY = 0x08, 0x04, 0x02, 0x01

ERROR_CODES = {
    "01": "device still busy", "02": "command unknown", "03": "telegram structure error",
    "04": "incorrect parameter", "05": "unknown location", "11": "incorrect handler position",
    "12": "shovel extended", "21": "handler occupied", "22": "handler empty", "31": "transfer station empty",
    "32": "transfer station occupied", "33": "transfer station not in position", "41": "lift door not configured",
    "42": "lift door not open",
}
"""Telegram error codes (``er <code>``)."""


@dataclass
class _Move:
    done_at: float
    effect: Callable[[], None]
    error: str | None = None


@dataclass
class CytomatState:
    """The device's physical state (survives a reconnect).

    Attributes:
        slots: absolute slot number (1-based) -> occupied.
        transfer: a plate sits on the transfer station.
        handler: a plate sits on the handler shovel.
        gate_open: the automatic lift gate is open.
        device_door_open: the front (maintenance) door is open.
        initialised: ``ll:in`` ran since power-on.
        error_register, warning_register: two hex digits each.
        temperature_c, co2_percent, humidity_percent: actual values (nominal 37 / 5 / 95).
    """

    slots: dict[int, bool] = field(default_factory=dict)
    transfer: bool = False
    handler: bool = False
    gate_open: bool = False
    device_door_open: bool = False
    initialised: bool = False
    error_register: str = "00"
    warning_register: str = "00"
    temperature_c: float = 37.0
    co2_percent: float = 5.0
    humidity_percent: float = 95.0


class CytomatEmulator(LineEmulator):
    """A Cytomat with racks of the given capacities.

    Args:
        racks: slots per rack, in the order pylabrobot's racks are configured.
        time_fn: device time (s); pass ``clock.now``.
        move_s: device seconds one handler move takes.
        init_s: device seconds ``ll:in`` takes.
    """

    def __init__(self, racks: Sequence[int] = (21,), time_fn: Callable[[], float] | None = None,
                 move_s: float = 20.0, init_s: float = 5.0) -> None:
        super().__init__(time_fn)
        self.racks = list(racks)
        self.move_s = move_s
        self.init_s = init_s
        self.state = CytomatState(slots={i: False for i in range(1, sum(self.racks) + 1)})
        self._move: _Move | None = None
        self._jam = False
        self._reply_errors: list[tuple[str, str]] = []
        self._move_errors: list[str] = []

    # -- faults and scenario set-up ----------------------------------------------------
    def reply_error_next(self, code: str, times: int = 1, on: str = "") -> None:
        """Answer the next ``times`` telegrams (of type ``on``, e.g. ``mv``; any when empty)
        with ``er <code>``."""
        with self._lock:
            self._reply_errors.extend([(code, on)] * times)

    def device_fault_next(self) -> None:
        """Conformance hook: the next move telegram is refused with a non-recoverable code (05)."""
        self.reply_error_next("05", on="mv")

    def fail_next_move(self, error_register: str = "02") -> None:
        """The next ``mv`` runs, does not move the plate, and sets the error register."""
        with self._lock:
            self._move_errors.append(error_register)

    def jam_next_move(self) -> None:
        """The next ``mv`` is accepted and never completes: the busy bit stays set (a
        jammed handler) until :meth:`unjam`."""
        with self._lock:
            self._jam = True

    def unjam(self) -> None:
        """Clear a jam: the stuck move completes without effect, as after a manual rescue."""
        with self._lock:
            self._jam = False
            if self._move is not None and self._move.done_at == float("inf"):
                self._move = None

    def open_device_door(self, is_open: bool = True) -> None:
        """Open (or close) the front door: ``mv`` telegrams are refused with ``er 01``."""
        with self._lock:
            self.state.device_door_open = is_open

    def set_co2(self, percent: float) -> None:
        """Set the actual CO2 reading (the nominal stays 5.0)."""
        with self._lock:
            self.state.co2_percent = percent

    def load(self, slot: int) -> None:
        """An operator put a plate in ``slot`` by hand."""
        with self._lock:
            self.state.slots[slot] = True

    # -- registers -----------------------------------------------------------------------
    def _busy(self) -> bool:
        self._settle()
        return self._move is not None

    def _settle(self) -> None:
        move = self._move
        if move is not None and self.time_fn() >= move.done_at - 1e-9:
            self._move = None
            if move.error:
                self.state.error_register = move.error
            else:
                move.effect()

    def overview(self) -> int:
        """The overview register as an int."""
        busy = self._busy()
        s = self.state
        value = READY if s.initialised and not busy else 0
        value |= TRANSFER_OCCUPIED if s.transfer else 0
        value |= DEVICE_DOOR_OPEN if s.device_door_open else 0
        value |= GATE_OPEN if s.gate_open else 0
        value |= HANDLER_OCCUPIED if s.handler else 0
        value |= ERROR_SET if s.error_register != "00" else 0
        value |= WARNING_SET if s.warning_register != "00" else 0
        value |= BUSY if busy else 0
        return value

    # -- telegrams -------------------------------------------------------------------------
    def handle(self, line: bytes) -> bytes | None:
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            return b"er 03\r\n"
        m = _TELEGRAM.match(text.strip())
        if m is None:
            return b"er 03\r\n"
        for i, (code, on) in enumerate(self._reply_errors):
            if not on or m["type"] == on:
                del self._reply_errors[i]
                return f"er {code}\r\n".encode()
        kind, cmd, params = m["type"], m["cmd"], (m["params"] or "").strip()
        try:
            reply = self._dispatch(kind, cmd, params)
        except _Refused as refusal:
            reply = f"er {refusal.code}"
        return (reply + "\r\n").encode("ascii")

    def _dispatch(self, kind: str, cmd: str, params: str) -> str:
        s = self.state
        if kind == "ch":
            if cmd == "bs":
                return f"bs {self.overview():02X}"
            if cmd == "be":
                return f"be {s.error_register}"
            if cmd == "bw":
                return f"bw {s.warning_register}"
            if cmd == "ba":
                return "ba 45" if self._busy() else "ba 40"
            if cmd == "sw":
                return f"sw 1{int(s.transfer)}0"
            if cmd == "ts":
                bits = [0] * 15
                bits[2], bits[4], bits[5] = 1, int(s.handler), int(s.gate_open)
                bits[6], bits[7], bits[10] = int(not s.gate_open), int(s.transfer), int(s.device_door_open)
                return f"ts {_base12(int(''.join(map(str, bits)), 2))}"
            readings = {"it": (37.0, s.temperature_c), "ic": (5.0, s.co2_percent), "ih": (95.0, s.humidity_percent)}
            if cmd in readings:
                nominal, actual = readings[cmd]
                return f"{cmd} +{nominal:05.1f} +{actual:05.1f}"
            raise _Refused("02")
        if kind == "rs" and cmd == "be":
            s.error_register = "00"
            return "ok 00"
        if kind == "ll":
            if cmd == "in":
                return self._begin(self.init_s, lambda: setattr(s, "initialised", True), needs_init=False)
            if cmd == "gp" and params in ("001", "002"):
                return self._begin(2.0, lambda: setattr(s, "gate_open", params == "002"))
            if cmd == "sp" and params in ("001", "002"):
                return self._begin(2.0, lambda: None)
            if cmd in ("vi", "va", "vd"):
                return "ok 00"
            raise _Refused("02" if cmd not in ("gp", "sp") else "04")
        if kind == "se" and cmd == "pb":
            return "ok 00"
        if kind == "mv":
            return self._move_telegram(cmd, params)
        raise _Refused("02")

    def _move_telegram(self, cmd: str, params: str) -> str:
        s = self.state
        if cmd == "st":
            slot = self._slot(params)
            if not s.slots[slot]:
                raise _Refused("05")
            if s.transfer:
                raise _Refused("32")
            return self._begin(self.move_s, lambda: self._set(slot, False, transfer=True))
        if cmd == "ts":
            slot = self._slot(params)
            if not s.transfer:
                raise _Refused("31")
            if s.slots[slot]:
                raise _Refused("05")
            return self._begin(self.move_s, lambda: self._set(slot, True, transfer=False))
        if cmd in ("sw", "ws", "wt", "tw", "wh", "hw", "hs", "sh"):
            return self._begin(self.move_s, lambda: None)
        raise _Refused("02")

    def _set(self, slot: int, occupied: bool, transfer: bool) -> None:
        self.state.slots[slot] = occupied
        self.state.transfer = transfer

    def _begin(self, duration: float, effect: Callable[[], None], needs_init: bool = True) -> str:
        if self._busy() or self.state.device_door_open:
            raise _Refused("01")
        if needs_init and not self.state.initialised:
            raise _Refused("11")
        is_move = duration == self.move_s
        error = self._move_errors.pop(0) if self._move_errors and is_move else None
        if is_move and self._jam:
            self._jam, duration = False, float("inf")
        self._move = _Move(self.time_fn() + duration, effect, error)
        return f"ok {self.overview():02X}"

    def _slot(self, params: str) -> int:
        words = params.split()
        try:
            if len(words) == 1 and len(words[0]) == 3:
                slot = int(words[0])
            elif len(words) == 2:
                rack, site = int(words[0]), int(words[1])
                if not (0 <= rack < len(self.racks) and 0 <= site < self.racks[rack]):
                    raise _Refused("05")
                slot = sum(self.racks[:rack]) + site + 1
            else:
                raise _Refused("04")
        except ValueError:
            raise _Refused("04") from None
        if slot not in self.state.slots:
            raise _Refused("05")
        return slot


class _Refused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _base12(n: int) -> str:
    """``n`` in base 12 (pylabrobot parses the sensor register with ``int(x, 12)``)."""
    digits = ""
    while True:
        n, d = divmod(n, 12)
        digits = "0123456789AB"[d] + digits
        if n == 0:
            return digits


# -- emulator mode of ``plr.cytomat`` ---------------------------------------------------------

def _emulated_class() -> type:
    from drivers.plr.incubator import PLRIncubator, build_backend

    class EmulatedCytomat(PLRIncubator):
        """pylabrobot's unmodified ``CytomatBackend`` on a pty served by a :class:`CytomatEmulator`;
        the emulator starts on connect and stops on disconnect (its state survives)."""

        emulator: CytomatEmulator
        line_replies = True  # the emulator ends every reply with CR LF

        def _emulated_backend(self) -> object:
            cfg = self.config.model_copy(update={
                "backend": "cytomat", "port": self.emulator.url, "read_timeout_s": self.config.emulator.read_timeout_s})
            return build_backend(cfg)

        async def connect(self) -> None:
            if self.frontend is None and not self.emulator.running:
                self.emulator.start_pty()
            await super().connect()

        async def disconnect(self) -> None:
            await super().disconnect()
            self.emulator.stop()

        def station_seen(self, occupied: bool) -> None:
            """The workcell's truth about the transfer station (a mover may have emptied
            or filled it): the emulated sensor follows."""
            with self.emulator._lock:
                self.emulator.state.transfer = occupied

        async def check_in(self, plate: object) -> int:
            slot = await super().check_in(plate)  # type: ignore[arg-type]
            self.emulator.load(slot)  # the operator put it on the shelf
            return slot

    return EmulatedCytomat


def create_emulated(config: object, ctx: object) -> object:
    """``DriverSpec.create_emulator`` of ``plr.cytomat``: the real adapter and pylabrobot's
    unmodified Cytomat backend on an emulated serial port, mirrored into the workcell's
    culture model (plate locations stay consistent with the behavioural simulators)."""
    from drivers.plr.incubator import PLRIncubatorConfig, build_racks
    from drivers.spec import DriverContext
    from simulators.culture import culture_of
    from simulators.culture_sync import SyncedIncubator

    assert isinstance(config, PLRIncubatorConfig) and isinstance(ctx, DriverContext)
    config = config.model_copy(update={"backend": "cytomat"})
    cls = _emulated_class()
    emulator = CytomatEmulator([r.capacity for r in build_racks(config, ctx.name)], time_fn=ctx.clock.now,
                               move_s=config.emulator.move_s, init_s=config.emulator.init_s)
    driver = cls(ctx.name, ctx.clock, config)
    driver.emulator = emulator
    driver._make_backend = driver._emulated_backend
    return SyncedIncubator(driver, culture_of(ctx))
