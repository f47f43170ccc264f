"""The plan's Gantt chart as one self-contained HTML file (inline SVG, no JavaScript).

Drawn with :func:`orchestrator.report.gantt.gantt_figure` (an overview plus one panel per
working session); if that module is not importable, a small built-in SVG renderer draws
one chart of the whole plan instead.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

COLORS = {"planned": "#1f5fa8", "frozen": "#2e7d32", "violation": "#c62828"}


def simple_svg(rows: Iterable[Sequence[Any]], width: int = 1200, lane_height: int = 18, label_width: int = 130) -> str:
    """A minimal Gantt chart of ``(lane, label, start_s, end_s, status)`` rows."""
    items = [r for r in rows if r[2] is not None and r[3] is not None]
    if not items:
        return "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'></svg>"
    lanes = sorted({str(r[0]) for r in items})
    t0 = min(float(r[2]) for r in items)
    t1 = max(float(r[3]) for r in items)
    span = max(t1 - t0, 1.0)
    plot = width - label_width - 10
    height = lane_height * len(lanes) + 30
    head = (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-family='sans-serif' "
            f"font-size='11'>")
    out = [head]
    for i, lane in enumerate(lanes):
        y = 20 + i * lane_height
        out.append(f"<text x='4' y='{y + lane_height - 5}'>{html.escape(lane)}</text>")
        out.append(f"<line x1='{label_width}' x2='{width - 10}' y1='{y + lane_height}' y2='{y + lane_height}' "
                   f"stroke='#ddd'/>")
    for d in range(int(t0 // 86400), int(t1 // 86400) + 2):
        x = label_width + plot * (d * 86400 - t0) / span
        if label_width <= x <= width:
            out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='15' y2='{height}' stroke='#eee'/>"
                       f"<text x='{x + 2:.1f}' y='12' fill='#666'>D{d}</text>")
    index = {lane: i for i, lane in enumerate(lanes)}
    for lane, label, s, e, status, *_ in items:
        y = 20 + index[str(lane)] * lane_height + 2
        x = label_width + plot * (float(s) - t0) / span
        w = max(1.0, plot * (float(e) - float(s)) / span)
        out.append(f"<rect x='{x:.2f}' y='{y}' width='{w:.2f}' height='{lane_height - 4}' "
                   f"fill='{COLORS.get(str(status), '#546e7a')}'><title>{html.escape(str(label))} "
                   f"{float(s):.0f}–{float(e):.0f} s ({html.escape(str(status))})</title></rect>")
    out.append("</svg>")
    return "".join(out)


def chart(rows: Sequence[Mapping[str, Any]], title: str) -> str:
    """An HTML fragment with the chart of the Gantt ``rows`` (dicts from ``gantt_rows``)."""
    tuples = [(r["lane"], r["label"], r["start"], r["end"], r["status"]) for r in rows]
    try:
        from orchestrator.report.gantt import gantt_figure
    except ImportError:  # pragma: no cover - the report package is optional here
        return simple_svg(tuples)
    lanes = sorted({str(r[0]) for r in tuples})
    return gantt_figure(tuples, lanes=lanes, title=title)


def write_plan_html(path: Path, summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write the plan summary and its Gantt chart as one HTML file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    items = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v, default=str))}</td></tr>"
                    for k, v in summary.items() if k not in ("explanation", "predicted_false"))
    explanation = summary.get("explanation")
    extra = ""
    if explanation:
        extra = "<h2>Why no feasible plan</h2><pre>" + html.escape(json.dumps(explanation, indent=1, default=str)) + "</pre>"
    title = f"Plan of campaign {summary.get('campaign', '')}"
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           "<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
           "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;font-size:13px}</style></head><body>"
           f"<h1>{html.escape(title)}</h1><table>{items}</table>{extra}"
           f"{chart(rows, title)}</body></html>")
    path.write_text(doc, encoding="utf-8")
    return path
