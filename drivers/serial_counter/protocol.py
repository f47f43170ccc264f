"""The CC-1 line protocol: the one vocabulary shared by the driver and its emulator.

CC-1 is cellwright's reference cell counter protocol (ASCII, one request, one reply).
Both :mod:`drivers.serial_counter.driver` and :mod:`simulators.counter_emulator` import
this module, so the bytes one side writes are by construction the bytes the other
side parses.

Framing: every request and every reply is one line of printable ASCII terminated by
``\\r\\n`` (:data:`EOL`), at most :data:`MAX_LINE` bytes including the terminator.

Requests (``<sample>`` matches :data:`SAMPLE_RE`, ``<job>`` is a decimal integer)::

    IDN?              -> OK vendor=<v> model=<m> serial=<s> fw=<f>
    STATUS?           -> OK state=<idle|busy|error> job=<n> code=<Exx|->
    COUNT <sample>    -> OK job=<n> eta=<s>          (starts a count, returns at once)
    RESULT <job>      -> BUSY eta=<s>                (still counting)
                      |  OK total=<cells/mL> viable=<cells/mL> viab=<0..1> diam=<um> vol=<mL>
    ABORT             -> OK
    RESET             -> OK                           (clears an error state)

Any request may instead be answered ``ERR <code> <text>`` with a code of
:data:`ERROR_CODES`. A count is asynchronous on purpose: every wire call is short
and has a short timeout, and the long wait happens in the driver between ``RESULT``
polls, on the injected clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EOL = b"\r\n"
"""Line terminator of requests and replies."""

MAX_LINE = 256
"""Longest line (bytes, terminator included) either side accepts."""

ENCODING = "ascii"

SAMPLE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,48}$")
"""What a sample id may look like on the wire."""

# Request verbs.
IDN = "IDN?"
STATUS = "STATUS?"
COUNT = "COUNT"
RESULT = "RESULT"
ABORT = "ABORT"
RESET = "RESET"
VERBS = (IDN, STATUS, COUNT, RESULT, ABORT, RESET)

# Reply heads.
OK = "OK"
BUSY = "BUSY"
ERR = "ERR"

ERROR_CODES: dict[str, tuple[str, bool]] = {
    "E01": ("unknown command", True),
    "E02": ("bad argument", True),
    "E03": ("busy with another count", True),
    "E04": ("no such job", True),
    "E10": ("no sample in the chamber", True),
    "E11": ("focus failed", True),
    "E20": ("lamp failure", False),
    "E99": ("internal error", False),
}
"""Device error code -> (meaning, recoverable by ``RESET`` and a retry)."""

COUNT_FIELDS = ("total", "viable", "viab", "diam", "vol")
"""Fields of a finished ``RESULT`` reply, in wire order."""


class ProtocolViolation(ValueError):
    """A line does not follow the grammar above (the message says how)."""


@dataclass(frozen=True)
class Reply:
    """One parsed reply line.

    Attributes:
        head: ``OK``, ``BUSY`` or ``ERR``.
        fields: ``key=value`` pairs (values as text).
        code: the error code of an ``ERR`` reply.
        text: the error text of an ``ERR`` reply.
        raw: the line as received, terminator included.
    """

    head: str
    fields: dict[str, str]
    code: str = ""
    text: str = ""
    raw: bytes = b""

    def number(self, key: str) -> float:
        """Field ``key`` as a float.

        Raises:
            ProtocolViolation: the field is missing or not a number.
        """
        try:
            return float(self.fields[key])
        except (KeyError, ValueError):
            raise ProtocolViolation(f"field {key!r} missing or not a number") from None


def encode_request(verb: str, arg: str | None = None) -> bytes:
    """Bytes of one request line.

    Raises:
        ProtocolViolation: unknown verb, or an argument that is not a valid token.
    """
    if verb not in VERBS:
        raise ProtocolViolation(f"unknown verb {verb!r}")
    if arg is None:
        return verb.encode(ENCODING) + EOL
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,48}", arg):
        raise ProtocolViolation(f"argument {arg!r} is not a valid token")
    return f"{verb} {arg}".encode(ENCODING) + EOL


def decode_request(line: bytes) -> tuple[str, str | None]:
    """Split one request line (terminator optional) into verb and argument.

    Raises:
        ProtocolViolation: not ASCII, empty, unknown verb or too many words.
    """
    try:
        text = line.rstrip(b"\r\n").decode(ENCODING)
    except UnicodeDecodeError:
        raise ProtocolViolation("request is not ASCII") from None
    words = text.split(" ")
    if not words or words[0] not in VERBS:
        raise ProtocolViolation(f"unknown command {text[:20]!r}")
    if len(words) > 2:
        raise ProtocolViolation("too many arguments")
    return words[0], (words[1] if len(words) == 2 else None)


def encode_reply(head: str, fields: dict[str, object] | None = None) -> bytes:
    """Bytes of an ``OK`` or ``BUSY`` reply with ``key=value`` fields in the given order."""
    parts = [head] + [f"{k}={_fmt(v)}" for k, v in (fields or {}).items()]
    return " ".join(parts).encode(ENCODING) + EOL


def encode_error(code: str, text: str | None = None) -> bytes:
    """Bytes of an ``ERR <code> <text>`` reply (text defaults to the code's meaning)."""
    meaning = text if text is not None else ERROR_CODES.get(code, ("error", False))[0]
    return f"{ERR} {code} {meaning}".encode(ENCODING) + EOL


def decode_reply(line: bytes) -> Reply:
    """Parse one complete reply line (with its terminator).

    Raises:
        ProtocolViolation: missing terminator, not ASCII, unknown head, malformed
            field, or an ``ERR`` without a well-formed code.
    """
    if not line.endswith(EOL):
        raise ProtocolViolation("reply not terminated by CRLF")
    try:
        text = line[: -len(EOL)].decode(ENCODING)
    except UnicodeDecodeError:
        raise ProtocolViolation("reply is not ASCII") from None
    if not text.isprintable():
        raise ProtocolViolation("reply contains control characters")
    head, _, rest = text.partition(" ")
    if head == ERR:
        code, _, message = rest.partition(" ")
        if not re.fullmatch(r"E\d\d", code):
            raise ProtocolViolation(f"bad error code {code!r}")
        return Reply(ERR, {}, code=code, text=message, raw=line)
    if head not in (OK, BUSY):
        raise ProtocolViolation(f"unknown reply head {head[:16]!r}")
    fields: dict[str, str] = {}
    for word in rest.split():
        key, eq, value = word.partition("=")
        if not eq or not key.isidentifier() or not value:
            raise ProtocolViolation(f"malformed field {word[:24]!r}")
        fields[key] = value
    return Reply(head, fields, raw=line)


def sample_token(plate_id: str) -> str:
    """A wire-safe sample id for a plate id (invalid characters become ``_``, max 48)."""
    token = re.sub(r"[^A-Za-z0-9_.:-]", "_", plate_id)[:48]
    return token or "sample"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
