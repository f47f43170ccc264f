"""Serving a line-based device model on a pty or on loopback TCP, with wire faults.

Wire-level emulators (:mod:`simulators.cytomat_emulator`,
:mod:`simulators.counter_emulator`) subclass :class:`LineEmulator` and implement
:meth:`LineEmulator.handle`: one request line in, one reply (bytes) or ``None`` out.
This module does the plumbing:

* :meth:`LineEmulator.start_pty` — ``os.openpty`` with the device side in raw mode;
  returns the path any driver opens with ``serial.Serial(port=path)`` (that is how
  pylabrobot opens ports) or ``serial_for_url(path)``.
* :meth:`LineEmulator.start_tcp` — a listening socket on ``127.0.0.1`` with an
  ephemeral port; returns ``socket://127.0.0.1:<port>`` for ``serial_for_url``.

The server runs in a daemon thread and answers in real time, however the driver's
clock runs; device *durations* (a move, a count) are measured with ``time_fn``
(pass ``clock.now`` so they follow the virtual clock).

Wire faults (:meth:`LineEmulator.inject`), each consumed by the next request:
``no_reply`` (swallow it), ``garbled`` (bytes that are not the protocol), ``partial``
(first half of the reply, no terminator), ``disconnect`` (close the line mid-command,
as an unplugged cable does). Device error codes are the subclass's business.
"""

from __future__ import annotations

import os
import re
import select
import socket
import threading
import tty
from collections import deque
from collections.abc import Callable

WIRE_FAULTS = ("no_reply", "garbled", "partial", "disconnect")
GARBLED = b"\x02?\xff\xfe#~\r\n"
"""What a ``garbled`` fault sends: not ASCII, not the grammar of any of our protocols."""

_LINE = re.compile(rb"\r\n|\r|\n")


class LineEmulator:
    """Base of line-protocol emulators (one request line -> one reply).

    Args:
        time_fn: device time in seconds (``clock.now``); durations use it.

    Attributes:
        received: every request line received, terminator included, in order.
        sent: every reply sent, in order.
    """

    def __init__(self, time_fn: Callable[[], float] | None = None) -> None:
        self.time_fn: Callable[[], float] = time_fn or (lambda: 0.0)
        self.received: list[bytes] = []
        self.sent: list[bytes] = []
        self._faults: deque[str] = deque()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._master = -1
        self._slave = -1
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self.url = ""
        """Where a driver connects: a pty path or ``socket://127.0.0.1:<port>``."""

    # -- device model (subclasses) -----------------------------------------------------
    def handle(self, line: bytes) -> bytes | None:
        """Reply to one request line (terminator stripped); None sends nothing."""
        raise NotImplementedError

    # -- faults ----------------------------------------------------------------------------
    def inject(self, fault: str, times: int = 1, skip: int = 0) -> None:
        """Queue a wire fault for ``times`` requests, after letting ``skip`` requests pass.

        Raises:
            ValueError: unknown fault (see :data:`WIRE_FAULTS`).
        """
        if fault not in WIRE_FAULTS:
            raise ValueError(f"unknown wire fault {fault!r}; expected one of {', '.join(WIRE_FAULTS)}")
        with self._lock:
            self._faults.extend([""] * skip + [fault] * times)

    # -- serving ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the server thread serves."""
        return self._thread is not None and self._thread.is_alive()

    def start_pty(self) -> str:
        """Serve on a new pty; returns its device path (restartable after :meth:`stop`)."""
        self.stop()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no CR/LF translation: bytes pass unchanged
        self.url = os.ttyname(self._slave)
        self._start(self._serve_pty)
        return self.url

    def start_tcp(self) -> str:
        """Serve on ``127.0.0.1`` with an ephemeral port; returns the ``socket://`` URL."""
        self.stop()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self._listener = listener
        self.url = f"socket://127.0.0.1:{listener.getsockname()[1]}"
        self._start(self._serve_tcp)
        return self.url

    def stop(self) -> None:
        """Stop serving and close every descriptor (idempotent)."""
        if self._thread is not None:
            self._stop.set()
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
            self._thread.join(timeout=5)
            self._thread = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = self._wake_r = self._wake_w = -1
        for sock in (self._conn, self._listener):
            if sock is not None:
                sock.close()
        self._conn = self._listener = None

    def _start(self, target: Callable[[], None]) -> None:
        self._stop.clear()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=target, name=f"{type(self).__name__}-server", daemon=True)
        self._thread.start()

    def _serve_pty(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master, self._wake_r], [], [], 1.0)
            if self._wake_r in ready or self._master not in ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # the driver side closed; keep serving for a reopen
                self._stop.wait(0.01)
                continue
            buffer = self._process(buffer + chunk, lambda data: os.write(self._master, data))
            if buffer is None:  # disconnect fault: hang up the line for good
                os.close(self._master)
                self._master = -1
                return

    def _serve_tcp(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([self._listener, self._wake_r], [], [], 1.0)
            if self._listener not in ready:
                continue
            conn, _ = self._listener.accept()
            self._conn = conn
            buffer: bytes | None = b""
            while not self._stop.is_set() and buffer is not None:
                ready, _, _ = select.select([conn, self._wake_r], [], [], 1.0)
                if conn not in ready:
                    continue
                chunk = conn.recv(4096)
                if not chunk:
                    break
                buffer = self._process(buffer + chunk, conn.sendall)
            conn.close()
            self._conn = None

    def _process(self, buffer: bytes, write: Callable[[bytes], object]) -> bytes | None:
        """Answer every complete line in ``buffer``; returns the unterminated rest, or
        None after a ``disconnect`` fault."""
        while True:
            match = _LINE.search(buffer)
            if match is None:
                return buffer
            line, buffer = buffer[: match.start()], buffer[match.end():]
            if not line:
                continue
            with self._lock:
                self.received.append(line + match.group())
                fault = (self._faults.popleft() or None) if self._faults else None
                reply = None if fault in ("no_reply", "disconnect") else self.handle(line)
            if fault == "disconnect":
                return None
            if fault == "garbled":
                reply = GARBLED
            elif fault == "partial" and reply:
                reply = reply[: max(1, len(reply) // 2)].rstrip(b"\r\n")
            if reply:
                self.sent.append(reply)
                write(reply)
