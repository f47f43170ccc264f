"""Reading the simulated world's physical-effect log (for crash tests and the chaos bench).

Every physical effect a simulator applies is logged with the engine step it belonged
to (``run:step:attempt``, from :data:`drivers.context.current_step`). After any number
of crashes and resumes, the log shows whether a step's effect happened more than once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from drivers.actions import catalogue
from simulators.culture import load_effect_log


def load_effects(path: str | Path) -> list[dict[str, Any]]:
    """The effect log persisted beside a simulated world (``path`` is the world's file)."""
    return load_effect_log(path)


def recovery_class(instrument_class_of: Mapping[str, str], device: str, action: str) -> str:
    """Recovery class of ``action`` on ``device`` (``unknown`` if not in the catalogue)."""
    info = catalogue().get(f"{instrument_class_of.get(device, '')}.{action}")
    return info.recovery if info else "unknown"


def repeated_steps(effects: Iterable[Mapping[str, Any]], instrument_class_of: Mapping[str, str],
                   classes: tuple[str, ...] = ("operator", "query")) -> list[tuple[str, int]]:
    """Steps (``run:step``) whose physical effect happened more than once, for actions of
    the given recovery classes (a repeatable read may legitimately happen twice)."""
    counts: Counter[str] = Counter()
    for e in effects:
        step = e.get("step")
        if not step or recovery_class(instrument_class_of, e["device"], e["action"]) not in classes:
            continue
        run_step = step.rsplit(":", 1)[0]
        counts[run_step] += 1
    return sorted((k, n) for k, n in counts.items() if n > 1)
