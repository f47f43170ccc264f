"""Batch record of one run: a self-contained HTML document and a JSON file.

Everything is read back from the store (the projection tables and the event journal), and
the store's audit trail is verified (:func:`orchestrator.store.audit.verify`) while the
record is made, so the record states whether the data it shows can be trusted.

The HTML has inline CSS and inline SVG only: no scripts, no fonts, images or style
sheets from elsewhere; it opens offline and prints (A4 landscape) with a title block and
a review/approval block. The JSON carries the same content for machines; the HTML names
the JSON file and its SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from orchestrator.report.batch_data import RECORD_KEYS, SCHEMA, batch_record
from orchestrator.report.batch_html import CSS, render_html
from orchestrator.store.sqlite import Store

__all__ = ["CSS", "RECORD_KEYS", "SCHEMA", "batch_record", "render_html", "write_batch_record"]


def write_batch_record(store: Store | str | os.PathLike[str], run_id: str,
                       out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``<run>-batch-record.html`` and ``<run>-batch-record.json`` into ``out_dir``.

    Args:
        store: an open :class:`Store` or a database file (opened read-only; never written).
        run_id: the run.
        out_dir: created if missing.

    Returns:
        ``(html_path, json_path)``.

    Raises:
        KeyError: no such run.
        StoreError: the database cannot be read.
    """
    record = batch_record(store, run_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{run_id}-batch-record.json"
    html_path = out / f"{run_id}-batch-record.html"
    text = json.dumps(record, indent=1, ensure_ascii=False, default=str) + "\n"
    json_path.write_text(text, encoding="utf-8")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    html_path.write_text(render_html(record, json_name=json_path.name, json_sha256=digest), encoding="utf-8")
    return html_path, json_path
