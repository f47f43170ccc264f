"""OT-2 / Flex liquid handler over the robot's HTTP API, with ``opentrons.simulate`` preflight.

Each of our actions runs one Opentrons Python protocol on the robot: by default the
bundled ``protocols/culture_ops.py`` with runtime parameters (operation, volume,
wells, reservoir columns); :meth:`OpentronsLiquidHandler.run_opentrons_protocol`
runs any existing protocol file. A run goes:

1. preflight — parse and simulate offline (:mod:`drivers.opentrons.preflight`); a
   protocol that fails is refused with ``StateError`` before the robot is touched;
   the simulated duration sets the run's timeout (``run_timeout_factor`` x + margin);
2. ``POST /protocols`` (cached per file content) and wait for the robot's analysis;
3. ``POST /runs`` with the runtime-parameter values, ``play``;
4. poll ``GET /runs/{id}`` every ``poll_s`` clock seconds until ``succeeded``;
   ``failed`` / ``stopped`` / ``awaiting-recovery`` raise :class:`DeviceFault` with the
   robot's error; a timeout sends ``stop`` and raises :class:`InstrumentTimeout`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from drivers.base import LiquidHandler, action
from drivers.clock import Clock
from drivers.errors import (
    ConfigurationError,
    DeviceFault,
    InstrumentError,
    InstrumentTimeout,
    StateError,
    check_state,
)
from drivers.labware import Plate
from drivers.opentrons.client import TERMINAL, RobotClient
from drivers.opentrons.preflight import PreflightReport, parse_parameters, preflight, preflight_async
from drivers.results import Identity, InstrumentStatus
from drivers.spec import DriverConfig, DriverContext

CULTURE_PROTOCOL = Path(__file__).resolve().parent / "protocols" / "culture_ops.py"
PLATE_WELLS = (6, 12, 24, 96)


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


class OpentronsEmulatorOptions(BaseModel):
    """Emulator mode only: how the loopback robot behaves.

    Attributes:
        speed: run-time multiplier applied to the preflight duration (1 = as estimated).
    """

    model_config = ConfigDict(extra="forbid")
    speed: float = Field(1.0, gt=0)


class OpentronsConfig(DriverConfig):
    """Workcell config of ``opentrons.ot2`` (also an Opentrons Flex).

    Attributes:
        host, port: robot address (``31950``).
        request_timeout_s: per HTTP request, real seconds.
        poll_s: clock seconds between run status polls.
        analysis_timeout_s: clock seconds for the robot's protocol analysis.
        run_timeout_factor, run_timeout_margin_s: a run may take factor x preflight + margin.
        poll_failures: consecutive failed polls tolerated (the run goes on without us).
        protocol: protocol file of the culture actions (default: the bundled one).
        troughs: reagent -> reservoir column (1-based); ``cells`` is the seeding suspension.
        neutralise_with: medium used by harvest and reseed.
        protocol_dirs: where relative ``file`` names of ``run_opentrons_protocol`` are looked up.
        preflight: simulate every protocol before uploading it.
        emulator: options of emulator mode.
    """

    host: str = "169.254.1.1"
    port: int = Field(31950, gt=0, lt=65536)
    request_timeout_s: float = Field(10.0, gt=0)
    poll_s: float = Field(5.0, gt=0)
    analysis_timeout_s: float = Field(300.0, gt=0)
    run_timeout_factor: float = Field(2.0, ge=1)
    run_timeout_margin_s: float = Field(300.0, ge=0)
    poll_failures: int = Field(3, ge=1)
    protocol: str = ""
    troughs: dict[str, int] = {"mTeSR Plus": 1, "accutase": 2, "cells": 3, "celltiter_glo": 4}
    neutralise_with: str = "mTeSR Plus"
    protocol_dirs: list[str] = []
    preflight: bool = True
    emulator: OpentronsEmulatorOptions = OpentronsEmulatorOptions()


class OpentronsLiquidHandler(LiquidHandler):
    """Our :class:`~drivers.base.LiquidHandler` on an Opentrons robot.

    Implements ``SupportsOutcomeQuery`` from the robot's record of the last run of each action.
    """

    def __init__(self, name: str, clock: Clock, config: OpentronsConfig) -> None:
        super().__init__(name, clock, config.durations)
        self.config = config
        self.client = RobotClient(name, config.host, config.port, config.request_timeout_s)
        self.protocol = Path(config.protocol) if config.protocol else CULTURE_PROTOCOL
        self._connected = False
        self._health: dict[str, Any] = {}
        self._uploaded: dict[str, str] = {}  # sha256 of file -> protocol id
        self._busy: str | None = None
        self._run_id: str | None = None
        self._last_run: dict[str, str] = {}  # action -> run id
        self._error: InstrumentError | None = None

    # -- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Check the robot answers ``GET /health`` (idempotent).

        Raises:
            ConnectionLost, InstrumentTimeout, WireProtocolError: it does not.
        """
        if self._connected:
            return
        self._health = await self.client.health()
        self._connected = True
        self._uploaded.clear()

    async def disconnect(self) -> None:
        """Forget the session (idempotent; a running protocol keeps running on the robot)."""
        self._connected = False

    async def identify(self) -> Identity:
        """Model, serial and robot software version from ``/health``. Raises StateError offline."""
        self._require_online()
        h = self._health
        return Identity("Opentrons", str(h.get("robot_model", "OT-2")), str(h.get("robot_serial", "")),
                        str(h.get("api_version", "")))

    async def status(self) -> InstrumentStatus:
        """offline / error / busy (with the run id) / idle."""
        return InstrumentStatus.of(self._connected, self._error, self._busy,
                                   busy_detail=f"{self._busy} run {self._run_id}")

    async def abort(self) -> None:
        """Send ``stop`` to the active run (best effort; never raises)."""
        if self._connected and self._run_id is not None:
            try:
                await self.client.action(self._run_id, "stop")
            except InstrumentError:
                pass

    async def reset_error(self) -> None:
        """Clear the error (the robot itself needs no reset between runs). Raises StateError offline."""
        self._require_online()
        self._error = None

    # -- actions -----------------------------------------------------------------------
    async def seed(self, plate: Plate, cells_per_well: float, volume_ul: float) -> None:
        """Run ``seed``: ``volume_ul`` µL of the ``cells`` column into every well."""
        if cells_per_well <= 0:
            raise StateError(self.name, f"cells_per_well must be > 0 (got {cells_per_well})")
        await self._culture("seed", plate, volume_ul, "cells")

    async def exchange_medium(self, plate: Plate, volume_ul: float, medium: str = "mTeSR Plus") -> None:
        """Run ``exchange_medium``: empty each well to waste, add ``volume_ul`` µL of ``medium``."""
        await self._culture("exchange_medium", plate, volume_ul, medium)

    async def dissociate(self, plate: Plate, volume_ul: float, reagent: str = "accutase") -> None:
        """Run ``dissociate``: empty each well, add ``volume_ul`` µL of ``reagent``."""
        await self._culture("dissociate", plate, volume_ul, reagent)

    async def harvest(self, plate: Plate, volume_ul: float) -> None:
        """Run ``harvest``: neutralise with ``volume_ul`` µL per well, pool into the collection trough."""
        await self._culture("harvest", plate, volume_ul, self.config.neutralise_with)

    async def reseed(self, plate: Plate, split_ratio: float, volume_ul: float) -> None:
        """Run ``reseed`` at ``split_ratio`` into ``volume_ul`` µL per well."""
        if split_ratio < 1:
            raise StateError(self.name, f"split_ratio must be >= 1 (got {split_ratio})")
        await self._culture("reseed", plate, volume_ul, self.config.neutralise_with, split_ratio)

    async def add_reagent(self, plate: Plate, reagent: str, volume_ul: float) -> None:
        """Run ``add_reagent``: ``volume_ul`` µL of ``reagent`` into every well."""
        await self._culture("add_reagent", plate, volume_ul, reagent)

    @action(recovery="operator", duration_s=600, summary="run an existing Opentrons protocol file")
    async def run_opentrons_protocol(self, file: str, parameters: str = "") -> None:
        """Preflight, upload and run the Opentrons Python protocol ``file`` with runtime
        ``parameters`` (``"a=1, b=2"`` or a JSON object).

        Raises:
            ConfigurationError: the file does not exist or the parameters do not parse.
            StateError: offline, busy, in error, or the protocol fails preflight.
            InstrumentError: the run failed on the robot (see the module docstring).
        """
        path = self.resolve(file)
        try:
            values = parse_parameters(parameters)
        except ValueError as exc:
            raise ConfigurationError(f"{self.name}: parameters {parameters!r}: {exc}") from None
        await self._run(path, values, "run_opentrons_protocol")

    def resolve(self, file: str) -> Path:
        """The protocol file ``file`` names (absolute, or in ``protocol_dirs``, or the cwd).

        Raises:
            ConfigurationError: no such file.
        """
        candidates = [Path(file)] + [Path(d) / file for d in self.config.protocol_dirs]
        for path in candidates:
            if path.is_file():
                return path.resolve()
        raise ConfigurationError(f"{self.name}: Opentrons protocol {file!r} not found "
                                 f"(looked in: {', '.join(str(c.parent) for c in candidates)})")

    async def preflight(self, file: str, parameters: str = "") -> PreflightReport:
        """Preflight ``file`` without running it (see :mod:`drivers.opentrons.preflight`)."""
        return await preflight_async(self.resolve(file), parameters)

    def culture_parameters(self, action_name: str, plate: Plate, volume_ul: float, reagent: str,
                           split_ratio: float = 1.0) -> dict[str, Any]:
        """Runtime-parameter values of the culture protocol for one action.

        Raises:
            StateError: an unsupported plate, a non-positive volume, or a reagent with no column.
        """
        if plate.model.wells not in PLATE_WELLS:
            raise StateError(self.name, f"{plate.model.name}: the culture protocol handles 6/12/24/96-well plates")
        if volume_ul <= 0:
            raise StateError(self.name, f"volume_ul must be > 0 (got {volume_ul})")
        troughs = {_key(k): v for k, v in self.config.troughs.items()}
        if _key(reagent) not in troughs:
            raise StateError(self.name, f"no reservoir column holds {reagent!r}; configured: {', '.join(troughs)}")
        return {"operation": action_name, "volume_ul": float(volume_ul), "wells": plate.model.wells,
                "source": troughs[_key(reagent)], "medium": troughs.get(_key(self.config.neutralise_with), 1),
                "split_ratio": float(split_ratio)}

    def duration_of(self, action_name: str, **args: Any) -> float:
        """The preflight duration of the action's protocol run when known, else nominal."""
        if action_name in self.durations:
            return super().duration_of(action_name, **args)
        try:
            if action_name == "run_opentrons_protocol" and "file" in args:
                report = _preflight_blocking(self.resolve(str(args["file"])), args.get("parameters") or "")
            elif isinstance(args.get("plate"), Plate):
                defaults = {"seed": "cells", "exchange_medium": "mTeSR Plus", "dissociate": "accutase"}
                reagent = args.get("medium") or args.get("reagent") or defaults.get(action_name,
                                                                                      self.config.neutralise_with)
                values = self.culture_parameters(action_name, args["plate"], float(args.get("volume_ul", 0)),
                                                 str(reagent), float(args.get("split_ratio", 1.0)))
                report = _preflight_blocking(self.protocol, values)
            else:
                return super().duration_of(action_name, **args)
        except (StateError, ConfigurationError):
            return super().duration_of(action_name, **args)
        return report.simulated_duration_s if report.ok else super().duration_of(action_name, **args)

    async def action_outcome(self, action_name: str, args: Mapping[str, Any]) -> bool | None:
        """Did the last run of ``action_name`` succeed? From ``GET /runs/{id}``; None while it
        runs or when this session started none."""
        run_id = self._last_run.get(action_name)
        if run_id is None or not self._connected:
            return None
        try:
            status = (await self.client.run(run_id)).get("status")
        except InstrumentError:
            return None
        return True if status == "succeeded" else False if status in TERMINAL else None

    # -- machinery ---------------------------------------------------------------------
    async def _culture(self, action_name: str, plate: Plate, volume_ul: float, reagent: str,
                       split_ratio: float = 1.0) -> None:
        values = self.culture_parameters(action_name, plate, volume_ul, reagent, split_ratio)
        await self._run(self.protocol, values, action_name)

    async def _run(self, path: Path, values: dict[str, Any], label: str) -> None:
        check_state(self.name, self._connected, self._error, self._busy)
        self._busy = label
        try:
            expected = 0.0
            if self.config.preflight:
                report = await preflight_async(path, values)
                if not report.ok:
                    raise StateError(self.name, f"{path.name} fails preflight: {'; '.join(report.errors)}")
                expected = report.simulated_duration_s
            protocol_id = await self._upload(path)
            try:
                run = await self.client.create_run(protocol_id, values)
            except DeviceFault as exc:
                if exc.code != "RunAlreadyActive" or not await self._dismiss_idle_runs():
                    raise
                run = await self.client.create_run(protocol_id, values)
            self._run_id = self._last_run[label] = run["id"]
            await self.client.action(run["id"], "play")
            await self._wait(run["id"], expected, path.name)
        except InstrumentError as exc:
            if not exc.recoverable:
                self._error = exc
            raise
        finally:
            self._busy = None
            self._run_id = None

    async def _dismiss_idle_runs(self) -> bool:
        """Stop runs that were created but never played (a ``POST /runs`` whose reply was
        lost). Returns True when one was stopped."""
        runs = (await self.client.call("GET", "/runs")).get("data") or []
        idle = [r["id"] for r in runs if isinstance(r, dict) and r.get("status") == "idle" and r.get("current")]
        for run_id in idle:
            await self.client.action(run_id, "stop")
        return bool(idle)

    async def _upload(self, path: Path) -> str:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in self._uploaded:
            return self._uploaded[digest]
        protocol = await self.client.upload(path)
        summaries = protocol.get("analysisSummaries") or []
        if summaries:
            deadline = self.clock.now() + self.config.analysis_timeout_s
            analysis = summaries[-1]
            while analysis.get("status") != "completed":
                if self.clock.now() >= deadline:
                    raise InstrumentTimeout(self.name, f"analysis of {path.name} not completed in time")
                await self.clock.sleep(self.config.poll_s)
                analysis = await self.client.analysis(protocol["id"], summaries[-1]["id"])
            if analysis.get("result", "ok") not in ("ok", "parameter-value-required"):
                errors = "; ".join(str(e.get("detail", e)) for e in analysis.get("errors", [])) or analysis.get("result")
                raise DeviceFault(self.name, f"robot analysis of {path.name}: {errors}", code="analysis")
        self._uploaded[digest] = protocol["id"]
        return str(protocol["id"])

    async def _wait(self, run_id: str, expected_s: float, what: str) -> None:
        limit = self.config.run_timeout_factor * expected_s + self.config.run_timeout_margin_s
        deadline = self.clock.now() + limit
        failures = 0
        await self.clock.sleep(min(expected_s, limit) if expected_s > 0 else self.config.poll_s)
        while True:
            try:
                run = await self.client.run(run_id)
                failures = 0
            except InstrumentError:
                failures += 1
                if failures >= self.config.poll_failures:
                    raise
                run = {"status": "unknown"}
            status = run.get("status")
            if status == "succeeded":
                return
            if status in ("failed", "stopped") or str(status).startswith("awaiting-recovery"):
                if str(status).startswith("awaiting-recovery"):
                    await self.abort()
                errors = run.get("errors") or [{}]
                first = errors[0] if isinstance(errors[0], dict) else {}
                code = str(first.get("errorCode") or status)
                raise DeviceFault(self.name, f"{what} run {run_id} {status}: {first.get('detail', 'no detail')}",
                                  code=code, recoverable=status == "stopped")
            if self.clock.now() >= deadline:
                await self.abort()
                raise InstrumentTimeout(self.name, f"{what} run {run_id} not finished within {limit:.0f} s (stopped)")
            await self.clock.sleep(self.config.poll_s)

    def _require_online(self) -> None:
        check_state(self.name, self._connected)


def _preflight_blocking(path: Path, values: Any) -> PreflightReport:
    """:func:`preflight` from synchronous code that may run on an event loop thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return preflight(path, values)
    import threading

    box: list[PreflightReport] = []
    worker = threading.Thread(target=lambda: box.append(preflight(path, values)))
    worker.start()
    worker.join()
    return box[0]


def create(config: OpentronsConfig, ctx: DriverContext) -> OpentronsLiquidHandler:
    """Factory of the real driver (``DriverSpec.create``)."""
    return OpentronsLiquidHandler(ctx.name, ctx.clock, config)
