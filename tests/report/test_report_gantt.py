"""Gantt charts: valid SVG from plain rows, escaped text, overview plus session panels for long runs."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from orchestrator.report.gantt import (
    color,
    fmt_duration,
    fmt_elapsed,
    gantt_figure,
    gantt_svg,
    rows_from_steps,
    sessions,
)

SVG = "{http://www.w3.org/2000/svg}"


def _rows() -> list[tuple[str, str, float, float | None, str]]:
    return [("lh1", "seed", 50.0, 350.0, "done"), ("imager", "day[0].image", 370.0, 610.0, "done"),
            ("lh1", "day[0].feed", 630.0, 930.0, "failed"), ("arm", "move <&>", 930.0, None, "running"),
            ("counter", "never", None, None, "pending")]


def test_svg_is_well_formed_and_has_a_bar_per_timed_row() -> None:
    svg = gantt_svg(_rows(), title='Plan "A" <draft>', standalone=True)
    root = ET.fromstring(svg)
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 4  # the row without a start is not drawn
    tips = [b.find(f"{SVG}title").text for b in bars]
    assert any("move <&>" in t for t in tips)  # escaped in the source, intact once parsed
    assert {b.get("fill") for b in bars} == {color("done"), color("failed"), color("running")}
    assert all(float(b.get("width")) >= 2.0 for b in bars)
    lanes = [t.text for t in root.iter(f"{SVG}text")]
    assert lanes.index("lh1") < lanes.index("imager") < lanes.index("arm")
    assert 'Plan "A" <draft>' in lanes


def test_inline_svg_has_no_namespace_url_and_honours_lane_order() -> None:
    svg = gantt_svg(_rows(), lanes=["arm", "lh1", "imager", "reader"])
    assert not re.search(r"https?://", svg)
    texts = re.findall(r">([a-z0-9]+)</text>", svg)
    assert texts[:4] == ["arm", "lh1", "imager", "reader"]


def test_empty_and_degenerate_inputs() -> None:
    assert gantt_svg([]).startswith("<svg") and gantt_svg([]).endswith("</svg>")
    ET.fromstring(gantt_svg([("a", "x", 5.0, 5.0, "done")], standalone=True))
    assert "No timed steps" in gantt_figure([])


def test_time_formats() -> None:
    assert fmt_elapsed(3 * 86400 + 6 * 3600 + 15 * 60) == "D3 06:15"
    assert fmt_elapsed(75, seconds=True) == "D0 00:01:15"
    assert fmt_duration(45) == "45 s" and fmt_duration(300) == "5 min" and fmt_duration(7500) == "2 h 05 min"
    assert fmt_duration(3 * 86400 + 4 * 3600) == "3 d 04 h" and fmt_duration(None) == ""


def _two_weeks() -> list[tuple[str, str, float, float, str]]:
    """One session a day, shaped like the iPSC protocol: fetch, move, image, move, feed, move, store."""
    pattern = [("incubator", 30), ("arm", 20), ("imager", 240), ("arm", 20), ("lh1", 300), ("arm", 20),
               ("incubator", 30)]
    rows = []
    for day in range(14):
        t = day * 86400.0 + 600
        for n, (lane, dur) in enumerate(pattern * 2):
            rows.append((lane, f"d{day}.s{n}", t, t + dur, "skipped" if n == 5 else "done"))
            t += dur + 10
    return rows


def test_sessions_split_on_idle_gaps() -> None:
    groups = sessions(_two_weeks(), gap_s=3600)
    assert len(groups) == 14
    assert all(len(g) == 14 for _s, _e, g in groups)
    assert groups[1][0] == 86400.0 + 600


def test_figure_for_a_long_run_has_overview_and_readable_panels() -> None:
    rows = _two_weeks()
    html = gantt_figure(rows)
    assert html.count("<svg") == 1 + 14 + 2  # overview, 14 panels, 2 legend swatches
    assert 'class="overview"' in html and html.count('class="panel"') == 14
    # in the panels, bars are wide enough to carry labels
    assert ">d3.s4</text>" in html
    merged = gantt_figure(rows, gap_s=60, max_panels=20)  # every step its own session: merged per day
    assert merged.count('class="panel"') == 14


def test_rows_from_steps() -> None:
    steps = [{"key": "a", "instrument": "lh1", "start": 10.0, "end": 20.0, "status": "done", "planned_start": 5.0},
             {"key": "b", "instrument": None, "start": None, "end": None, "status": "skipped"},
             {"key": "c", "instrument": "arm", "start": 30.0, "end": None, "status": "running", "planned_start": None}]
    assert rows_from_steps(steps) == [("lh1", "a", 10.0, 20.0, "done"), ("arm", "c", 30.0, None, "running")]
    assert rows_from_steps(steps, planned=True) == [("lh1", "a", 5.0, 15.0, "planned")]
