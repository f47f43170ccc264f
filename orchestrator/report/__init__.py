"""Reports: batch records of runs (HTML + JSON) and Gantt charts (inline SVG)."""

from orchestrator.report.batch import RECORD_KEYS, SCHEMA, batch_record, render_html, write_batch_record
from orchestrator.report.gantt import gantt_figure, gantt_svg, rows_from_steps, sessions

__all__ = ["RECORD_KEYS", "SCHEMA", "batch_record", "gantt_figure", "gantt_svg", "render_html", "rows_from_steps",
           "sessions", "write_batch_record"]
