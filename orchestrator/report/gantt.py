"""Gantt charts as inline SVG: no JavaScript, no external resources, print-friendly.

A chart is drawn from plain rows ``(lane, label, start_s, end_s, status)`` — times in
seconds from the run's (or plan's) origin — so the same code draws executed runs (batch
records) and plans (the planner's output).

A multi-week run has hundreds of steps of a few minutes each, separated by a day of
incubation; one chart of the whole run shows *when* work happened but no single step is
wide enough to read. :func:`gantt_figure` therefore draws an overview of the whole span
and one panel per *session* (a cluster of work separated from the next by more than
``gap_s``), each on its own time axis, where steps are wide enough to carry labels.
Every bar carries a ``<title>`` (shown as a tooltip by browsers).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

Row = tuple[str, str, float, float | None, str]
"""``(lane, label, start_s, end_s, status)``; ``end_s`` may be ``None`` (still running)."""

STATUS_COLORS: dict[str, str] = {
    "done": "#2e7d32",
    "completed": "#2e7d32",
    "planned": "#1f5fa8",
    "scheduled": "#1f5fa8",
    "ready": "#5b8fd1",
    "pending": "#9fb3c8",
    "running": "#e0a100",
    "in-doubt": "#e0a100",
    "recovering": "#e06c00",
    "retrying": "#e06c00",
    "awaiting_operator": "#7b1fa2",
    "failed": "#c62828",
    "skipped": "#9e9e9e",
    "aborted": "#6d4c41",
}
"""Bar fill per status; any other status is drawn in :data:`OTHER_COLOR`."""

OTHER_COLOR = "#546e7a"

_TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600,
          86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400)


def color(status: str) -> str:
    """Fill colour of a status."""
    return STATUS_COLORS.get(status, OTHER_COLOR)


def fmt_elapsed(t: float, *, seconds: bool = False, day: bool = True) -> str:
    """``D3 06:15`` (day index from 0, then hours:minutes) for ``t`` seconds from the origin."""
    sign = "-" if t < 0 else ""
    t = abs(t)
    d, rem = divmod(round(t), 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    clock = f"{h:02d}:{m:02d}" + (f":{s:02d}" if seconds else "")
    return f"{sign}D{d} {clock}" if day else f"{sign}{clock}"


def fmt_duration(seconds: float | None) -> str:
    """``45 s``, ``5 min``, ``2 h 05 min``, ``3 d 04 h``."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return ""
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 120:
        return f"{sign}{s:.0f} s"
    if s < 3600:
        return f"{sign}{s / 60:.0f} min" if s % 60 == 0 else f"{sign}{s / 60:.1f} min"
    if s < 86400:
        h, m = divmod(round(s / 60), 60)
        return f"{sign}{h} h {m:02d} min"
    d, h = divmod(round(s / 3600), 24)
    return f"{sign}{d} d {h:02d} h"


def _step(span: float, max_ticks: int) -> float:
    for t in _TICKS:
        if span / t <= max_ticks:
            return float(t)
    return float(_TICKS[-1] * math.ceil(span / (_TICKS[-1] * max_ticks)))


def _tick_label(t: float, step: float, span: float, t0: float) -> str:
    if step >= 86400:
        return f"D{int(t // 86400)}"
    with_day = span >= 86400 or t0 >= 86400 or step >= 3600
    return fmt_elapsed(t, seconds=step < 60, day=with_day)


def gantt_svg(
    rows: Iterable[Sequence[Any]],
    *,
    t0: float | None = None,
    t1: float | None = None,
    width: int = 1000,
    lane_height: int = 18,
    label_width: int = 120,
    lanes: Sequence[str] | None = None,
    title: str | None = None,
    min_bar_px: float = 2.0,
    bar_labels: bool = True,
    standalone: bool = False,
) -> str:
    """One Gantt chart as an SVG element (a string).

    Args:
        rows: ``(lane, label, start_s, end_s, status)``; rows without a start are
            ignored; a missing or earlier end draws a bar of ``min_bar_px``.
        t0, t1: the time window drawn (default: the rows' extent); rows outside it
            are clipped.
        width: drawing width in px (the SVG scales down to the page width).
        lanes: lane order (default: order of first appearance); lanes without rows
            are drawn empty.
        title: caption drawn above the chart.
        min_bar_px: every bar is at least this wide, so short steps stay visible.
        bar_labels: write the label inside bars wide enough for it.
        standalone: add the SVG namespace (for a ``.svg`` file; inline SVG in HTML
            does not need it).

    Returns:
        ``<svg …>…</svg>``; all text escaped.
    """
    items = [(str(r[0]), str(r[1]), float(r[2]), float(r[3]) if r[3] is not None else None, str(r[4]))
             for r in rows if r[2] is not None]
    order: list[str] = list(lanes) if lanes is not None else []
    for lane, *_ in items:
        if lane not in order:
            order.append(lane)
    if t0 is None:
        t0 = min((i[2] for i in items), default=0.0)
    if t1 is None:
        t1 = max((max(i[2], i[3] if i[3] is not None else i[2]) for i in items), default=t0 + 3600.0)
    if t1 <= t0:
        t1 = t0 + 60.0
    span = t1 - t0
    top = 22 if title else 6
    axis_h = 20
    plot_w = max(100, width - label_width - 10)
    height = top + axis_h + max(1, len(order)) * lane_height + 6
    sx = plot_w / span

    def x(t: float) -> float:
        return label_width + (min(max(t, t0), t1) - t0) * sx

    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    label = escape(title or "Gantt chart", quote=True)
    out = [(f'<svg{ns} class="gantt" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="{label}" font-family="Helvetica, Arial, sans-serif" font-size="11">')]
    if title:
        out.append(f'<text x="0" y="14" font-size="12" font-weight="bold" fill="#222">{escape(title)}</text>')
    # lanes
    y0 = top + axis_h
    for n, lane in enumerate(order):
        y = y0 + n * lane_height
        if n % 2 == 0:
            out.append(f'<rect x="{label_width}" y="{y}" width="{plot_w}" height="{lane_height}" fill="#f3f5f7"/>')
        out.append(f'<text x="{label_width - 6}" y="{y + lane_height * 0.7:.1f}" text-anchor="end" fill="#222">'
                   f'{escape(lane)}</text>')
    # axis and grid
    step = _step(span, max(2, plot_w // 85))
    first = math.ceil(t0 / step) * step
    tick = first
    out.append(f'<line x1="{label_width}" y1="{y0}" x2="{label_width + plot_w}" y2="{y0}" stroke="#555"/>')
    while tick <= t1 + 1e-9:
        tx = x(tick)
        out.append(f'<line x1="{tx:.1f}" y1="{y0 - 4}" x2="{tx:.1f}" y2="{height - 6}" stroke="#c9d1d9" '
                   f'stroke-width="0.6"/>')
        out.append(f'<text x="{tx:.1f}" y="{y0 - 7}" text-anchor="middle" fill="#444" font-size="10">'
                   f'{escape(_tick_label(tick, step, span, t0))}</text>')
        tick += step
    # bars
    index = {lane: n for n, lane in enumerate(order)}
    for lane, text, start, end, status in sorted(items, key=lambda i: i[2]):
        if (end if end is not None else start) < t0 or start > t1:
            continue
        y = y0 + index[lane] * lane_height + 3
        bx = x(start)
        bw = max(min_bar_px, (x(end) - bx) if end is not None and end > start else 0.0)
        h = lane_height - 6
        dur = f" ({fmt_duration(end - start)})" if end is not None else ""
        tip = f"{text} — {lane}: {fmt_elapsed(start, seconds=True)}" + (
            f" → {fmt_elapsed(end, seconds=True)}" if end is not None else "") + f"{dur}, {status}"
        out.append(f'<rect x="{bx:.2f}" y="{y}" width="{bw:.2f}" height="{h}" rx="1.5" fill="{color(status)}">'
                   f'<title>{escape(tip)}</title></rect>')
        if bar_labels and bw > 6.2 * len(text) + 6:
            out.append(f'<text x="{bx + 3:.2f}" y="{y + h - 3.5:.1f}" fill="#fff" font-size="10">{escape(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def sessions(rows: Iterable[Sequence[Any]], gap_s: float = 3600.0) -> list[tuple[float, float, list[Row]]]:
    """Rows grouped into sessions: clusters separated by more than ``gap_s`` of no activity."""
    items = sorted(((str(r[0]), str(r[1]), float(r[2]), float(r[3]) if r[3] is not None else float(r[2]),
                     str(r[4])) for r in rows if r[2] is not None), key=lambda r: r[2])
    out: list[tuple[float, float, list[Row]]] = []
    for r in items:
        end = max(r[2], r[3])
        if out and r[2] - out[-1][1] <= gap_s:
            s, e, group = out[-1]
            group.append(r)
            out[-1] = (s, max(e, end), group)
        else:
            out.append((r[2], end, [r]))
    return out


def legend(statuses: Iterable[str]) -> str:
    """An HTML legend of status colours."""
    seen: list[str] = []
    for s in statuses:
        if s not in seen:
            seen.append(s)
    items = "".join(f'<span class="lg"><svg width="12" height="10"><rect width="12" height="10" rx="1.5" '
                    f'fill="{color(s)}"/></svg> {escape(s)}</span>' for s in seen)
    return f'<div class="legend">{items}</div>'


def gantt_figure(
    rows: Iterable[Sequence[Any]],
    *,
    lanes: Sequence[str] | None = None,
    gap_s: float = 3600.0,
    max_panels: int = 60,
    width: int = 1000,
    panel_width: int = 1000,
    panel_label_width: int = 80,
    title: str = "Schedule",
) -> str:
    """An HTML fragment: legend, overview of the whole span, and one panel per session.

    Args:
        rows: ``(lane, label, start_s, end_s, status)``.
        lanes: lane order (default: first appearance).
        gap_s: idle time that separates two sessions.
        max_panels: above this many sessions, sessions are merged per day.
        width, panel_width, panel_label_width: drawing sizes in px.

    Returns:
        ``<figure>`` elements with inline SVG; no scripts, no external resources.
    """
    rows = [tuple(r) for r in rows]
    drawn = [r for r in rows if r[2] is not None]
    order = list(lanes) if lanes is not None else []
    for r in drawn:
        if str(r[0]) not in order:
            order.append(str(r[0]))
    parts = [legend(str(r[4]) for r in drawn)]
    if not drawn:
        return parts[0] + '<p class="muted">No timed steps to draw.</p>'
    parts.append(f'<figure class="overview">{gantt_svg(drawn, lanes=order, width=width, title=f"{title}: overview")}'
                 f'<figcaption>Whole span; each bar is at least 2 px wide so that short steps stay visible. '
                 f'The session panels below zoom in.</figcaption></figure>')
    groups = sessions(drawn, gap_s)
    if len(groups) > max_panels:
        by_day: dict[int, list[Row]] = {}
        for _s, _e, g in groups:
            by_day.setdefault(int(g[0][2] // 86400), []).extend(g)
        groups = [(min(r[2] for r in g), max(r[2] if r[3] is None else r[3] for r in g), g)
                  for _d, g in sorted(by_day.items())]
    panels = []
    for s, e, g in groups:
        pad = max(60.0, (e - s) * 0.02)
        used = [lane for lane in order if any(str(r[0]) == lane for r in g)]
        name = f"{fmt_elapsed(s)} – {fmt_elapsed(e, day=int(e // 86400) != int(s // 86400))}"
        caption = f"{name} · {len(g)} step{'s' if len(g) != 1 else ''} · {fmt_duration(e - s)}"
        panels.append(f'<figure class="panel">{gantt_svg(g, t0=s - pad, t1=e + pad, lanes=used, width=panel_width, label_width=panel_label_width, title=caption)}'
                      f'</figure>')
    parts.append(f'<div class="panels">{"".join(panels)}</div>')
    return "".join(parts)


def rows_from_steps(steps: Iterable[Mapping[str, Any]], *, planned: bool = False) -> list[Row]:
    """Gantt rows from step records (``instrument``, ``key``, ``start``, ``end``, ``status``).

    With ``planned=True`` the bars are the planned starts (duration taken from the
    actual step where known), status ``planned``.
    """
    out: list[Row] = []
    for s in steps:
        if not s.get("instrument"):
            continue
        if planned:
            if s.get("planned_start") is None:
                continue
            dur = (s["end"] - s["start"]) if s.get("end") is not None and s.get("start") is not None else 0.0
            out.append((s["instrument"], s["key"], s["planned_start"], s["planned_start"] + dur, "planned"))
        elif s.get("start") is not None:
            out.append((s["instrument"], s["key"], s["start"], s.get("end"), s.get("status") or ""))
    return out
