"""Our labware models -> pylabrobot resource-library functions (no network access)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.labware import Plate
from drivers.plr._common import resource_factory

PLATE_RESOURCES: dict[str, str] = {
    "corning_6_wellplate": "cor_cos_6_wellplate_16800uL_Fb",
    "corning_12_wellplate": "cor_cos_12_wellplate_6900uL_Fb",
    "corning_24_wellplate": "cor_cos_24_wellplate_3470uL_Fb",
    "corning_96_wellplate": "cor_96_wellplate_360uL_Fb",
}
"""Default pylabrobot plate definition of each labware model (Corning Costar, flat bottom)."""


def plr_plate(plate: Plate, overrides: Mapping[str, str] | None = None) -> Any:
    """A fresh pylabrobot ``Plate`` resource named after ``plate.id``.

    Args:
        plate: our plate handle.
        overrides: labware model -> pylabrobot function name (workcell config).

    Raises:
        ConfigurationError: no pylabrobot definition for the model, or its grid differs.
    """
    from drivers.errors import ConfigurationError

    name = dict(PLATE_RESOURCES, **dict(overrides or {})).get(plate.model.name)
    if name is None:
        raise ConfigurationError(f"no pylabrobot resource for labware {plate.model.name!r}; "
                                 f"set plate_resources: {{{plate.model.name}: <pylabrobot function>}}")
    resource = resource_factory(name)(plate.id)
    if (resource.num_items_y, resource.num_items_x) != (plate.model.rows, plate.model.columns):
        raise ConfigurationError(f"pylabrobot resource {name!r} is {resource.num_items_y}x{resource.num_items_x}, "
                                 f"labware {plate.model.name!r} is {plate.model.rows}x{plate.model.columns}")
    return resource
