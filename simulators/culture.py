"""The culture model shared by every simulator of one workcell.

One :class:`CultureModel` per workcell lives in ``DriverContext.shared["culture"]``
(:func:`culture_of` creates it on first use). It holds, per plate, the cells of every
well, the medium and reagent history and the passage state, plus where every plate is
(:class:`~simulators.locations.Locations`). Growth is evaluated lazily in closed form
(:mod:`simulators.cells`) from the plate's last update to the clock's ``now()``.

Operations check everything first and raise :class:`~drivers.errors.StateError`
before changing anything. Measurements live in :mod:`simulators.assays`.

Randomness is derived per ``(seed, plate id, kind, n)`` (:meth:`CultureModel.rng`), so a
plate's numbers do not depend on what happens to other plates.
"""

from __future__ import annotations

import math
import pickle
import random
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Literal

from drivers.clock import Clock
from drivers.context import current_step
from drivers.errors import StateError, StorageFault
from drivers.labware import LabwareModel, Plate
from drivers.spec import DriverContext
from simulators import cells as bio
from simulators.locations import Locations

Phase = Literal["empty", "attached", "dissociated", "harvested"]
LYTIC_REAGENTS = frozenset({"celltiter_glo", "atplite"})
"""Reagents that lyse the cells (end-point ATP assays): the wells hold no live cells afterwards."""


def reagent_key(name: str) -> str:
    """Normalised reagent name: ``"CellTiter-Glo"`` -> ``"celltiter_glo"``."""
    return name.strip().lower().replace("-", "_").replace(" ", "_")


@dataclass
class PlateCulture:
    """The true state of one plate (cells are per well; times are clock seconds).

    Attributes:
        phase: ``empty`` (never seeded), ``attached`` (growing), ``dissociated``
            (reagent on, cells detaching), ``harvested`` (cells in suspension, wells empty).
        viable, dead: cells per well.
        seeded_at: start of the current lag phase (seed or reseed).
        medium_at: when the medium was last replaced.
        volume_ul: liquid per well, µL.
        exposure_s: effective dissociation-reagent exposure (37 °C-equivalent seconds).
        suspension_viable, suspension_dead, suspension_ul: the harvested suspension.
        reagents: assay reagent name -> time added.
        atp_cells: viable cells per well when a lytic ATP reagent was added.
    """

    plate_id: str
    model: LabwareModel
    kind: bio.CellType
    t: float
    phase: Phase = "empty"
    viable: list[float] = field(default_factory=list)
    dead: list[float] = field(default_factory=list)
    seeded_at: float = 0.0
    medium_at: float = 0.0
    volume_ul: float = 0.0
    exposure_s: float = 0.0
    dissociations: int = 0
    suspension_viable: float = 0.0
    suspension_dead: float = 0.0
    suspension_ul: float = 0.0
    reagents: dict[str, float] = field(default_factory=dict)
    atp_cells: list[float] = field(default_factory=list)
    passages: int = 0
    history: list[tuple[float, str]] = field(default_factory=list)

    @property
    def capacity(self) -> float:
        """Carrying capacity ``K`` of one well (cells at 100 % confluence)."""
        return self.model.well_area_cm2 * self.kind.confluent_per_cm2

    @property
    def has_cells_in_wells(self) -> bool:
        """True when any well holds cells (live or dead)."""
        return sum(self.viable) + sum(self.dead) > 0

    def viability(self) -> float:
        """Viable fraction of the cells in the wells (or the suspension once harvested)."""
        if self.phase == "harvested":
            v, d = self.suspension_viable, self.suspension_dead
        else:
            v, d = sum(self.viable), sum(self.dead)
        return v / (v + d) if v + d > 0 else 0.0


class CultureModel:
    """Cells, media and plate locations of one workcell.

    Args:
        clock: time source (every evaluation is at ``clock.now()``).
        seed: seed of every random number the model draws (kept as ``rng_seed``).
    """

    def __init__(self, clock: Clock, seed: int = 0) -> None:
        self.clock = clock
        self.rng_seed = seed
        self.locations = Locations()
        self.plates: dict[str, PlateCulture] = {}
        self._draws: dict[tuple[str, str], int] = {}
        self.effects: list[dict[str, Any]] = []
        self.state_path: Path | None = None
        self._log: Any = None  # the open state log (see persist)

    # -- the physical world outlives the control software ------------------------------
    def record_effect(self, device: str, action: str, plate_id: str | None) -> None:
        """Log one physical effect with the engine step it belonged to, and persist the
        plate's new state (when a state file is set).

        The log is how tests prove that no step's physical effect happened twice.
        """
        effect = {"t": self.clock.now(), "device": device, "action": action, "plate": plate_id,
                  "step": current_step.get()}
        self.effects.append(effect)
        if self.state_path is not None:
            self.persist(plate_id, effect)

    def persist(self, plate_id: str | None = None, effect: dict[str, Any] | None = None) -> None:
        """Append the state of ``plate_id`` (all plates when None), every location and
        ``effect`` to :attr:`state_path`: an append-only log, one length-prefixed pickle
        per record, so a crash mid-write loses at most that record."""
        if self.state_path is None:
            return
        ids = list(self.plates) if plate_id is None else [plate_id] if plate_id in self.plates else []
        record = {
            "plates": {p: self.plates[p] for p in ids},
            "where": dict(self.locations.where),
            "draws": {k: n for k, n in self._draws.items() if plate_id is None or k[0] == plate_id},
            "effect": effect,
        }
        blob = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        data = len(blob).to_bytes(8, "little") + blob
        try:
            if self._log is None or self._log.name != str(self.state_path):
                # unbuffered: each record is one write(), in the file as soon as it returns
                self._log = open(self.state_path, "ab", buffering=0)  # noqa: SIM115 - kept open for the world's life
            end = self._log.tell()
            written = self._log.write(data)
            if written != len(data):  # disk full mid-record: take the torn part back
                self._log.truncate(end)
                raise OSError(f"short write ({written} of {len(data)} bytes)")
        except OSError as exc:  # the restored world will lack this effect: its step is in doubt
            raise StorageFault(f"cannot persist the simulated world to {self.state_path}: {exc}") from None

    def unload(self, plate_id: str) -> str:
        """A person took the plate off the workcell (logged as an effect).

        Returns:
            The site it was at.
        Raises:
            StateError: the plate is not in the workcell, or an instrument is working on it.
        """
        site = self.locations.remove(plate_id, "operator")
        self.record_effect("operator", "unload", plate_id)
        return site

    def restore(self, path: Path) -> None:
        """Rebuild the world from a log written by :meth:`persist` (plates, locations,
        draws, effects). Claims and reservations are not restored: nothing is moving
        after a restart. A torn last record is cut off, so new records follow whole ones."""
        records, whole, size = _whole_records(path)
        if whole < size:
            with open(path, "r+b") as f:
                f.truncate(whole)
        for record in records:
            self.plates.update(record["plates"])
            self.locations.where = dict(record["where"])
            self._draws.update(record["draws"])
            if record["effect"] is not None:
                self.effects.append(record["effect"])

    # -- plates and randomness ---------------------------------------------------------
    def plate(self, plate: Plate | str) -> PlateCulture:
        """The state of ``plate`` evolved to now (registered on first sight).

        Raises:
            StateError: a plate id that was never seen with its :class:`Plate` handle.
        """
        pid = plate if isinstance(plate, str) else plate.id
        pc = self.plates.get(pid)
        if pc is None:
            if isinstance(plate, str):
                raise StateError("culture", f"unknown plate {plate!r}")
            n = plate.model.wells
            pc = PlateCulture(
                pid, plate.model, bio.cell_type(plate.cell_type), self.clock.now(), viable=[0.0] * n, dead=[0.0] * n
            )
            self.plates[pid] = pc
        self._evolve(pc)
        return pc

    def rng(self, plate_id: str, kind: str) -> random.Random:
        """A fresh RNG for the next ``kind`` draw on ``plate_id``: seeded by ``seed:plate:kind:n``."""
        n = self._draws.get((plate_id, kind), 0)
        self._draws[(plate_id, kind)] = n + 1
        return random.Random(f"{self.rng_seed}:{plate_id}:{kind}:{n}")

    def snapshot(self, plate: Plate | str) -> dict[str, Any]:
        """True (noise-free) state of a plate now, for tests and debugging."""
        pc = self.plate(plate)
        k = pc.capacity
        return {
            "phase": pc.phase,
            "site": self.locations.site_of(pc.plate_id),
            "viable": sum(pc.viable),
            "dead": sum(pc.dead),
            "confluence": [min(1.0, v / k) for v in pc.viable],
            "viability": pc.viability(),
            "medium_age_h": (self.clock.now() - pc.medium_at) / bio.HOUR if pc.phase == "attached" else None,
            "suspension_viable": pc.suspension_viable,
            "suspension_dead": pc.suspension_dead,
            "passages": pc.passages,
            "reagents": dict(pc.reagents),
        }

    # -- locations (evolve first: the temperature may change) -------------------------
    def place(self, plate: Plate, site: str, device: str = "workcell") -> None:
        """Put a new plate at ``site`` (operator loading). Raises StateError (see Locations.place)."""
        self.locations.place(plate.id, site, device)
        self.plate(plate)

    def move(self, plate_id: str, destination: str) -> None:
        """Move a plate whose move was checked and reserved by the caller."""
        if plate_id in self.plates:
            self._evolve(self.plates[plate_id])
        self.locations.move(plate_id, destination)

    # -- evolution ---------------------------------------------------------------------
    def _evolve(self, pc: PlateCulture) -> None:
        now = self.clock.now()
        if now <= pc.t:
            return
        temperature = self.locations.temperature_at(pc.plate_id)
        for a, b in bio.grid_points(pc.t, now):
            self._step(pc, a, b, temperature)
        pc.t = now

    def _step(self, pc: PlateCulture, a: float, b: float, temperature: float) -> None:
        hours = (b - a) / bio.HOUR
        base = bio.BASELINE_DEATH_PER_H * hours
        if pc.phase == "attached":
            k, kind = pc.capacity, pc.kind
            k_log, lag = kind.logistic_capacity(k), kind.lag_h * bio.HOUR
            growth = kind.growth_rate_per_s * (
                bio.lag_integral(b - pc.seeded_at, lag) - bio.lag_integral(a - pc.seeded_at, lag)
            )
            hazard = base + bio.medium_hazard(a - pc.medium_at, b - pc.medium_at)
            for i, v0 in enumerate(pc.viable):
                v1 = bio.bernoulli_step(v0, k_log, growth, hazard)
                pc.viable[i] = v1
                pc.dead[i] += hazard * (v0 + v1) / 2.0
                if v0 / k > bio.OVERCONFLUENT:  # turnover: suppressed divisions end as dead cells
                    pc.dead[i] += bio.OVERCONFLUENT_TURNOVER * growth * v0 * v0 / k_log
        elif pc.phase == "dissociated":
            e1 = pc.exposure_s + bio.reagent_activity(temperature) * (b - a)
            survive = math.exp(-(base + bio.dissociation_hazard(pc.exposure_s, e1)))
            pc.exposure_s = e1
            for i, v0 in enumerate(pc.viable):
                pc.viable[i] = v0 * survive
                pc.dead[i] += v0 * (1.0 - survive)
        elif pc.phase == "harvested":
            survive = math.exp(-bio.SUSPENSION_DEATH_PER_H * hours)
            lost = pc.suspension_viable * (1.0 - survive)
            pc.suspension_viable -= lost
            pc.suspension_dead += lost

    # -- liquid-handling operations ----------------------------------------------------
    # Each ``check_*`` raises StateError and changes nothing; the operation calls it first.

    def _check_volume(self, pc: PlateCulture, volume_ul: float, device: str, add_to: float = 0.0) -> None:
        if volume_ul <= 0:
            raise StateError(device, f"volume_ul must be > 0 (got {volume_ul})")
        if add_to + volume_ul > pc.model.max_volume_ul:
            raise StateError(
                device,
                f"{add_to + volume_ul:g} µL per well exceeds the {pc.model.max_volume_ul:g} µL working volume "
                f"of {pc.model.name}",
            )

    def check_seed(self, plate: Plate, cells_per_well: float, volume_ul: float, device: str = "culture") -> None:
        """Seeding needs a plate that never held cells. Raises StateError otherwise."""
        pc = self.plate(plate)
        if pc.phase != "empty":
            raise StateError(device, f"plate {pc.plate_id!r} is not empty ({pc.phase}); seed only a new plate")
        if cells_per_well <= 0:
            raise StateError(device, f"cells_per_well must be > 0 (got {cells_per_well})")
        self._check_volume(pc, volume_ul, device)

    def seed(
        self, plate: Plate, cells_per_well: float, volume_ul: float, cv: float = 0.05, device: str = "culture"
    ) -> None:
        """Seed ``cells_per_well`` viable cells (± ``cv`` per well) in ``volume_ul`` µL. Starts a lag phase."""
        self.check_seed(plate, cells_per_well, volume_ul, device)
        pc = self.plate(plate)
        now = self._plate_out(pc, cells_per_well, cv, volume_ul, "seed")
        pc.dead = [v * (1.0 - bio.SEED_STOCK_VIABILITY) / bio.SEED_STOCK_VIABILITY for v in pc.viable]
        pc.history.append((now, f"seeded {cells_per_well:g} cells/well"))

    def _plate_out(self, pc: PlateCulture, per_well: float, cv: float, volume_ul: float, stream: str) -> float:
        """Put ``per_well`` viable cells (± ``cv``, random ``stream``) into every well in
        ``volume_ul`` µL; the plate is attached from now. Returns now (s)."""
        rng = self.rng(pc.plate_id, stream)
        pc.viable = [max(0.0, per_well * (1.0 + cv * rng.gauss(0.0, 1.0))) for _ in range(pc.model.wells)]
        now = self.clock.now()
        pc.phase, pc.seeded_at, pc.medium_at, pc.volume_ul = "attached", now, now, volume_ul
        return now

    def check_exchange(self, plate: Plate, volume_ul: float, device: str = "culture") -> None:
        """Exchanging medium needs attached cells. Raises StateError otherwise."""
        pc = self.plate(plate)
        if pc.phase == "dissociated":
            raise StateError(
                device, f"plate {pc.plate_id!r} is dissociated: aspirating would discard the cells; harvest first"
            )
        if pc.phase == "harvested":
            raise StateError(device, f"plate {pc.plate_id!r} has its cells in suspension; reseed first")
        if not pc.has_cells_in_wells:
            raise StateError(device, f"plate {pc.plate_id!r} has no cells; seed it first")
        self._check_volume(pc, volume_ul, device)

    def exchange_medium(self, plate: Plate, volume_ul: float, medium: str = "", device: str = "culture") -> None:
        """Replace the medium: resets its age, aspirates most dead cells and any assay reagent."""
        self.check_exchange(plate, volume_ul, device)
        pc = self.plate(plate)
        now = self.clock.now()
        pc.dead = [d * (1.0 - bio.EXCHANGE_DEAD_REMOVED) for d in pc.dead]
        pc.medium_at, pc.volume_ul = now, volume_ul
        pc.reagents.clear()
        pc.history.append((now, f"medium exchanged ({medium or 'medium'})"))

    def check_dissociate(self, plate: Plate, volume_ul: float, device: str = "culture") -> None:
        """Dissociation needs cells in the wells. Raises StateError otherwise."""
        pc = self.plate(plate)
        if pc.phase in ("empty", "harvested") or not pc.has_cells_in_wells:
            raise StateError(device, f"plate {pc.plate_id!r} has no cells in its wells to dissociate")
        self._check_volume(pc, volume_ul, device)

    def dissociate(self, plate: Plate, volume_ul: float, reagent: str = "accutase", device: str = "culture") -> None:
        """Replace medium with dissociation reagent; the exposure clock starts.

        A second dose while the cells are already dissociated over-digests them: viable
        cells drop to :data:`~simulators.cells.DOUBLE_DISSOCIATION_SURVIVAL` at once.
        """
        self.check_dissociate(plate, volume_ul, device)
        pc = self.plate(plate)
        now = self.clock.now()
        if pc.phase == "dissociated":
            s = bio.DOUBLE_DISSOCIATION_SURVIVAL
            pc.dead = [d + v * (1.0 - s) for v, d in zip(pc.viable, pc.dead, strict=True)]
            pc.viable = [v * s for v in pc.viable]
            pc.history.append((now, f"SECOND dose of {reagent} on detached cells: viability crash"))
        else:
            pc.phase, pc.exposure_s = "dissociated", 0.0
            pc.history.append((now, f"dissociation with {reagent}"))
        pc.dissociations += 1
        pc.volume_ul = volume_ul
        pc.reagents.clear()

    def check_harvest(self, plate: Plate, volume_ul: float, device: str = "culture") -> None:
        """Harvest needs dissociated cells. Raises StateError otherwise."""
        pc = self.plate(plate)
        if pc.phase != "dissociated":
            raise StateError(device, f"plate {pc.plate_id!r} is {pc.phase}, not dissociated; dissociate before harvest")
        self._check_volume(pc, volume_ul, device, add_to=pc.volume_ul)

    def harvest(self, plate: Plate, volume_ul: float, device: str = "culture") -> None:
        """Neutralise and collect every well into one suspension.

        Only detached cells are collected (``1 − exp(−exposure/2.5 min)``), and a few % are
        lost or killed by trituration.
        """
        self.check_harvest(plate, volume_ul, device)
        pc = self.plate(plate)
        # Cells not yet detached stay behind and are lost; too long a window kills (see _step).
        keep = (1.0 - bio.HARVEST_LOSS) * bio.detached_fraction(pc.exposure_s)
        damaged = sum(pc.viable) * bio.HARVEST_DAMAGE
        pc.suspension_viable = (sum(pc.viable) - damaged) * keep
        pc.suspension_dead = (sum(pc.dead) + damaged) * keep
        pc.suspension_ul = (pc.volume_ul + volume_ul) * pc.model.wells
        n = pc.model.wells
        pc.viable, pc.dead = [0.0] * n, [0.0] * n
        pc.phase, pc.volume_ul = "harvested", 0.0
        pc.history.append((self.clock.now(), f"harvested {pc.suspension_viable:.3g} viable cells"))

    def check_reseed(self, plate: Plate, split_ratio: float, volume_ul: float, device: str = "culture") -> None:
        """Reseeding needs a harvested suspension and ``split_ratio >= 1``. Raises StateError otherwise."""
        pc = self.plate(plate)
        if pc.phase != "harvested":
            raise StateError(device, f"plate {pc.plate_id!r} is {pc.phase}: reseed needs a harvest first")
        if split_ratio < 1:
            raise StateError(device, f"split_ratio must be >= 1 (got {split_ratio})")
        self._check_volume(pc, volume_ul, device)

    def reseed(
        self, plate: Plate, split_ratio: float, volume_ul: float, cv: float = 0.05, device: str = "culture"
    ) -> None:
        """Put ``1/split_ratio`` of the suspension back, spread over every well; the rest is discarded."""
        self.check_reseed(plate, split_ratio, volume_ul, device)
        pc = self.plate(plate)
        n = pc.model.wells
        now = self._plate_out(pc, pc.suspension_viable / split_ratio / n, cv, volume_ul, "reseed")
        pc.dead = [pc.suspension_dead / split_ratio / n] * n
        pc.suspension_viable = pc.suspension_dead = pc.suspension_ul = 0.0
        pc.passages += 1
        pc.reagents.clear()
        pc.history.append((now, f"reseeded 1:{split_ratio:g}"))

    def check_add_reagent(self, plate: Plate, reagent: str, volume_ul: float, device: str = "culture") -> None:
        """Adding reagent needs room in the wells. Raises StateError otherwise."""
        pc = self.plate(plate)
        if not reagent.strip():
            raise StateError(device, "reagent name is empty")
        self._check_volume(pc, volume_ul, device, add_to=pc.volume_ul)

    def add_reagent(self, plate: Plate, reagent: str, volume_ul: float, device: str = "culture") -> None:
        """Add an assay reagent. A lytic ATP reagent (CellTiter-Glo) ends the culture: cells are lysed."""
        self.check_add_reagent(plate, reagent, volume_ul, device)
        pc = self.plate(plate)
        key, now = reagent_key(reagent), self.clock.now()
        pc.reagents[key] = now
        pc.volume_ul += volume_ul
        if key in LYTIC_REAGENTS:
            pc.atp_cells = list(pc.viable)
            pc.dead = [v + d for v, d in zip(pc.viable, pc.dead, strict=True)]
            pc.viable = [0.0] * len(pc.viable)
        pc.history.append((now, f"added {volume_ul:g} µL {key}"))


def read_state_log(path: str | Path) -> list[dict[str, Any]]:
    """Records of a world log written by :meth:`CultureModel.persist`; a torn last
    record (the process died while writing it) is ignored."""
    return _whole_records(path)[0]


def _whole_records(path: str | Path) -> tuple[list[dict[str, Any]], int, int]:
    """``(records, bytes they take, file size)``: the bytes past the last whole record
    are a torn write."""
    data = Path(path).read_bytes() if Path(path).exists() else b""
    records, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at:at + 8], "little")
        if at + 8 + size > len(data):
            break
        records.append(pickle.loads(data[at + 8:at + 8 + size]))  # our own log, never user input
        at += 8 + size
    return records, at, len(data)


def load_effect_log(state_path: str | Path) -> list[dict[str, Any]]:
    """Every physical effect logged in a persisted world, in order."""
    return [r["effect"] for r in read_state_log(state_path) if r["effect"] is not None]


def culture_of(ctx: DriverContext) -> CultureModel:
    """The workcell's culture model in ``ctx.shared["culture"]``, created on first use."""
    model = ctx.shared.get("culture")
    if model is None:
        model = ctx.shared["culture"] = CultureModel(ctx.clock, seed=ctx.seed)
        path = ctx.shared.get("sim_state_path")
        if path:
            model.state_path = Path(path)
            if model.state_path.exists():
                model.restore(model.state_path)
    if not isinstance(model, CultureModel):
        raise TypeError(f"ctx.shared['culture'] is a {type(model).__name__}, not a CultureModel")
    return model
