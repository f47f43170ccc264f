"""Workcell configuration: which instruments exist, their drivers, sites and limits.

A workcell file (YAML)::

    workcell: default-sim
    title: Simulated iPSC workcell
    limits: {plates_out: 4, keep_out: 15m}
    instruments:
      incubator: {class: incubator, driver: sim.incubator, config: {slots: 44}}
      lh1:       {class: liquid_handler, driver: sim.liquid_handler, simulate: true, nests: 1}

``simulate`` is ``true`` (behavioural simulator, the default), ``emulator`` (the real
driver talking to a wire-level emulator) or ``false`` (hardware).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drivers.actions import ActionInfo, actions_of, catalogue
from drivers.base import INSTRUMENT_CLASSES
from drivers.errors import ConfigurationError
from drivers.spec import DriverConfig, DriverSpec, get_driver
from orchestrator.protocol.durations import parse_duration
from orchestrator.yamlsource import YamlSyntaxError, load_located

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "protocols" / "workcells"
DEFAULT_WORKCELL = BUNDLED_DIR / "default.yaml"

class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plates_out: int = Field(4, ge=1, description="plates outside the incubator at once")
    keep_out: float = Field(900.0, description="a plate stays on a deck when its next step is due within this (s)")

    @field_validator("keep_out", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return parse_duration(v)


class _InstrumentDoc(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    instrument_class: str = Field(alias="class", description="liquid_handler, incubator, plate_reader, imager, cell_counter or plate_mover")
    driver: str = Field(description="registry name of the driver, see `cellwright drivers`")
    simulate: bool | Literal["emulator"] = Field(True, description="true: simulator; emulator: real driver on an emulator; false: hardware")
    nests: int = Field(1, ge=1, description="plates its site holds at once")
    config: dict[str, Any] = Field(default_factory=dict, description="the driver's own config")


class _WorkcellDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workcell: str
    title: str = ""
    limits: _Limits = Field(default_factory=_Limits)
    instruments: dict[str, _InstrumentDoc]


@dataclass(frozen=True)
class InstrumentConfig:
    """One instrument of a workcell, validated."""

    name: str
    instrument_class: str
    driver: DriverSpec
    mode: str
    nests: int
    config: DriverConfig


@dataclass(frozen=True)
class Workcell:
    """A validated workcell."""

    name: str
    title: str
    source: str
    instruments: Mapping[str, InstrumentConfig]
    plates_out: int = 4
    keep_out_s: float = 900.0
    raw: Mapping[str, Any] = field(default_factory=dict)

    def instrument_classes(self) -> dict[str, str]:
        """Instrument name -> instrument class."""
        return {n: i.instrument_class for n, i in self.instruments.items()}

    def actions(self) -> dict[str, ActionInfo]:
        """Every action a protocol may name on this workcell: the class interfaces' actions
        plus any a driver adds (``liquid_handler.run_opentrons_protocol``)."""
        found = dict(catalogue())
        for inst in self.instruments.values():
            found.update({i.qualified: i for i in actions_of(inst.driver.driver_class or inst.driver.instrument_class)
                          .values()})
        return found

    def can(self, name: str, action: str) -> bool:
        """True when instrument ``name``'s driver has ``action``."""
        inst = self.instruments[name]
        return action in actions_of(inst.driver.driver_class or inst.driver.instrument_class)

    def of_class(self, instrument_class: str) -> list[str]:
        """Names of the instruments of one class, in file order."""
        return [n for n, i in self.instruments.items() if i.instrument_class == instrument_class]

    @property
    def incubator(self) -> str:
        """Name of the (first) incubator: the default home of plates."""
        names = self.of_class("incubator")
        if not names:
            raise ConfigurationError(f"{self.source}: the workcell has no incubator")
        return names[0]


def load_workcell(path: str | Path | None = None) -> Workcell:
    """Read and validate a workcell file (default: the bundled simulated workcell).

    Raises:
        ConfigurationError: every problem, one per line, as ``path:line:col: message``.
    """
    path = Path(path) if path else DEFAULT_WORKCELL
    try:
        doc = load_located(path)
    except YamlSyntaxError as exc:
        raise ConfigurationError(str(exc)) from None
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read workcell file: {exc.strerror}") from None
    try:
        parsed = _WorkcellDoc.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigurationError("\n".join(doc.describe(exc))) from None
    problems: list[str] = []
    instruments: dict[str, InstrumentConfig] = {}
    for name, inst in parsed.instruments.items():
        where = doc.where(("instruments", name))
        if inst.instrument_class not in INSTRUMENT_CLASSES:
            problems.append(f"{doc.where(('instruments', name, 'class'))}: unknown instrument class "
                            f"{inst.instrument_class!r}; expected one of {', '.join(INSTRUMENT_CLASSES)}")
            continue
        try:
            spec = get_driver(inst.driver)
        except ConfigurationError as exc:
            problems.append(f"{doc.where(('instruments', name, 'driver'))}: {exc}")
            continue
        if spec.instrument_class.instrument_class != inst.instrument_class:
            problems.append(f"{doc.where(('instruments', name, 'driver'))}: driver {spec.name!r} is a "
                            f"{spec.instrument_class.instrument_class}, not a {inst.instrument_class}")
            continue
        mode = {True: "simulator", False: "real", "emulator": "emulator"}[inst.simulate]
        if mode == "emulator" and spec.create_emulator is None:
            problems.append(f"{doc.where(('instruments', name, 'simulate'))}: driver {spec.name!r} has no emulator")
            continue
        try:
            config = spec.parse_config(inst.config)
        except ConfigurationError as exc:
            problems.append(f"{doc.where(('instruments', name, 'config'))}: {exc}")
            continue
        instruments[name] = InstrumentConfig(name, inst.instrument_class, spec, mode, inst.nests, config)
        del where
    if not any(i.instrument_class == "incubator" for i in parsed.instruments.values()):
        problems.append(f"{doc.where(('instruments',))}: a workcell needs an incubator (the plates' home)")
    if problems:
        raise ConfigurationError("\n".join(problems))
    return Workcell(parsed.workcell, parsed.title, str(path), instruments, parsed.limits.plates_out,
                    parsed.limits.keep_out, doc.data)
