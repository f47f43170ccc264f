"""Plate-reader adapter over pylabrobot's ``PlateReader`` frontend.

Backends: ``chatterbox`` (returns settable values, no hardware), ``clariostar``
(BMG CLARIOstar over FTDI), ``cytation5`` / ``synergyh1`` (Agilent BioTek over FTDI).
Readings are returned as :class:`~drivers.results.PlateReading` with one value per
well in our row-major well order (A1, A2, ... B1 ...).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from drivers.base import PlateReader
from drivers.clock import Clock
from drivers.errors import InstrumentError, StateError, check_state
from drivers.labware import Plate
from drivers.plr._common import quiet, route_plr_logs, timed
from drivers.plr.labware_map import plr_plate
from drivers.results import Identity, InstrumentStatus, PlateReading
from drivers.spec import DriverConfig, DriverContext

Backend = Literal["chatterbox", "clariostar", "cytation5", "synergyh1"]
UNITS = {"luminescence": "RLU", "fluorescence": "RFU", "absorbance": "OD"}


class PLRPlateReaderConfig(DriverConfig):
    """Workcell config of ``plr.plate_reader``.

    Attributes:
        backend: see the module docstring.
        device_id: FTDI serial of the reader (None: the only one connected).
        focal_height_mm: luminescence / fluorescence focal height, mm.
        excitation_nm, emission_nm: fluorescence wavelengths (resazurin defaults).
        absorbance_nm: default absorbance wavelength.
        read_s: duration of one read per mode, s (simulated waits and the planner).
        simulate_durations: wait ``read_s`` on the clock (default: chatterbox only).
        timeout_s: clock seconds allowed for one read.
        plate_resources: labware model -> pylabrobot plate function.
    """

    backend: Backend = "chatterbox"
    device_id: str | None = None
    focal_height_mm: float = Field(13.0, gt=0)
    excitation_nm: int = 560
    emission_nm: int = 590
    absorbance_nm: int = 600
    read_s: dict[str, float] = {"luminescence": 120.0, "fluorescence": 90.0, "absorbance": 60.0}
    simulate_durations: bool | None = None
    timeout_s: float = Field(900.0, gt=0)
    plate_resources: dict[str, str] = {}


def build_backend(config: PLRPlateReaderConfig) -> Any:
    """The pylabrobot backend the config names (not set up)."""
    from pylabrobot import plate_reading as pr

    if config.backend == "chatterbox":
        return pr.PlateReaderChatterboxBackend()
    if config.backend == "clariostar":
        return pr.CLARIOstarBackend(device_id=config.device_id)
    cls = pr.Cytation5Backend if config.backend == "cytation5" else pr.SynergyH1Backend
    return cls(device_id=config.device_id) if config.device_id else cls()


class PLRPlateReader(PlateReader):
    """Our :class:`~drivers.base.PlateReader` over a pylabrobot reader backend.

    Args:
        name: instrument name.
        clock: the clock every wait goes through.
        config: see :class:`PLRPlateReaderConfig`.
        backend: a ready-made backend (default: :func:`build_backend`).
    """

    def __init__(self, name: str, clock: Clock, config: PLRPlateReaderConfig, backend: Any = None) -> None:
        super().__init__(name, clock, config.durations)
        route_plr_logs()
        from pylabrobot.plate_reading import PlateReader as PLRFrontend

        self.config = config
        self.reader = PLRFrontend(name=name, size_x=160, size_y=120, size_z=80,
                                  backend=backend if backend is not None else build_backend(config))
        self._chatter = config.backend == "chatterbox"
        self._simulate = self._chatter if config.simulate_durations is None else config.simulate_durations
        self._connected = False
        self._busy: str | None = None
        self._error: InstrumentError | None = None
        self._presets: dict[str, list[float]] = {}

    async def connect(self) -> None:
        """Open the reader (idempotent). Raises InstrumentError when it does not answer."""
        if not self._connected:
            with quiet(self._chatter):
                await timed(self.clock, self.name, self.reader.setup(), 120.0, None, "setup")
            self._connected = True

    async def disconnect(self) -> None:
        """Close the reader (idempotent; never raises)."""
        if self._connected:
            self._connected = False
            try:
                with quiet(self._chatter):
                    await timed(self.clock, self.name, self.reader.stop(), 60.0, None, "stop")
            except Exception:  # a dead device must not make disconnect fail
                pass

    async def identify(self) -> Identity:
        """Backend class as model (no identity query through pylabrobot). Raises StateError offline."""
        self._require_online()
        return Identity("pylabrobot", type(self.reader.backend).__name__, self.config.device_id or self.name,
                        "pylabrobot 0.2.2")

    async def status(self) -> InstrumentStatus:
        """offline / error / busy / idle."""
        return InstrumentStatus.of(self._connected, self._error, self._busy)

    async def abort(self) -> None:
        """Reads cannot be interrupted through pylabrobot (no-op)."""

    async def reset_error(self) -> None:
        """Clear the error. Raises StateError when offline."""
        self._require_online()
        self._error = None

    def preset(self, mode: str, per_well: tuple[float, ...] | list[float]) -> None:
        """Chatterbox only: the values the next read in ``mode`` returns (row-major, our well order)."""
        backend = self.reader.backend
        attr = f"dummy_{mode}"
        if not hasattr(backend, attr):
            raise StateError(self.name, f"backend {type(backend).__name__} cannot be preset")
        self._presets[mode] = [float(v) for v in per_well]

    async def read(self, plate: Plate, mode: str = "luminescence", wavelength_nm: float | None = None) -> PlateReading:
        """Read every well in ``mode``.

        Raises:
            StateError: offline, in error, busy, or an unknown mode.
            InstrumentError: the reader failed (mapped).
        """
        check_state(self.name, self._connected, self._error, self._busy)
        if mode not in UNITS:
            raise StateError(self.name, f"unknown read mode {mode!r}; expected one of {', '.join(UNITS)}")
        resource = plr_plate(plate, self.config.plate_resources)
        self._load_preset(mode, plate)
        self._busy = f"read {plate.id}"
        try:
            for child in list(self.reader.children):
                child.unassign()
            self.reader.assign_child_resource(resource)
            if self._simulate:
                await self.clock.sleep(self.config.read_s.get(mode, self.duration_of("read")))
            with quiet(self._chatter):
                result = await timed(self.clock, self.name, self._call(mode, wavelength_nm), self.config.timeout_s,
                                     None, f"read {mode}")
        except InstrumentError as exc:
            if not exc.recoverable:
                self._error = exc
            raise
        finally:
            resource.unassign() if resource.parent is not None else None
            self._busy = None
        grid = result[0]["data"]
        values = tuple(float(grid[r][c] if grid[r][c] is not None else float("nan"))
                       for r in range(plate.model.rows) for c in range(plate.model.columns))
        wl = wavelength_nm if mode != "absorbance" or wavelength_nm else float(self.config.absorbance_nm)
        return PlateReading.from_wells(mode, values, UNITS[mode], wl)

    async def _call(self, mode: str, wavelength_nm: float | None) -> Any:
        c = self.config
        if mode == "luminescence":
            return await self.reader.read_luminescence(focal_height=c.focal_height_mm, use_new_return_type=True)
        if mode == "fluorescence":
            return await self.reader.read_fluorescence(excitation_wavelength=c.excitation_nm,
                                                       emission_wavelength=int(wavelength_nm or c.emission_nm),
                                                       focal_height=c.focal_height_mm, use_new_return_type=True)
        return await self.reader.read_absorbance(wavelength=int(wavelength_nm or c.absorbance_nm),
                                                 use_new_return_type=True)

    def _load_preset(self, mode: str, plate: Plate) -> None:
        values = self._presets.pop(mode, None)
        if values is None:
            return
        rows, cols = max(8, plate.model.rows), max(12, plate.model.columns)
        grid = [[0.0] * cols for _ in range(rows)]
        for i, v in enumerate(values):
            grid[i // plate.model.columns][i % plate.model.columns] = float(v)
        setattr(self.reader.backend, f"dummy_{mode}", grid)

    def _require_online(self) -> None:
        check_state(self.name, self._connected)


def create(config: PLRPlateReaderConfig, ctx: DriverContext) -> PLRPlateReader:
    """Factory of the real driver (``DriverSpec.create``)."""
    return PLRPlateReader(ctx.name, ctx.clock, config)
