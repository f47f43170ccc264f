"""What the measuring simulators see: confluence, plate-reader signals, cell counts.

Each function evolves the plate to now, computes the true value from the culture model
and adds seeded noise drawn from ``culture.rng(plate, kind)`` (so a plate's numbers do
not depend on other plates). ``noise`` is a relative standard deviation (0.03 = 3 %).
"""

from __future__ import annotations

import math
import random

from drivers.errors import StateError
from drivers.labware import Plate
from drivers.results import CellCount, ConfluenceResult, PlateReading
from simulators import cells as bio
from simulators.culture import CultureModel, PlateCulture

# ATP (CellTiter-Glo) -------------------------------------------------------------------
# Luminescence is linear in viable cells over several decades (Riss et al., "Cell Viability
# Assays", NCBI Assay Guidance Manual 2013/2016; Promega TB288: linear to ~5e4 cells/well),
# the glow signal has a half-life generally > 5 h (TB288) and the protocol waits ~10 min for
# lysis and signal stabilisation. The RLU scale is instrument-specific; 20 RLU per cell is a
# typical order of magnitude for a luminometer with 1 s integration.
RLU_PER_CELL = 20.0
LUMINESCENCE_BACKGROUND_RLU = 80.0
ATP_SIGNAL_HALF_LIFE_H = 5.0
ATP_SIGNAL_RISE_S = 150.0
"""Time constant of lysis + signal rise after adding the reagent (≈ stable after 10 min)."""

# Resazurin (alamarBlue, PrestoBlue, CellTiter-Blue): non-lytic, fluorescence grows with
# viable cells × incubation time until the dye is exhausted (~4 h).
RESAZURIN_REAGENTS = frozenset(
    {"resazurin", "alamarblue", "alamar_blue", "prestoblue", "presto_blue", "celltiter_blue"}
)
RFU_PER_CELL_HOUR = 0.5
FLUORESCENCE_BACKGROUND_RFU = 400.0
RESAZURIN_SATURATION_H = 4.0

# Absorbance: plate + medium blank ~0.045 OD; cell monolayer scatter adds ~0.3 OD at 100 %.
ABSORBANCE_BLANK_OD = 0.045
ABSORBANCE_PER_CONFLUENCE = 0.3

DISSOCIATED_COVERAGE = 0.3
"""Rounded-up, detached cells cover about a third of the area they covered spread out."""
DEAD_DIAMETER_FACTOR = 0.85


def _factor(rng: random.Random, noise: float) -> float:
    """Multiplicative noise factor ``1 + noise·N(0, 1)``, never negative."""
    return max(0.0, 1.0 + noise * rng.gauss(0.0, 1.0))


def true_confluence(pc: PlateCulture) -> list[float]:
    """Fraction of each well's area covered (0..1), noise-free."""
    k = pc.capacity
    scale = 1.0
    if pc.phase == "dissociated":
        scale -= (1.0 - DISSOCIATED_COVERAGE) * bio.detached_fraction(pc.exposure_s)
    return [min(1.0, max(0.0, v / k * scale)) for v in pc.viable]


def confluence(culture: CultureModel, plate: Plate, noise: float = 0.03) -> ConfluenceResult:
    """Imaged confluence per well with multiplicative noise, clipped to 0..1."""
    pc = culture.plate(plate)
    rng = culture.rng(pc.plate_id, "confluence")
    per_well = tuple(min(1.0, c * _factor(rng, noise)) for c in true_confluence(pc))
    return ConfluenceResult.from_wells(per_well)


def _luminescence(culture: CultureModel, pc: PlateCulture, noise: float, rng: random.Random) -> tuple[float, ...]:
    added = next((t for r, t in pc.reagents.items() if r in ("celltiter_glo", "atplite")), None)
    out = []
    for i in range(pc.model.wells):
        signal = 0.0
        if added is not None and pc.atp_cells:
            dt = culture.clock.now() - added
            rise = 1.0 - math.exp(-dt / ATP_SIGNAL_RISE_S)
            decay = 0.5 ** (dt / (ATP_SIGNAL_HALF_LIFE_H * bio.HOUR))
            signal = RLU_PER_CELL * pc.atp_cells[i] * rise * decay
        background = LUMINESCENCE_BACKGROUND_RLU * _factor(rng, 0.1)
        out.append(signal * _factor(rng, noise) + background)
    return tuple(out)


def _fluorescence(culture: CultureModel, pc: PlateCulture, noise: float, rng: random.Random) -> tuple[float, ...]:
    added = next((t for r, t in pc.reagents.items() if r in RESAZURIN_REAGENTS), None)
    hours = 0.0 if added is None else min(RESAZURIN_SATURATION_H, (culture.clock.now() - added) / bio.HOUR)
    out = []
    for v, c in zip(pc.viable, true_confluence(pc), strict=True):
        signal = RFU_PER_CELL_HOUR * v * hours + 50.0 * c  # + weak cell autofluorescence
        out.append(signal * _factor(rng, noise) + FLUORESCENCE_BACKGROUND_RFU * _factor(rng, 0.05))
    return tuple(out)


def _absorbance(pc: PlateCulture, noise: float, rng: random.Random) -> tuple[float, ...]:
    return tuple(
        ABSORBANCE_BLANK_OD * _factor(rng, 0.02) + ABSORBANCE_PER_CONFLUENCE * c * _factor(rng, noise)
        for c in true_confluence(pc)
    )


READ_MODES = {"luminescence": "RLU", "fluorescence": "RFU", "absorbance": "OD"}


def check_mode(mode: str, device: str = "plate_reader") -> None:
    """Raises StateError for a read mode other than luminescence, fluorescence, absorbance."""
    if mode not in READ_MODES:
        raise StateError(device, f"unknown read mode {mode!r}; expected one of {', '.join(READ_MODES)}")


def read(
    culture: CultureModel,
    plate: Plate,
    mode: str = "luminescence",
    wavelength_nm: float | None = None,
    noise: float = 0.03,
    device: str = "plate_reader",
) -> PlateReading:
    """A plate-reader reading of every well.

    * ``luminescence`` (RLU): ``RLU_PER_CELL`` × viable cells at the time a lytic ATP
      reagent was added, rising over ~10 min and decaying with a 5 h half-life; background only otherwise.
    * ``fluorescence`` (RFU): resazurin-type reagents, ∝ viable cells × hours (≤ 4 h).
    * ``absorbance`` (OD): blank + cell-layer scatter ∝ confluence (any wavelength).

    Raises:
        StateError: unknown mode.
    """
    check_mode(mode, device)
    pc = culture.plate(plate)
    rng = culture.rng(pc.plate_id, f"read:{mode}")
    if mode == "luminescence":
        per_well = _luminescence(culture, pc, noise, rng)
    elif mode == "fluorescence":
        per_well = _fluorescence(culture, pc, noise, rng)
    else:
        per_well = _absorbance(pc, noise, rng)
        wavelength_nm = 600.0 if wavelength_nm is None else wavelength_nm
    return PlateReading.from_wells(mode, per_well, READ_MODES[mode], wavelength_nm)


def check_count(culture: CultureModel, plate: Plate, device: str = "cell_counter") -> None:
    """Raises StateError when the plate holds no cells at all (nothing to sample)."""
    pc = culture.plate(plate)
    if pc.phase == "empty" or (pc.phase != "harvested" and not pc.has_cells_in_wells):
        raise StateError(device, f"plate {pc.plate_id!r} has no cells to count")


def count(
    culture: CultureModel, plate: Plate, noise: float = 0.03, sample_ul: float = 0.4, device: str = "cell_counter"
) -> CellCount:
    """Count the harvested suspension (or, with none, the wells' cells in their medium).

    Counting error is Poisson in the ``sample_ul`` µL the counter actually images, times an
    instrument factor with relative SD ``noise``; viable and dead are counted separately.

    Raises:
        StateError: the plate holds no cells.
    """
    check_count(culture, plate, device)
    pc = culture.plate(plate)
    if pc.phase == "harvested":
        viable, dead, volume_ul = pc.suspension_viable, pc.suspension_dead, pc.suspension_ul
    else:
        viable, dead = sum(pc.viable), sum(pc.dead)
        volume_ul = (pc.volume_ul or 1000.0) * pc.model.wells
    volume_ml = volume_ul / 1000.0
    rng = culture.rng(pc.plate_id, "count")

    def counted(per_ml: float) -> float:
        expected = per_ml * sample_ul / 1000.0
        n = max(0.0, expected + math.sqrt(expected) * rng.gauss(0.0, 1.0))
        return n / (sample_ul / 1000.0) * _factor(rng, noise)

    viable_per_ml = counted(viable / volume_ml)
    dead_per_ml = counted(dead / volume_ml)
    total = viable_per_ml + dead_per_ml
    d_live = pc.kind.diameter_um
    mean_d = (viable_per_ml * d_live + dead_per_ml * d_live * DEAD_DIAMETER_FACTOR) / total if total else d_live
    return CellCount(
        total_per_ml=total,
        viable_per_ml=viable_per_ml,
        viability=viable_per_ml / total if total else 0.0,
        mean_diameter_um=mean_d * _factor(rng, 0.02),
        volume_ml=volume_ml,
    )
