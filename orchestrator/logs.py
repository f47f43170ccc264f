"""structlog set-up: JSON lines to a file, readable lines on the terminal.

Every record carries whatever was bound (``run_id``, ``step``, ``device``) and the
engine's clock time as ``sim_time``.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class _Tee:
    """Final processor: JSON to the file, and a readable line to the terminal at or above a level."""

    def __init__(self, file: TextIO | None, console_level: int) -> None:
        self.file = file
        self.console_level = console_level
        self.console = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(),
                                                     exception_formatter=structlog.dev.plain_traceback)

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        level = _LEVELS.get(event.get("level", "info"), 20)
        if self.file is not None and not self.file.closed:
            self.file.write(json.dumps(event, default=str) + "\n")
            self.file.flush()
        if level >= self.console_level:
            return self.console(logger, name, dict(event))
        raise structlog.DropEvent


def configure(log_file: Path | None = None, console_level: str = "warning") -> TextIO | None:
    """Route structlog (and pylabrobot's stdlib logger) to ``log_file`` and the terminal.

    Returns:
        The open log file (close it when done), or None.
    """
    handle: TextIO | None = None
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handle = log_file.open("a", encoding="utf-8")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _Tee(handle, _LEVELS.get(console_level, 30)),
        ],
        # sys.stderr is looked up per call: a test runner may swap it between calls.
        logger_factory=lambda *args: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )
    plr = logging.getLogger("pylabrobot")
    plr.setLevel(logging.WARNING)
    return handle


def ensure_configured() -> None:
    """When nothing configured logging (library use, tests, benchmarks): warnings and
    errors only, readable, on stderr — never info lines on stdout."""
    if not structlog.is_configured():
        configure(None, "warning")


def close(handle: TextIO | None) -> None:
    """Close a log file opened by :func:`configure` and fall back to the quiet default."""
    if handle is not None:
        handle.close()
    configure(None, "warning")
