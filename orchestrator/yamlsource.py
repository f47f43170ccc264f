"""YAML with positions: load a file keeping the line and column of every key and value,
and turn pydantic errors into ``path:line:col: message`` lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; ``str()`` is ``path:line:col: message``."""


@dataclass
class LocatedYaml:
    """A loaded YAML document and where each part of it was written."""

    path: str
    data: Any

    def position(self, loc: Sequence[Any]) -> tuple[int, int]:
        """1-based (line, col) of the value (or key) at ``loc``; the nearest known ancestor otherwise."""
        node = self.data
        line, col = 1, 1
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                ln, cl = node.lc.key(part)
                line, col = ln + 1, cl + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                ln, cl = node.lc.item(part)
                line, col = ln + 1, cl + 1
                node = node[part]
            else:
                break
        return line, col

    def where(self, loc: Sequence[Any]) -> str:
        """``path:line:col`` of ``loc``."""
        line, col = self.position(loc)
        return f"{self.path}:{line}:{col}"

    def describe(self, exc: ValidationError) -> list[str]:
        """One located line per pydantic error: field, what was expected, what was found."""
        lines = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            field = ".".join(str(p) for p in loc) or "(document)"
            if err["type"] == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}"
            elif err["type"] == "missing":
                msg = f"missing required key {field!r}"
            else:
                msg = f"{field}: {err['msg']} (got {err.get('input')!r})"
            lines.append(f"{self.where(loc)}: {msg}")
        return lines


def load_located(path: str | Path) -> LocatedYaml:
    """Load a YAML file keeping positions.

    Raises:
        YamlSyntaxError: located syntax error.
        OSError: the file cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8")
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlSyntaxError(f"{path}:{line}:{col}: YAML syntax: {exc.problem or exc.context}") from None
    return LocatedYaml(str(path), data)
