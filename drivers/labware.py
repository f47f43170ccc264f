"""Labware models and the plate handle drivers receive.

Well areas are growth areas in cm² (Corning product sheets: 6-well 9.5 cm², 12-well
3.8 cm², 24-well 1.9 cm², 96-well 0.32 cm²); working volumes in µL.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import ConfigurationError


@dataclass(frozen=True)
class LabwareModel:
    """A plate type.

    Attributes:
        name: model id used in protocols (``corning_6_wellplate``).
        rows, columns: well grid.
        well_area_cm2: growth area of one well, cm².
        max_volume_ul: working volume of one well, µL.
    """

    name: str
    rows: int
    columns: int
    well_area_cm2: float
    max_volume_ul: float

    @property
    def wells(self) -> int:
        """Number of wells."""
        return self.rows * self.columns

    def well_names(self) -> tuple[str, ...]:
        """``A1, A2, ...`` row-major."""
        return tuple(f"{chr(65 + r)}{c + 1}" for r in range(self.rows) for c in range(self.columns))


LABWARE_MODELS: dict[str, LabwareModel] = {
    m.name: m
    for m in (
        LabwareModel("corning_6_wellplate", 2, 3, 9.5, 3000.0),
        LabwareModel("corning_12_wellplate", 3, 4, 3.8, 2000.0),
        LabwareModel("corning_24_wellplate", 4, 6, 1.9, 1000.0),
        LabwareModel("corning_96_wellplate", 8, 12, 0.32, 200.0),
    )
}


def labware_model(name: str) -> LabwareModel:
    """Look up a labware model.

    Raises:
        ConfigurationError: for an unknown model (the message lists the known ones).
    """
    try:
        return LABWARE_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(LABWARE_MODELS))
        raise ConfigurationError(f"unknown labware model {name!r}; known: {known}") from None


@dataclass(frozen=True)
class Plate:
    """The plate handle passed to drivers.

    Attributes:
        id: unique plate id within the workcell (barcode or ``run/labware``).
        model: its labware model.
        cell_line: cell line name from the protocol (``201B7``), if any.
        cell_type: ``ipsc`` or ``msc`` (drives the culture model), if any.
        home: site name the plate lives at between steps (usually the incubator).
    """

    id: str
    model: LabwareModel
    cell_line: str | None = None
    cell_type: str | None = None
    home: str | None = None
