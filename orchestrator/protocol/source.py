"""YAML loading that keeps the line and column of every key and value.

Uses ruamel.yaml's composer (the node API) and builds plain Python data next to an
index from data paths (``("steps", 1, "with", "plate")``) to locations, so any later
pass can point at the exact key or value it complains about.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.protocol.errors import ErrorSink
from orchestrator.protocol.graph import Location

DataPath = tuple[str | int, ...]
_MAX_DEPTH = 64
_INT = re.compile(r"[-+]?(0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)")


@dataclass(frozen=True)
class Span:
    """Where one value sits: its key (None for list items and the root) and itself."""

    key: Location | None
    value: Location
    inline: int | None = None
    """Column offset of the scalar's first character for single-line scalars, else None."""


@dataclass
class SourceFile:
    """A parsed YAML file: ``data`` plus the location of every node in it.

    Attributes:
        path: the path as shown in messages.
        real: the resolved file path (for includes and cycles).
        raw: the file's bytes (for the content hash).
        data: plain Python (dict / list / str / int / float / bool / None).
        spans: location of every node by data path.
    """

    path: str
    real: Path
    raw: bytes
    data: Any = None
    spans: dict[DataPath, Span] = field(default_factory=dict)

    def loc(self, path: DataPath, *, key: bool = False) -> Location:
        """Location of the value at ``path`` (or of its key with ``key=True``).

        Falls back to the nearest enclosing node that exists, so a missing key is
        reported at the mapping that should hold it.
        """
        p = tuple(path)
        while p not in self.spans and p:
            p = p[:-1]
        span = self.spans.get(p)
        if span is None:
            return Location(self.path, 1, 1)
        if key and span.key is not None and p == tuple(path):
            return span.key
        return span.value

    def at(self, path: DataPath, offset: int) -> Location:
        """Location of character ``offset`` inside the string scalar at ``path``.

        Exact for single-line scalars; block and multi-line scalars give the value's
        start.
        """
        span = self.spans.get(tuple(path))
        if span is None or span.inline is None:
            return self.loc(path)
        return Location(self.path, span.value.line, span.value.col + span.inline + max(offset, 0))


PROTOCOL_TOP = "a mapping with protocol, version, title and steps"


def read_source(
    real: Path, display: str, sink: ErrorSink, at: Location | None = None, expected: str = PROTOCOL_TOP
) -> SourceFile | None:
    """Read and parse one YAML file (a protocol, workcell or campaign).

    Reports (into ``sink``, never raises) unreadable files at ``at`` (or the file
    itself), YAML syntax errors, duplicate keys, non-scalar keys and empty files
    (``expected`` says what the top level should be). Returns None when nothing usable
    could be parsed.
    """
    try:
        raw = real.read_bytes()
    except OSError as exc:
        sink.add(at or Location(display, 1, 1), f"cannot read {display}: {exc.strerror or exc}")
        return None
    src = SourceFile(display, real, raw)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        sink.add(Location(display, 1, 1), f"file is not UTF-8 text (byte {exc.start})")
        return None
    try:
        root = YAML(typ="rt", pure=True).compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(display, mark.line + 1, mark.column + 1) if mark else Location(display, 1, 1)
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        sink.add(where, f"YAML syntax error: {problem or exc}")
        return None
    except YAMLError as exc:  # pragma: no cover - unmarked ruamel errors are rare
        sink.add(Location(display, 1, 1), f"YAML error: {exc}")
        return None
    if root is None:
        sink.add(Location(display, 1, 1), f"empty file; expected {expected}")
        return None
    src.data = _Builder(src, sink).build(root, (), None, 0)
    return src


class _Builder:
    def __init__(self, src: SourceFile, sink: ErrorSink) -> None:
        self.src, self.sink = src, sink

    def _loc(self, node: Node) -> Location:
        return Location(self.src.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: DataPath, key: Location | None, depth: int) -> Any:
        inline = None
        if isinstance(node, ScalarNode) and node.start_mark.line == node.end_mark.line:
            inline = {None: 0, "": 0, "'": 1, '"': 1}.get(node.style)
        self.src.spans[path] = Span(key, self._loc(node), inline)
        if depth > _MAX_DEPTH:
            self.sink.add(self._loc(node), f"nesting deeper than {_MAX_DEPTH} levels (recursive alias?)")
            return None
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for knode, vnode in node.value:
                kloc = self._loc(knode)
                if not isinstance(knode, ScalarNode):
                    self.sink.add(kloc, "keys must be plain names, not lists or mappings")
                    continue
                name = str(knode.value)
                if name in out:
                    first = self.src.spans[(*path, name)].key
                    where = f" (first at line {first.line}:{first.col})" if first else ""
                    self.sink.add(kloc, f"duplicate key {name!r}{where}")
                    continue
                out[name] = self.build(vnode, (*path, name), kloc, depth + 1)
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), None, depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return _scalar(node)


def _scalar(node: ScalarNode) -> Any:
    """Construct a scalar from its resolved YAML 1.2 tag."""
    tag, text = str(node.tag), str(node.value)
    kind = tag.rsplit(":", 1)[-1]
    try:
        if kind == "null":
            return None
        if kind == "bool":
            return text.lower() in ("true", "yes", "on")
        if kind == "int" and _INT.fullmatch(text):
            return int(text.replace("_", ""), 0) if not re.fullmatch(r"[-+]?0[0-9_]+", text) else int(text)
        if kind == "float":
            low = text.lower().replace("_", "")
            if low.lstrip("+-") in (".inf", "inf"):
                return -math.inf if low.startswith("-") else math.inf
            if low in (".nan", "nan"):
                return math.nan
            return float(low)
    except ValueError:
        pass
    return text
