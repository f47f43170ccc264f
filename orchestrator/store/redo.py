"""The redo log: how a running engine makes an event durable without a database commit.

While the engine runs, its writes collect in one open SQLite transaction. Before every
instrument action (and whenever the event loop falls idle) the events written since
the last such point are appended to ``<database>-redo`` with a single ``write`` (and an
``fsync`` for ``full`` durability): from then on they survive a crash of the process.
The transaction itself is committed every few tens of milliseconds of real time, and the
log is emptied after each commit.

After a crash the next process that opens the database replays the log: every line is
a whole event with its hash, so the replay checks that the lines continue the chain
exactly where the database stops, and applies them through the same projection code.
A process holds an exclusive ``flock`` on the log while it writes to it, so a log that
belongs to a live engine is never replayed by somebody else.

Line format: ``json([seq, run_id, kind, subject, actor, sim_time, wall_time,
prev_hash, hash]) TAB payload LF`` — the payload is kept byte for byte as it was hashed.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from json.encoder import encode_basestring as _quote  # C-accelerated
from dataclasses import dataclass
from typing import Any


class RedoLogDamaged(Exception):
    """A complete line of the redo log does not continue the chain (edited or corrupt)."""


@dataclass(frozen=True)
class LoggedEvent:
    """One event as the redo log holds it (``payload`` as hashed)."""

    seq: int
    run_id: str | None
    kind: str
    subject: str | None
    actor: str
    sim_time: float | None
    wall_time: str
    prev_hash: str
    hash: str
    payload: str


def encode(seq: int, run_id: str | None, kind: str, subject: str | None, actor: str, sim_time: float | None,
           wall_time: str, prev_hash: str, digest: str, payload: str) -> str:
    """One log line (the payload is canonical JSON, which never holds a raw TAB or LF).

    Built by hand rather than with ``json.dumps`` (it runs for every event of a running
    engine); :func:`read` parses it with ``json.loads``.
    """
    if isinstance(sim_time, float) and math.isfinite(sim_time):
        t = repr(sim_time)  # the shortest text that reads back as the same float
    else:
        t = json.dumps(sim_time)  # None, an int, or a non-finite float: as the hash saw it
    return (f"[{int(seq)},{_text(run_id)},{_quote(kind)},{_text(subject)},{_quote(actor)},{t},{_quote(wall_time)},"
            f"{_quote(prev_hash)},{_quote(digest)}]\t{payload}\n")


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


class RedoLog:
    """The redo log of one database, locked for this process.

    Args:
        path: the log file (``<database>-redo``).
        sync: fsync after every append (``full`` durability).

    Raises:
        BlockingIOError: another live process holds the log.
        OSError: the file cannot be opened.
    """

    def __init__(self, path: str, sync: bool = False) -> None:
        self.path = path
        self.sync = sync
        for _ in range(100):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise
            if self._is_at_path(fd):
                self.fd = fd
                return
            os.close(fd)  # its holder removed it between our open and our lock: open the new one
        raise OSError(f"{path} keeps being replaced")

    def _is_at_path(self, fd: int) -> bool:
        try:
            here, there = os.fstat(fd), os.stat(self.path)
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def remove_if_empty(self) -> None:
        """Delete the (locked, empty) log file; openers that raced us retry on the new one."""
        try:
            if self.fd >= 0 and os.fstat(self.fd).st_size == 0 and self._is_at_path(self.fd):
                os.unlink(self.path)
        except OSError:
            pass

    def append(self, lines: list[str]) -> None:
        """Append lines with one write (then fsync if ``sync``).

        Raises:
            OSError: the write failed (disk full ...).
        """
        data = "".join(lines).encode()
        written = os.write(self.fd, data)
        while written < len(data):  # a short write (rare: signals, quotas); finish it
            written += os.write(self.fd, data[written:])
        if self.sync:
            os.fsync(self.fd)

    def clear(self) -> None:
        """Empty the log (after its events were committed to the database)."""
        os.ftruncate(self.fd, 0)

    def close(self) -> None:
        """Release the lock and close (idempotent)."""
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


def engine_holds(path: str) -> bool:
    """Whether an engine holds the redo log at ``path`` (its exclusive lock): probed with a
    shared lock taken and dropped at once; no file is created."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # no log: no engine (an engine keeps its log until it closes)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # drops our lock
    return False


def read(path: str) -> tuple[list[LoggedEvent], int]:
    """The whole lines of a redo log, and how many bytes of a torn last line were ignored.

    Raises:
        RedoLogDamaged: a whole line cannot be parsed.
    """
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    events = []
    for number, raw in enumerate(data[:end].splitlines(), start=1):
        try:
            head, tab, payload = raw.decode("utf-8", errors="strict").partition("\t")
            fields: list[Any] = json.loads(head)
            if not tab or len(fields) != 9:
                raise ValueError("expected 9 fields and a payload")
            seq, run_id, kind, subject, actor, sim_time, wall_time, prev_hash, digest = fields
            events.append(LoggedEvent(int(seq), run_id, kind, subject, actor, sim_time, wall_time, prev_hash,
                                      digest, payload))
        except (ValueError, TypeError) as exc:
            raise RedoLogDamaged(f"{path}:{number}: not a redo-log record ({exc})") from None
    return events, len(data) - end
