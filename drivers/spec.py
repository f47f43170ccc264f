"""Driver packaging: :class:`DriverSpec` and the registry over entry points.

A driver package publishes a ``DriverSpec`` under the entry-point group
``cellwright.drivers``::

    [project.entry-points."cellwright.drivers"]
    acme-counter = "acme_counter:SPEC"

Built-in drivers register the same way in the project's own ``pyproject.toml``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from drivers.base import Instrument, capabilities_of
from drivers.clock import Clock
from drivers.errors import ConfigurationError

ENTRY_POINT_GROUP = "cellwright.drivers"


class DriverConfig(BaseModel):
    """Base of every driver's config model. Unknown keys are errors.

    Attributes:
        durations: per-action duration overrides, seconds (``{exchange_medium: 280}``).
    """

    model_config = ConfigDict(extra="forbid")

    durations: dict[str, float] = {}


@dataclass
class DriverContext:
    """What a driver factory receives besides its config.

    Attributes:
        name: the instrument's name in the workcell.
        clock: the clock every wait goes through.
        seed: seed for any randomness (simulators).
        shared: objects shared by every instrument of one workcell (a simulator's
            culture model lives here); drivers must not rely on anything in it.
    """

    name: str
    clock: Clock
    seed: int = 0
    shared: dict[str, Any] = field(default_factory=dict)


Factory = Callable[[Any, DriverContext], Instrument]
FactoryRef = Factory | str
"""A factory, or ``"module:function"`` imported only when called — how a driver in
``drivers/`` names an emulator that lives in ``simulators/`` without importing it."""


def resolve_factory(ref: FactoryRef) -> Factory:
    """Return the callable behind a factory reference.

    Raises:
        ConfigurationError: when a ``module:function`` reference does not import.
    """
    if callable(ref):
        return ref
    module_name, _, attr = ref.partition(":")
    try:
        import importlib

        return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"factory {ref!r} does not import: {exc}") from exc


@dataclass(frozen=True)
class DriverSpec:
    """A driver as published to the registry.

    Attributes:
        name: registry name (``sim.imager``, ``plr.cytomat``).
        instrument_class: the interface it implements (``drivers.base.Imager``).
        config_model: pydantic model of its workcell config.
        create: builds the real driver.
        create_simulator: builds a behavioural simulator of the same instrument.
        create_emulator: starts a wire-level emulator and builds the real driver
            against it (required for serial and TCP drivers), or None.
        preflight: checks a step's arguments at validate time (e.g. simulates an
            Opentrons protocol file), or None.
        description: one line.
        transport: ``none``, ``serial``, ``tcp``, ``http`` or ``in-process``.
    """

    name: str
    instrument_class: type[Instrument]
    config_model: type[DriverConfig]
    create: FactoryRef
    create_simulator: FactoryRef
    description: str
    create_emulator: FactoryRef | None = None
    transport: str = "in-process"
    driver_class: type[Instrument] | None = None
    preflight: FactoryRef | None = None
    """Optional check of one protocol step before anything runs:
    ``preflight(config, action, args) -> list[str]`` of problems (empty when fine)."""

    def __post_init__(self) -> None:
        if self.transport in ("serial", "tcp") and self.create_emulator is None:
            raise ConfigurationError(f"driver {self.name!r}: {self.transport} drivers must provide create_emulator")

    def parse_config(self, raw: Mapping[str, Any] | None, where: str = "") -> DriverConfig:
        """Validate a raw config mapping.

        Raises:
            ConfigurationError: naming ``where``, the field and what was expected.
        """
        try:
            return self.config_model.model_validate(dict(raw or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(config)'}: {err['msg']}" for err in exc.errors()
            )
            raise ConfigurationError(f"{where}driver {self.name!r} config: {problems}") from None

    def build(self, mode: str, config: DriverConfig, ctx: DriverContext) -> Instrument:
        """Create the instrument in ``mode``: ``real``, ``simulator`` or ``emulator``.

        Raises:
            ConfigurationError: unknown mode, or ``emulator`` for a driver without one.
        """
        refs = {"real": self.create, "simulator": self.create_simulator, "emulator": self.create_emulator}
        if mode not in refs:
            raise ConfigurationError(f"driver {self.name!r}: unknown mode {mode!r}; expected real, simulator or emulator")
        ref = refs[mode]
        if ref is None:
            raise ConfigurationError(f"driver {self.name!r} has no wire-level emulator")
        return resolve_factory(ref)(config, ctx)

    def capabilities(self) -> list[str]:
        """Capability names the driver class implements (when it declares its class)."""
        return capabilities_of(self.driver_class) if self.driver_class else []


@cache
def registry() -> dict[str, DriverSpec]:
    """Every installed driver, by name.

    Raises:
        ConfigurationError: when an entry point does not load or is not a DriverSpec.
    """
    found: dict[str, DriverSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = ep.load()
        except Exception as exc:  # a broken third-party package must be named, not crash us
            raise ConfigurationError(f"driver entry point {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        if not isinstance(spec, DriverSpec):
            raise ConfigurationError(f"driver entry point {ep.name!r} ({ep.value}) is not a DriverSpec")
        found[spec.name] = spec
    return dict(sorted(found.items()))


def get_driver(name: str) -> DriverSpec:
    """Look a driver up by name.

    Raises:
        ConfigurationError: unknown name (with the closest known names).
    """
    specs = registry()
    if name in specs:
        return specs[name]
    import difflib

    close = difflib.get_close_matches(name, list(specs), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; installed: {', '.join(specs) or 'none'}"
    raise ConfigurationError(f"unknown driver {name!r}{hint}")
