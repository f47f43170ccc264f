"""Cell biology of the culture model: constants per cell type and the growth law.

Everything here is pure (no clock, no randomness) so it can be tested against closed
forms. Times are seconds unless a name says ``_h``; cell numbers are per well.

Growth of viable cells ``V`` in a well with carrying capacity ``K``::

    dV/dt = r·g(s)·V·(1 − V/K_log) − δ(t)·V      (Bernoulli equation)
    g(s)  = 1 − exp(−s/τ_lag)                      (lag after seeding / passage)
    r     = ln 2 / T_d + δ₀                        (so the *net* doubling time is T_d)
    K_log = K / (1 − δ₀/r)                         (healthy cultures settle at K = 100 %)

``δ(t)`` is baseline death δ₀ plus a medium-age hazard; above 95 % confluence a fraction of
the suppressed divisions ends as dead cells (turnover), which lowers viability while the
viable count stays at ``K``.

``s`` is the time since (re)seeding. With ``Λ(s) = s − τ_lag(1 − e^{−s/τ_lag})`` the growth
integral over ``[a, b]`` is ``G = r·(Λ(s_b) − Λ(s_a))`` exactly; without death the solution is
the logistic closed form ``V_b = K / (1 + (K/V_a − 1)·e^{−G})`` (with ``K = K_log``). With a death hazard
``H = ∫δ dt`` over the same interval, the Bernoulli equation with constant growth/death
ratio has the exact solution used in :func:`bernoulli_step` (it reduces to the logistic
for ``H = 0`` and to ``V·e^{−H}`` for ``G = 0``). The model evaluates it on a fixed
one-hour grid anchored at clock zero, so results hardly depend on how often a plate is
looked at (exactly so without death; within ~1e-7 relative with it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOUR = 3600.0
MINUTE = 60.0


@dataclass(frozen=True)
class CellType:
    """Culture constants of one cell type.

    Attributes:
        name: ``ipsc`` or ``msc``.
        doubling_h: net population doubling time in exponential phase, hours.
        confluent_per_cm2: viable cells per cm² at 100 % confluence (carrying capacity).
        lag_h: time constant of the lag phase after seeding or passage, hours.
        diameter_um: mean diameter of a cell in suspension, µm.
    """

    name: str
    doubling_h: float
    confluent_per_cm2: float
    lag_h: float
    diameter_um: float

    @property
    def growth_rate_per_s(self) -> float:
        """Intrinsic rate ``r`` (1/s), including the baseline death it must outgrow."""
        return math.log(2.0) / (self.doubling_h * HOUR) + BASELINE_DEATH_PER_H / HOUR

    def logistic_capacity(self, confluent_cells: float) -> float:
        """Capacity of the growth term, ``K_log = K / (1 − δ₀/r)``, so that a healthy culture
        (baseline death only) settles exactly at ``confluent_cells`` (100 % confluence)."""
        return confluent_cells / (1.0 - BASELINE_DEATH_PER_H / HOUR / self.growth_rate_per_s)


CELL_TYPES: dict[str, CellType] = {
    # Feeder-free human iPSC (E8 / mTeSR-type media, single-cell passage with ROCK inhibitor):
    # population doubling is commonly reported around 16-24 h (Takahashi et al. 2007, Cell 131:861,
    # measured ~47 h on feeders; chemically defined media are faster, Chen et al. 2011, Nat Methods
    # 8:424). Confluent density: HeLa reach ~1.2e6 cells per 9.6 cm² well (Thermo Fisher / Fisher
    # Scientific "useful numbers for cell culture", ≈1.25e5/cm²); compact iPSC colonies pack about
    # twice as densely (~2-2.6e6 cells per confluent 6-well well in vendor protocols) -> 2.5e5/cm².
    # Suspended hPSC are ~11-13 µm across.
    "ipsc": CellType("ipsc", doubling_h=20.0, confluent_per_cm2=2.5e5, lag_h=8.0, diameter_um=12.5),
    # Human bone-marrow / cord MSC: doubling ~24-48 h in early passages (review: Fossett & Khan
    # 2012, Stem Cells Int 2012:465259; hESC-derived MSC 26 h at P8, Koltsova et al.). Large flat
    # cells: ~4-5e4 cells/cm² at confluence; ~17-18 µm in suspension (Ge et al. 2014, Stem Cells Int).
    "msc": CellType("msc", doubling_h=30.0, confluent_per_cm2=4.5e4, lag_h=12.0, diameter_um=17.5),
}
DEFAULT_CELL_TYPE = "ipsc"

# -- hazards (death rates) ---------------------------------------------------------------
BASELINE_DEATH_PER_H = 0.002
"""Background death in healthy culture (1/h): ~5 % dead cells after a day between feeds."""
MEDIUM_SAFE_H = 36.0
"""Spent medium is harmless up to this age (daily-feed media such as mTeSR1 / E8)."""
MEDIUM_HAZARD_PER_H2 = 6.9e-4
"""Death rate grows linearly with medium age beyond :data:`MEDIUM_SAFE_H`: δ = k·(age − 36 h).
Cumulative loss: ~2 % at 48 h, ~18 % at 60 h, ~36 % at 72 h without a feed."""
OVERCONFLUENT = 0.95
OVERCONFLUENT_TURNOVER = 0.25
"""Above 95 % confluence cells keep cycling but are extruded: this fraction of the divisions the
logistic term suppresses end as dead cells instead (~20 %/day of the viable count for iPSC)."""
DETACH_TIME_S = 2.5 * MINUTE
"""Time constant of detachment under reagent (37 °C-equivalent): ~95 % detached after 7.5 min."""
DISSOCIATION_WINDOW_S = 10 * MINUTE
"""Accutase/TrypLE on hPSC: 5-10 min at 37 °C is the usual incubation (vendor protocols)."""
DISSOCIATION_DEATH_PER_MIN = 0.03
"""Beyond the window each further minute of effective exposure kills ~3 % of cells."""
ROOM_TEMPERATURE_ACTIVITY = 0.5
"""Enzymatic reagents act about half as fast at room temperature (22 °C) as at 37 °C."""
DOUBLE_DISSOCIATION_SURVIVAL = 0.3
"""A second dose of reagent on detached cells (over-digestion, lysis): 70 % die at once."""
SUSPENSION_DEATH_PER_H = 0.01
"""Harvested cells held in suspension at room temperature lose ~1 %/h."""
HARVEST_LOSS = 0.05
"""Fraction of cells lost (left behind, stuck to tips) on harvest."""
HARVEST_DAMAGE = 0.05
"""Fraction of viable cells killed by single-cell dissociation and trituration on harvest."""
SEED_STOCK_VIABILITY = 0.95
"""Viability of the cell stock used by ``seed`` (cells_per_well counts viable cells)."""
EXCHANGE_DEAD_REMOVED = 0.9
"""Fraction of dead (floating) cells aspirated with spent medium."""


def cell_type(name: str | None) -> CellType:
    """Constants for ``name`` (``ipsc`` by default; unknown names fall back to ``ipsc``)."""
    return CELL_TYPES.get((name or DEFAULT_CELL_TYPE).lower(), CELL_TYPES[DEFAULT_CELL_TYPE])


def lag_integral(s: float, lag_s: float) -> float:
    """``Λ(s) = ∫₀ˢ (1 − e^{−u/τ}) du`` — growth-equivalent time after ``s`` seconds since seeding."""
    if s <= 0:
        return 0.0
    if lag_s <= 0:
        return s
    return s - lag_s * (1.0 - math.exp(-s / lag_s))


def logistic(v0: float, k: float, growth: float) -> float:
    """Logistic closed form: cells after growth integral ``growth`` (= ∫r dt) from ``v0``."""
    if v0 <= 0:
        return 0.0
    return k / (1.0 + (k / v0 - 1.0) * math.exp(-growth))


def bernoulli_step(v0: float, k: float, growth: float, hazard: float) -> float:
    """Exact solution of ``dV = a V − b V²`` over one step with ``∫a = G − H``, ``∫b = G/K``.

    Args:
        v0: viable cells at the start.
        k: carrying capacity (cells).
        growth: ``G = ∫ r·g dt`` over the step (dimensionless).
        hazard: ``H = ∫ δ dt`` over the step (dimensionless).
    Returns:
        Viable cells at the end of the step.
    """
    if v0 <= 0:
        return 0.0
    if hazard <= 0:
        return logistic(v0, k, growth)
    net = growth - hazard
    crowd = growth / k
    if abs(net) < 1e-12:
        return 1.0 / (1.0 / v0 + crowd)
    q = crowd / net
    return 1.0 / (q + (1.0 / v0 - q) * math.exp(-net))


def medium_hazard(age_a_s: float, age_b_s: float) -> float:
    """``∫δ_m dt`` for medium aged ``age_a_s`` → ``age_b_s`` seconds (δ_m = k·(age − 36 h)⁺)."""
    safe = MEDIUM_SAFE_H * HOUR
    over_a = max(0.0, age_a_s - safe) / HOUR
    over_b = max(0.0, age_b_s - safe) / HOUR
    return MEDIUM_HAZARD_PER_H2 / 2.0 * (over_b**2 - over_a**2)


def dissociation_hazard(exposure_a_s: float, exposure_b_s: float) -> float:
    """``∫δ_d`` for effective reagent exposure ``exposure_a_s`` → ``exposure_b_s`` seconds."""
    over = max(0.0, exposure_b_s - max(exposure_a_s, DISSOCIATION_WINDOW_S))
    return DISSOCIATION_DEATH_PER_MIN * over / MINUTE


def detached_fraction(exposure_s: float) -> float:
    """Fraction of cells detached after ``exposure_s`` effective seconds of dissociation reagent."""
    return 1.0 - math.exp(-max(0.0, exposure_s) / DETACH_TIME_S)


def reagent_activity(temperature_c: float) -> float:
    """Relative speed of a dissociation reagent: 1 at ≥ 30 °C, :data:`ROOM_TEMPERATURE_ACTIVITY` below."""
    return 1.0 if temperature_c >= 30.0 else ROOM_TEMPERATURE_ACTIVITY


def grid_points(t_a: float, t_b: float, step_s: float = HOUR) -> list[tuple[float, float]]:
    """Split ``[t_a, t_b]`` at multiples of ``step_s`` (absolute grid) into sub-intervals."""
    out: list[tuple[float, float]] = []
    t = t_a
    while t < t_b:
        nxt = min(t_b, (math.floor(t / step_s + 1e-9) + 1) * step_s)
        if nxt <= t:  # floating-point guard
            nxt = min(t_b, t + step_s)
        out.append((t, nxt))
        t = nxt
    return out
