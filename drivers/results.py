"""Typed values that drivers return. Small, frozen, never bare dicts.

Every result exposes ``primary`` (the scalar a protocol's ``save:`` binds) and
``fields()`` (named scalars a protocol's ``accept:`` and conditions can use).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields as dc_fields
from statistics import fmean
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from drivers.errors import InstrumentError


@dataclass(frozen=True)
class Result:
    """Base of every measurement result."""

    primary_field: ClassVar[str] = ""
    units: ClassVar[dict[str, str]] = {}

    @property
    def primary(self) -> float:
        """The scalar bound by ``save:``."""
        return float(getattr(self, self.primary_field))

    def fields(self) -> dict[str, float]:
        """Named scalar fields (no per-well arrays)."""
        out: dict[str, float] = {}
        for f in dc_fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[f.name] = float(value)
        return out

    def unit(self, name: str) -> str:
        """Unit of field ``name`` ("" when dimensionless)."""
        return self.units.get(name, "")


@dataclass(frozen=True)
class ConfluenceResult(Result):
    """Confluence from an imager: fraction of the growth area covered (0..1)."""

    per_well: tuple[float, ...]
    mean: float = 0.0
    min: float = 0.0
    max: float = 0.0
    primary_field: ClassVar[str] = "mean"

    @classmethod
    def from_wells(cls, per_well: tuple[float, ...]) -> "ConfluenceResult":
        return cls(per_well=per_well, mean=fmean(per_well), min=min(per_well), max=max(per_well))


@dataclass(frozen=True)
class CellCount(Result):
    """A cell counter's result for one sample."""

    total_per_ml: float
    viable_per_ml: float
    viability: float
    mean_diameter_um: float
    volume_ml: float = 1.0
    primary_field: ClassVar[str] = "viable_per_ml"
    units: ClassVar[dict[str, str]] = {
        "total_per_ml": "cells/mL",
        "viable_per_ml": "cells/mL",
        "mean_diameter_um": "µm",
        "volume_ml": "mL",
    }

    @property
    def viable_cells(self) -> float:
        """Viable cells in the whole sample."""
        return self.viable_per_ml * self.volume_ml


@dataclass(frozen=True)
class PlateReading(Result):
    """A plate reader's result: one value per well."""

    mode: str
    per_well: tuple[float, ...]
    unit_name: str = "RLU"
    wavelength_nm: float | None = None
    mean: float = 0.0
    min: float = 0.0
    max: float = 0.0
    primary_field: ClassVar[str] = "mean"

    @classmethod
    def from_wells(
        cls, mode: str, per_well: tuple[float, ...], unit_name: str, wavelength_nm: float | None = None
    ) -> "PlateReading":
        return cls(
            mode=mode,
            per_well=per_well,
            unit_name=unit_name,
            wavelength_nm=wavelength_nm,
            mean=fmean(per_well),
            min=min(per_well),
            max=max(per_well),
        )

    def unit(self, name: str) -> str:
        return self.unit_name if name in ("mean", "min", "max") else ""


@dataclass(frozen=True)
class Environment(Result):
    """An incubator's environment reading."""

    temperature_c: float
    co2_percent: float
    humidity_percent: float = 95.0
    door_open: bool = False
    primary_field: ClassVar[str] = "temperature_c"
    units: ClassVar[dict[str, str]] = {"temperature_c": "°C", "co2_percent": "%", "humidity_percent": "%"}


@dataclass(frozen=True)
class Identity:
    """Who an instrument says it is."""

    vendor: str
    model: str
    serial: str
    firmware: str = ""


@dataclass(frozen=True)
class InstrumentStatus:
    """A snapshot of an instrument's state.

    ``state`` is one of ``offline``, ``idle``, ``busy``, ``error``, ``maintenance``.
    """

    state: str
    detail: str = ""
    error_code: str | None = None
    plates: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def of(
        cls,
        connected: bool,
        error: InstrumentError | None,
        busy: str | None,
        plates: tuple[str, ...] = (),
        busy_detail: str | None = None,
    ) -> InstrumentStatus:
        """offline / error (with the latched error's detail and code) / busy / idle from a
        driver's own bookkeeping; ``busy_detail`` replaces ``busy`` as the busy detail."""
        if not connected:
            return cls("offline", plates=plates)
        if error is not None:
            return cls("error", error.detail, error.code, plates)
        if busy:
            return cls("busy", busy if busy_detail is None else busy_detail, None, plates)
        return cls("idle", "", None, plates)
