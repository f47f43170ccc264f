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

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.actions import ActionInfo, actions_of, catalogue
from drivers.base import INSTRUMENT_CLASSES
from drivers.errors import ConfigurationError
from drivers.spec import DriverConfig, DriverSpec, get_driver
from orchestrator.protocol.errors import ErrorSink, ProtocolErrors
from orchestrator.protocol.model import duration_seconds
from orchestrator.protocol.source import SourceFile
from orchestrator.protocol.structure import load_document

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "protocols" / "workcells"
DEFAULT_WORKCELL = BUNDLED_DIR / "default.yaml"


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plates_out: int = Field(4, ge=1, description="plates outside the incubator at once")
    keep_out: float = Field(900.0, description="a plate stays on a deck when its next step is due within this (s)")

    @field_validator("keep_out", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> float | None:
        return duration_seconds(value)


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
    limits: _Limits = Field(default_factory=lambda: _Limits.model_validate({}))
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
        src, parsed = load_document(path, _WorkcellDoc, "a mapping with workcell and instruments")
        instruments = _instruments(src, parsed)
    except ProtocolErrors as exc:
        raise ConfigurationError(str(exc)) from None
    return Workcell(parsed.workcell, parsed.title, str(path), instruments, parsed.limits.plates_out,
                    parsed.limits.keep_out, src.data)


def _instruments(src: SourceFile, parsed: _WorkcellDoc) -> dict[str, InstrumentConfig]:
    """Resolve every instrument's class, driver, mode and config.

    Raises:
        ProtocolErrors: every problem, located at the offending key.
    """
    sink = ErrorSink()
    instruments: dict[str, InstrumentConfig] = {}
    for name, inst in parsed.instruments.items():
        here = ("instruments", name)
        if inst.instrument_class not in INSTRUMENT_CLASSES:
            sink.add(src.loc((*here, "class")), f"unknown instrument class {inst.instrument_class!r}; "
                     f"expected one of {', '.join(INSTRUMENT_CLASSES)}")
            continue
        try:
            spec = get_driver(inst.driver)
        except ConfigurationError as exc:
            sink.add(src.loc((*here, "driver")), str(exc))
            continue
        if spec.instrument_class.instrument_class != inst.instrument_class:
            sink.add(src.loc((*here, "driver")),
                     f"driver {spec.name!r} is a {spec.instrument_class.instrument_class}, not a {inst.instrument_class}")
            continue
        mode = {True: "simulator", False: "real", "emulator": "emulator"}[inst.simulate]
        if mode == "emulator" and spec.create_emulator is None:
            sink.add(src.loc((*here, "simulate")), f"driver {spec.name!r} has no emulator")
            continue
        try:
            config = spec.parse_config(inst.config)
        except ConfigurationError as exc:
            sink.add(src.loc((*here, "config")), str(exc))
            continue
        instruments[name] = InstrumentConfig(name, inst.instrument_class, spec, mode, inst.nests, config)
    if not any(i.instrument_class == "incubator" for i in parsed.instruments.values()):
        sink.add(src.loc(("instruments",), key=True), "a workcell needs an incubator (the plates' home)")
    sink.raise_if_any()
    return instruments
