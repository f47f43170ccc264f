"""Preflight of an Opentrons Python protocol with ``opentrons.simulate`` (8.x), offline.

:func:`preflight` parses and simulates a protocol file, collects what went wrong, and
times the run from the simulated run log (:func:`estimate_seconds`): every leaf
command costs a fixed overhead plus, for liquid moves, volume / flow rate; delays
count their own duration. Opentrons' simulator does not time protocols itself (its
``DurationEstimator`` only serves pre-2.14 protocols), so this estimate is ours.

opentrons is imported here only, inside the functions (~1.8 s), after setting
``OT_API_CONFIG_DIR`` so the import does not write into ``~/.opentrons``. Runs are
serialised by a lock: ``opentrons.simulate`` keeps global state and, for API levels
>= 2.14, runs its own event loop — so never call :func:`preflight` on a running loop
(use :func:`preflight_async`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str], "PreflightReport"] = {}

# Seconds per leaf command of the run log (OT-2 gantry at default speeds).
COMMAND_SECONDS: dict[str, float] = {
    "Picking up tip": 6.0,
    "Dropping tip": 5.0,
    "Returning tip": 5.0,
    "Aspirating": 3.0,
    "Dispensing": 2.5,
    "Blowing out": 2.0,
    "Touching tip": 2.0,
    "Moving to": 2.0,
    "Air gap": 2.0,
    "Homing": 8.0,
    "Mixing": 0.0,
    "Transferring": 0.0,
    "Distributing": 0.0,
    "Consolidating": 0.0,
}
DEFAULT_COMMAND_S = 1.0
_FLOW = re.compile(r"at ([0-9.]+) uL/sec")


@dataclass(frozen=True)
class PreflightReport:
    """What simulating a protocol found.

    Attributes:
        ok: it parsed and simulated without error.
        errors: messages (empty when ``ok``).
        simulated_duration_s: estimated run time in seconds (0 when not ``ok``).
        commands: number of leaf commands in the run log.
        api_level: the protocol's ``apiLevel``.
        robot_type: ``OT-2`` or ``Flex``.
        parameters: the runtime-parameter values used.
        log: the run log texts (one per leaf command).
    """

    ok: bool
    errors: tuple[str, ...]
    simulated_duration_s: float
    commands: int
    api_level: str = ""
    robot_type: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    log: tuple[str, ...] = ()


def parse_parameters(text: str | dict[str, Any] | None) -> dict[str, Any]:
    """Runtime-parameter values from ``"a=1, b=2.5, c=true, d=text"`` or a JSON object.

    Raises:
        ValueError: not of either form.
    """
    if not text:
        return {}
    if isinstance(text, dict):
        return dict(text)
    text = text.strip()
    if text.startswith("{"):
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("parameters JSON must be an object")
        return value
    out: dict[str, Any] = {}
    for item in re.split(r"[,;]", text):
        if not item.strip():
            continue
        key, eq, raw = item.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ValueError(f"parameter {item.strip()!r} is not name=value")
        out[key.strip()] = _scalar(raw.strip())
    return out


def _scalar(raw: str) -> Any:
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw.strip("'\"")


def estimate_seconds(runlog: list[dict[str, Any]]) -> tuple[float, int, list[str]]:
    """Duration (s), leaf-command count and leaf texts of an ``opentrons.simulate`` run log."""
    total, leaves, texts = 0.0, 0, []
    for i, entry in enumerate(runlog):
        nxt = runlog[i + 1]["level"] if i + 1 < len(runlog) else -1
        if nxt > entry["level"]:
            continue  # a composite (transfer, mix): its children are counted
        payload = entry.get("payload", {})
        text = str(payload.get("text", ""))
        leaves += 1
        texts.append(text)
        if text.startswith(("Delaying", "Pausing")) and ("minutes" in payload or "seconds" in payload):
            total += 60.0 * float(payload.get("minutes", 0) or 0) + float(payload.get("seconds", 0) or 0)
            continue
        head = next((k for k in COMMAND_SECONDS if text.startswith(k)), None)
        total += COMMAND_SECONDS[head] if head else DEFAULT_COMMAND_S
        volume = payload.get("volume")
        flow = _FLOW.search(text)
        if volume and flow and float(flow.group(1)) > 0:
            total += float(volume) / float(flow.group(1))
    return total, leaves, texts


def preflight(path: str | Path, parameters: str | dict[str, Any] | None = None) -> PreflightReport:
    """Parse and simulate the protocol at ``path`` with runtime ``parameters``.

    Never raises for a bad protocol: problems are in ``errors``. Results are cached by
    (file content, parameters).

    Raises:
        RuntimeError: called on a thread with a running event loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("preflight() runs its own event loop; use await preflight_async() on a loop")
    path = Path(path)
    try:
        source = path.read_bytes()
        values = parse_parameters(parameters)
    except (OSError, ValueError) as exc:
        return PreflightReport(False, (f"{path}: {exc}",), 0.0, 0)
    key = (hashlib.sha256(source).hexdigest(), json.dumps(values, sort_keys=True))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _simulate(path, source, values)
        return _CACHE[key]


async def preflight_async(path: str | Path, parameters: str | dict[str, Any] | None = None) -> PreflightReport:
    """:func:`preflight` in a worker thread (the clock holds still while it runs)."""
    return await asyncio.get_running_loop().run_in_executor(None, preflight, path, parameters)


def _simulate(path: Path, source: bytes, values: dict[str, Any]) -> PreflightReport:
    os.environ.setdefault("OT_API_CONFIG_DIR", str(Path(tempfile.gettempdir()) / "cellwright-opentrons"))
    import io
    import logging

    quiet = logging.getLogger("opentrons")
    if not quiet.handlers:  # its first-import config warnings would go to stderr via logging's last resort
        quiet.addHandler(logging.NullHandler())
    from unittest import mock

    from opentrons import simulate
    from opentrons.protocol_runner.run_orchestrator import RunOrchestrator

    run = RunOrchestrator.run

    async def run_with_values(self: Any, deck_configuration: Any, protocol_source: Any = None,
                              run_time_param_values: Any = None) -> Any:
        return await run(self, deck_configuration, protocol_source, run_time_param_values or values or None)

    meta = _requirements(source.decode("utf-8", "replace"))
    try:
        with mock.patch.object(RunOrchestrator, "run", run_with_values):
            runlog, _ = simulate.simulate(io.BytesIO(source), path.name, log_level="error")
    except Exception as exc:  # every failure of a foreign protocol is a finding, not a crash
        return PreflightReport(False, (_describe(exc),), 0.0, 0, *meta, values)
    seconds, leaves, texts = estimate_seconds(runlog)
    return PreflightReport(True, (), round(seconds, 1), leaves, *meta, values, tuple(texts))


def _requirements(text: str) -> tuple[str, str]:
    level = re.search(r"[\"']apiLevel[\"']\s*:\s*[\"']([0-9.]+)[\"']", text)
    robot = re.search(r"[\"']robotType[\"']\s*:\s*[\"']([A-Za-z0-9-]+)[\"']", text)
    return (level.group(1) if level else "", robot.group(1) if robot else "OT-2")


def _describe(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None) or getattr(exc, "args", [None])[0]
    if isinstance(errors, list) and errors and hasattr(errors[0], "detail"):
        return "; ".join(f"{getattr(e, 'errorType', 'error')}: {e.detail}" for e in errors)
    return f"{type(exc).__name__}: {exc}"


def check_step(config: Any, action: str, args: Any) -> list[str]:
    """The ``opentrons.ot2`` driver's validate-time check of one protocol step: an
    Opentrons protocol file named by ``run_opentrons_protocol`` must exist and simulate.

    Returns:
        Problems, each one line (empty when the step is fine).
    """
    if action != "run_opentrons_protocol":
        return []
    file = str(args.get("file", ""))
    candidates = [Path(file)] + [Path(d) / file for d in getattr(config, "protocol_dirs", [])]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        return [f"Opentrons protocol {file!r} not found (looked in: {', '.join(str(c.parent) for c in candidates)})"]
    report = preflight(path.resolve(), str(args.get("parameters", "")))
    return [f"opentrons.simulate: {e}" for e in report.errors]
