"""Config and backend construction of the pylabrobot incubator adapter (``plr.cytomat``,
``plr.incubator``); pylabrobot is imported inside the functions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from drivers.errors import ConfigurationError
from drivers.spec import DriverConfig

Backend = Literal["cytomat", "cytomat_chatterbox", "liconic", "chatterbox"]


class CytomatEmulatorOptions(BaseModel):
    """Emulator mode only (``simulate: emulator``).

    Attributes:
        move_s: device seconds a handler move takes.
        init_s: device seconds ``ll:in`` takes.
        read_timeout_s: pylabrobot's per-telegram read timeout on the pty (real s); replies
            are read to their line end, so only a missing reply waits this long.
    """

    model_config = ConfigDict(extra="forbid")
    move_s: float = Field(20.0, ge=0)
    init_s: float = Field(5.0, ge=0)
    read_timeout_s: float = Field(2.0, gt=0, le=5)


class PLRIncubatorConfig(DriverConfig):
    """Workcell config of ``plr.cytomat`` / ``plr.incubator``.

    Attributes:
        backend: ``cytomat`` (serial), ``liconic`` (serial), ``cytomat_chatterbox`` /
            ``chatterbox`` (print only, no hardware).
        model: Cytomat type (``C6000``, ``C6002``, ``C2C_425``, ``C2C_450_SHAKE``, ``C5C``)
            or Liconic type (``STX44_IC``...).
        port: serial device path.
        racks: rack functions from ``pylabrobot.storage.<cytomat|liconic>.racks``, in slot order.
        serial: serial number reported by ``identify`` (the protocol has no query).
        read_timeout_s: per-telegram serial read timeout, real s (None: pylabrobot's 1 s).
        action_timeout_s: clock seconds allowed for one fetch/store.
        connect_timeout_s: clock seconds allowed for setup (initialisation moves).
        simulate_durations: wait each action's duration on the clock (default: only
            for chatterboxes, which take no time of their own).
        plate_resources: labware model -> pylabrobot plate function.
        emulator: options of emulator mode.
    """

    backend: Backend = "cytomat"
    model: str = "C6000"
    port: str = "/dev/ttyUSB0"
    racks: list[str] = ["cytomat_rack_23mm_21"]
    serial: str = ""
    read_timeout_s: float | None = Field(None, gt=0)
    action_timeout_s: float = Field(180.0, gt=0)
    connect_timeout_s: float = Field(400.0, gt=0)
    simulate_durations: bool | None = None
    plate_resources: dict[str, str] = {}
    emulator: CytomatEmulatorOptions = CytomatEmulatorOptions()


def build_backend(config: PLRIncubatorConfig) -> Any:
    """The pylabrobot backend the config names (not set up).

    Raises:
        ConfigurationError: unknown model for the backend.
    """
    try:
        if config.backend in ("cytomat", "cytomat_chatterbox"):
            from pylabrobot.storage.cytomat import CytomatBackend, CytomatChatterbox

            cls = CytomatBackend if config.backend == "cytomat" else CytomatChatterbox
            backend = cls(model=config.model, port=config.port)
        elif config.backend == "liconic":
            from pylabrobot.storage.liconic import ExperimentalLiconicBackend

            backend = ExperimentalLiconicBackend(model=config.model, port=config.port)
        else:
            from pylabrobot.storage import IncubatorChatterboxBackend

            backend = IncubatorChatterboxBackend()
    except (ValueError, NotImplementedError) as exc:
        raise ConfigurationError(f"incubator backend {config.backend!r}: {exc}") from None
    if config.read_timeout_s is not None and hasattr(backend, "io"):
        backend.io.timeout = config.read_timeout_s
    return backend


def build_racks(config: PLRIncubatorConfig, prefix: str) -> list[Any]:
    """Rack resources from the config's rack function names.

    Raises:
        ConfigurationError: unknown rack function.
    """
    import importlib

    family = "liconic" if config.backend == "liconic" else "cytomat"
    module = importlib.import_module(f"pylabrobot.storage.{family}.racks")
    racks = []
    for i, rack in enumerate(config.racks):
        fn = getattr(module, rack, None)
        if not callable(fn):
            raise ConfigurationError(f"pylabrobot.storage.{family}.racks has no rack {rack!r}")
        racks.append(fn(f"{prefix}_rack{i + 1}"))
    return racks
