"""Batch records: self-contained HTML (no external loads, well-formed, escaped) and JSON with the expected keys."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest

from orchestrator.report import RECORD_KEYS, SCHEMA, batch_record, write_batch_record
from orchestrator.runner import run_protocol
from orchestrator.store import Journal, Store
from orchestrator.store.audit import verify

ROOT = Path(__file__).resolve().parents[2]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Checker(HTMLParser):
    """Tag balance (SVG included) and a list of everything that could load something."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.loads: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "action") or (value and "url(" in value):
                self.loads.append(f"{tag} {name}={value}")
        if tag in ("script", "iframe", "object", "embed", "link", "img"):
            self.loads.append(tag)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href", "xlink:href"):
                self.loads.append(f"{tag} {name}={value}")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check_html(text: str) -> _Checker:
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert checker.errors == [], checker.errors[:5]
    assert checker.stack == [], checker.stack
    assert checker.loads == [], checker.loads
    assert not re.search(r"https?://", text), "external URL in the HTML"
    assert "@import" not in text and "<script" not in text.lower()
    return checker


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("report") / "run.db"
    result = run_protocol(ROOT / "protocols" / "ipsc-maintenance.yaml", overrides={"days": "3"}, db=path,
                          operator="alice")
    return path, result.run_id


def test_batch_record_files(run_db: tuple[Path, str], tmp_path: Path) -> None:
    path, run_id = run_db
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns)
    html_path, json_path = write_batch_record(path, run_id, tmp_path / "out")
    assert before == (hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns)
    assert html_path.exists() and json_path.exists()
    text = html_path.read_text(encoding="utf-8")
    _check_html(text)

    head = verify(path).head
    assert run_id in text and head in text
    conn = sqlite3.connect(path)
    keys = [k for (k,) in conn.execute("SELECT key FROM steps WHERE run_id = ? ORDER BY seq", (run_id,))]
    assert len(keys) > 20
    for key in keys:
        assert key in text, key
    content_hash = conn.execute("SELECT content_hash FROM runs").fetchone()[0]
    assert content_hash in text
    assert "<svg" in text and "Review and approval" in text and "@media print" in text
    # the HTML names the JSON file and its hash
    assert json_path.name in text and hashlib.sha256(json_path.read_bytes()).hexdigest() in text

    record = json.loads(json_path.read_text(encoding="utf-8"))
    assert tuple(record) == RECORD_KEYS and record["schema"] == SCHEMA
    assert [s["key"] for s in record["steps"]] == keys
    assert record["audit"]["ok"] is True and record["audit"]["head"] == head
    assert record["protocol"]["name"] == "ipsc-maintenance" and record["protocol"]["content_hash"] == content_hash
    assert record["parameters"]["days"] == 3
    assert record["operators"][0] == {"name": "alice", "role": "started the run"}
    assert record["workcell"]["identity_recorded"] is True
    assert all(i["serial"] for i in record["workcell"]["instruments"])
    assert {"planned_start", "start", "end", "duration_s", "status", "attempt", "instrument", "action", "args"} <= \
        set(record["steps"][0])
    assert record["measurements"] and all(v["unit"] is not None for m in record["measurements"] for v in m["values"])
    assert json.loads(json.dumps(record)) == record


def test_report_on_a_tampered_database_says_so(run_db: tuple[Path, str], tmp_path: Path) -> None:
    path, run_id = run_db
    copy = tmp_path / "t.db"
    shutil.copyfile(path, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE measurements SET value = 0.99 WHERE id = 1")
    html_path, json_path = write_batch_record(copy, run_id, tmp_path)
    record = json.loads(json_path.read_text())
    assert record["audit"]["ok"] is False
    assert record["audit"]["first_problem"]["kind"] == "projection-mismatch"
    assert "failed verification" in html_path.read_text()


def test_unknown_run(run_db: tuple[Path, str], tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        write_batch_record(run_db[0], "R9999", tmp_path)


def _synthetic(path: Path) -> str:
    """A run written through the Journal, with hostile text, no identity notes and operator actions."""
    store = Store(path)
    j = Journal(store)
    evil = '<script>alert("x")</script> & <b>'
    j.run_created({"run_id": "R0001", "protocol": "p<i>", "version": "1.0.0", "content_hash": "ab" * 32,
                   "source": "http://example.invalid/p.yaml", "parameters": {"note": evil}, "workcell": "w&w",
                   "seed": 0, "clock": "virtual", "created_wall": "2026-01-01T00:00:00+00:00",
                   "origin": "2026-01-05T08:00:00+00:00", "campaign": None}, actor="bob")
    j.run_transition("R0001", "created", "running", 0.0)
    for n in range(3):
        key = f"day[{n}].{evil}" if n == 1 else f"day[{n}].feed"
        t = n * 86400.0
        j.step_transition("R0001", key, "pending", "ready", t, fields={"instrument": "lh<1>", "action": "exchange_medium",
                                                                       "args": {"plate": evil}, "planned_start": t})
        j.step_transition("R0001", key, "ready", "running", t + 10, fields={"attempt": 1, "start": t + 10})
        if n == 2:
            j.step_transition("R0001", key, "running", "failed", t + 40, fields={"error": f"E12 {evil}", "end": t + 40})
            j.step_transition("R0001", key, "failed", "recovering", t + 40)
            j.step_transition("R0001", key, "recovering", "awaiting_operator", t + 40, reason="ask")
            store.append("operator.confirm.done", {"reason": evil, "step": key}, actor="carol", run_id="R0001",
                         subject=key)
            j.note("operator.decision", {"step": key, "choice": "done", "reason": evil}, run_id="R0001", subject=key,
                   sim_time=t + 100, actor="carol")
            j.step_transition("R0001", key, "awaiting_operator", "done", t + 100, reason="operator carol")
        else:
            j.step_transition("R0001", key, "running", "done", t + 310, fields={"end": t + 310})
        j.measurement("R0001", key, f"m{evil}", {"viability": (0.95, ""), "count": (1e5, "cells/mL")}, t + 310)
        j.verdict("R0001", key, "viability >= 0.9", 0.95, True, t + 310)
    j.deviation("R0001", "day[2].feed", "window-missed", f"late {evil}", 2 * 86400.0)
    j.run_transition("R0001", "running", "completed", 3 * 86400.0, reason=evil)
    store.close()
    return evil


def test_escaping_and_missing_identity(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    evil = _synthetic(path)
    html_path, json_path = write_batch_record(path, "R0001", tmp_path / "out")
    text = html_path.read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text
    _check_html(text)  # the protocol "source" is a URL: shown as text, never a reference
    record = json.loads(json_path.read_text())
    assert record["protocol"]["source"] == "http://example.invalid/p.yaml"
    assert record["workcell"]["identity_recorded"] is False
    assert "No <code>instrument.identity</code> events" in text
    assert record["steps"][1]["key"] == f"day[1].{evil}"
    assert [i["kind"] for i in record["interventions"]] == ["step.awaiting_operator", "operator.confirm.done",
                                                            "operator.decision"]
    assert record["step_failures"][0]["step"] == "day[2].feed"
    assert {o["name"] for o in record["operators"]} == {"bob", "carol"}
    assert record["deviations"][0]["kind"] == "window-missed"
    assert record["qc"][0]["passed"] is True


def test_no_external_references_even_with_url_like_data(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _synthetic(path)
    html_path, _ = write_batch_record(path, "R0001", tmp_path)
    text = html_path.read_text()
    # the protocol source is recorded verbatim in the JSON, but the HTML never makes a URL of it
    checker = _HTMLNoUrl()
    checker.feed(text)
    assert checker.loads == []


class _HTMLNoUrl(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.loads += [f"{tag}.{n}" for n, v in attrs if n in ("src", "href", "xlink:href") and v]


def test_store_instance_and_record_dict(run_db: tuple[Path, str], tmp_path: Path) -> None:
    path, run_id = run_db
    copy = tmp_path / "c.db"
    shutil.copyfile(path, copy)
    store = Store(copy)
    try:
        record = batch_record(store, run_id)
    finally:
        store.close()
    assert record["run"]["run_id"] == run_id and record["audit"]["ok"]
    assert record["summary"]["steps"] == len(record["steps"])
