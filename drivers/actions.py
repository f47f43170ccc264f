"""The action catalogue: every ``instrument_class.action`` a protocol may name.

Built by introspecting the :func:`drivers.base.action` markers, so the interface is
the single source of truth for names, arguments, recovery classes and durations.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from drivers.labware import Plate


@dataclass(frozen=True)
class ActionParam:
    """One argument of an action.

    Attributes:
        name: argument name in ``with:``.
        kind: ``plate`` (a labware name), ``float``, ``int``, ``str`` or ``bool``.
        required: no default.
        default: the default value when not required.
        optional: ``None`` is allowed.
    """

    name: str
    kind: str
    required: bool
    default: Any = None
    optional: bool = False


@dataclass(frozen=True)
class ActionInfo:
    """A protocol-callable action: ``f"{instrument_class}.{name}"``."""

    instrument_class: str
    name: str
    params: tuple[ActionParam, ...]
    recovery: str
    duration_s: float
    summary: str
    returns: str | None
    moves_plate: bool
    physical: bool

    @property
    def qualified(self) -> str:
        """``liquid_handler.seed`` form."""
        return f"{self.instrument_class}.{self.name}"

    def param(self, name: str) -> ActionParam | None:
        """The argument called ``name``, if the action takes one."""
        return next((p for p in self.params if p.name == name), None)


_KINDS = {Plate: "plate", float: "float", int: "int", str: "str", bool: "bool"}


def _param_kind(annotation: Any) -> tuple[str, bool]:
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0]
    return _KINDS.get(annotation, "str"), optional


@cache
def actions_of(cls: type) -> dict[str, ActionInfo]:
    """Actions declared on an instrument class (or any subclass), by action name."""
    out: dict[str, ActionInfo] = {}
    for klass in reversed(cls.__mro__):
        for attr, fn in vars(klass).items():
            meta = getattr(fn, "__cellwright_action__", None)
            if meta is None:
                continue
            hints = typing.get_type_hints(fn)
            params = []
            for p in list(inspect.signature(fn).parameters.values())[1:]:
                kind, optional = _param_kind(hints.get(p.name, str))
                required = p.default is inspect.Parameter.empty
                params.append(ActionParam(p.name, kind, required, None if required else p.default, optional))
            ret = hints.get("return")
            out[attr] = ActionInfo(
                instrument_class=str(getattr(cls, "instrument_class", "")),
                name=attr,
                params=tuple(params),
                recovery=meta.recovery,
                duration_s=meta.duration_s,
                summary=meta.summary,
                returns=None if ret in (None, type(None)) else getattr(ret, "__name__", str(ret)),
                moves_plate=meta.moves_plate,
                physical=meta.physical,
            )
    return out


@cache
def catalogue() -> dict[str, ActionInfo]:
    """Every action of every instrument class, keyed ``instrument_class.action``."""
    from drivers.base import INSTRUMENT_CLASSES

    return {
        info.qualified: info for cls in INSTRUMENT_CLASSES.values() for info in actions_of(cls).values()
    }
