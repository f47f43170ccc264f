"""HTML rendering of a batch record (see :mod:`orchestrator.report.batch`).

The HTML has inline CSS and inline SVG only: no scripts, no fonts, images or style
sheets from elsewhere; it opens offline and prints (A4 landscape) with a title block and
a review/approval block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from orchestrator.report.gantt import fmt_duration, fmt_elapsed, gantt_figure, rows_from_steps

# -- rendering ------------------------------------------------------------------------

CSS = """
:root { --ink:#1b1f23; --muted:#5f6b76; --rule:#c9d1d9; --band:#f3f5f7; --ok:#2e7d32; --bad:#c62828; --warn:#b26a00; }
* { box-sizing: border-box; }
body { font: 13px/1.45 "Helvetica Neue", Helvetica, Arial, sans-serif; color: var(--ink); margin: 0; background: #e9ecef; }
main { max-width: 1100px; margin: 16px auto; background: #fff; padding: 28px 34px 40px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }
h1 { font-size: 22px; margin: 0 0 2px; letter-spacing: .2px; }
h2 { font-size: 15px; margin: 26px 0 8px; padding-bottom: 3px; border-bottom: 2px solid var(--ink); text-transform: uppercase; letter-spacing: .6px; }
h3 { font-size: 13px; margin: 14px 0 6px; }
.doc-head { display: flex; justify-content: space-between; align-items: flex-start; border-bottom: 3px double var(--ink); padding-bottom: 10px; }
.doc-id { text-align: right; font-size: 11px; color: var(--muted); }
.doc-id b { color: var(--ink); font-size: 13px; }
.subtitle { color: var(--muted); margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 10px; }
th, td { border: 1px solid var(--rule); padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; font-size: 11.5px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.t { white-space: nowrap; font-variant-numeric: tabular-nums; }
table.kv { width: auto; min-width: 60%; }
table.narrow { width: auto; min-width: 40%; }
table.kv th { width: 200px; }
table.dense td, table.dense th { font-size: 11px; padding: 2px 5px; }
code, .hash { font-family: "SFMono-Regular", Menlo, Consolas, monospace; font-size: 11px; }
.hash { word-break: break-all; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 11px; font-weight: 600; color: #fff; background: #546e7a; white-space: nowrap; }
.b-done, .b-completed, .b-pass, .b-ok { background: var(--ok); }
.b-failed, .b-fail, .b-bad, .b-aborted { background: var(--bad); }
.b-skipped, .b-none { background: #8a8a8a; }
.b-running, .b-hold, .b-warn, .b-recovering, .b-retrying, .b-awaiting_operator { background: var(--warn); }
.cards { display: grid; grid-template-columns: repeat(7, 1fr); gap: 8px; margin: 14px 0 4px; }
.card { border: 1px solid var(--rule); padding: 6px 8px; }
.card .v { font-size: 18px; font-weight: 700; }
.card .l { font-size: 11px; color: var(--muted); }
.muted { color: var(--muted); }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 6px 10px; margin: 6px 0; }
.alert { background: #fdecea; border-left: 4px solid var(--bad); padding: 6px 10px; margin: 6px 0; }
.okbox { background: #e8f5e9; border-left: 4px solid var(--ok); padding: 6px 10px; margin: 6px 0; }
tr.transport td { color: var(--muted); }
tr.fail td { background: #fdecea; }
.mv { white-space: nowrap; }
.legend { font-size: 11px; margin: 4px 0; }
.legend .lg { margin-right: 12px; white-space: nowrap; }
figure { margin: 6px 0 10px; }
figcaption { font-size: 11px; color: var(--muted); }
svg.gantt { max-width: 100%; height: auto; display: block; }
.panels { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 18px; }
.sign td { height: 34px; }
footer { margin-top: 24px; border-top: 1px solid var(--rule); padding-top: 6px; font-size: 11px; color: var(--muted); }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { background: #fff; font-size: 10.5px; }
  main { box-shadow: none; margin: 0; padding: 0; max-width: none; }
  h2 { break-after: avoid; }
  tr, figure, .card, .sign { break-inside: avoid; }
  thead { display: table-header-group; }
  .panels { grid-template-columns: 1fr 1fr; }
  a { color: inherit; text-decoration: none; }
}
"""


def _e(v: Any) -> str:
    """Escaped text; ``://`` is written as ``&#58;//`` so that no recorded string (a protocol
    source given as a URL, say) reads as a URL in the raw HTML (it renders the same)."""
    if v is None:
        return ""
    if isinstance(v, float):
        return escape(f"{v:.6g}")
    return escape(str(v)).replace("://", "&#58;//")


def _badge(text: Any, cls: str | None = None) -> str:
    t = str(text)
    return f'<span class="badge b-{escape(cls or t, quote=True)}">{_e(t)}</span>'


def _t(t: float | None) -> str:
    return "" if t is None else _e(fmt_elapsed(t, seconds=True))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "", row_cls: Sequence[str] | None = None,
           num: Sequence[int] = (), times: Sequence[int] = ()) -> str:
    def cell(i: int) -> str:
        return ' class="num"' if i in num else (' class="t"' if i in times else "")

    ths = "".join(f"<th{cell(i)}>{_e(h)}</th>" for i, h in enumerate(head))
    body = []
    for n, r in enumerate(rows):
        rc = f' class="{escape(row_cls[n], quote=True)}"' if row_cls and row_cls[n] else ""
        tds = "".join(f"<td{cell(i)}>{c}</td>" for i, c in enumerate(r))
        body.append(f"<tr{rc}>{tds}</tr>")
    return f'<table class="{cls}"><thead><tr>{ths}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _kv(pairs: Sequence[tuple[str, str]]) -> str:
    return '<table class="kv"><tbody>' + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in pairs) + \
        "</tbody></table>"


def _args(a: Any) -> str:
    if isinstance(a, Mapping):
        return ", ".join(f"{_e(k)}={_e(v)}" for k, v in a.items())
    return _e(a)


def _unit(u: Any) -> str:
    return _e(u) if u else '<span class="muted">—</span>'


def render_html(record: Mapping[str, Any], *, json_name: str | None = None, json_sha256: str | None = None) -> str:
    """The batch record as one self-contained HTML document (inline CSS and SVG only)."""
    run, proto, summ, audit = record["run"], record["protocol"], record["summary"], record["audit"]
    rid = run["run_id"]
    head_short = str(audit["head"])[:12]
    doc_id = f"BR-{rid}-{head_short}"
    status = run["status"]
    if summ["qc_passed"] + summ["qc_failed"] == 0:
        qc_state = "none"
    else:
        qc_state = "pass" if summ["qc_failed"] == 0 else ("fail" if status == "failed" else "hold")
    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>")
    w('<html lang="en"><head><meta charset="utf-8">')
    w('<meta name="viewport" content="width=device-width, initial-scale=1">')
    w(f"<title>Batch record {_e(rid)} — {_e(proto['name'])} {_e(proto['version'])}</title>")
    w(f"<style>{CSS}</style></head><body><main>")

    # title block
    w('<div class="doc-head"><div>')
    w(f"<h1>Batch record — {_e(proto['name'])} <span class=\"muted\">v{_e(proto['version'])}</span></h1>")
    w(f'<p class="subtitle">Run <b>{_e(rid)}</b> on workcell <b>{_e(record["workcell"]["name"])}</b> · '
      f'{_badge(status)} · QC {_badge(qc_state)} · audit trail '
      f'{_badge("verified", "ok") if audit["ok"] else _badge("FAILED", "bad")}</p></div>')
    w(f'<div class="doc-id">Document <b>{_e(doc_id)}</b><br>generated {_e(record["generated"])}<br>'
      f'{_e(record["generator"])}</div></div>')

    cards = [(summ["protocol_steps_done"], "protocol steps done"), (summ["steps_failed"], "steps failed"),
             (summ["steps_skipped"], "steps skipped"), (summ["transport_moves"], "plate moves"),
             (summ["measurements"], "measurements"),
             (f"{summ['qc_passed']}/{summ['qc_passed'] + summ['qc_failed']}", "QC criteria met"),
             (summ["deviations"], "deviations")]
    w('<div class="cards">' + "".join(f'<div class="card"><div class="v">{_e(v)}</div><div class="l">{_e(l)}</div>'
                                      f"</div>" for v, l in cards) + "</div>")
    if not audit["ok"]:
        w(f'<div class="alert"><b>The audit trail failed verification</b> — the data below may have been altered. '
          f'First problem: {_e(audit["first_problem"]["message"] if audit["first_problem"] else "")}</div>')
    if status == "failed" and run.get("detail"):
        w(f'<div class="alert"><b>Run failed:</b> {_e(run["detail"])}</div>')

    # 1 run and protocol
    w('<h2 id="s1">1. Run and protocol</h2>')
    clock = run.get("clock") or ""
    w(_kv([
        ("Protocol", f"{_e(proto['name'])} version {_e(proto['version'])}"),
        ("Protocol content SHA-256", f'<span class="hash">{_e(proto["content_hash"])}</span>'),
        ("Protocol source", f"<code>{_e(proto['source'])}</code>"),
        ("Run", f"{_e(rid)}" + (f" (campaign {_e(run['campaign'])})" if run.get("campaign") else "")),
        ("Status", _badge(status) + (f" — {_e(run['detail'])}" if run.get("detail") else "")),
        ("Clock", _e(clock) + (" — simulated time: instruments were simulators" if clock == "virtual" else "")),
        ("Time origin (T = D0 00:00)", _e(run.get("origin"))),
        ("Started / ended", f"{_t(run.get('sim_start'))} / {_t(run.get('sim_end'))}"
                            + (f" ({_e(fmt_duration(summ['elapsed_s']))})" if summ.get("elapsed_s") else "")),
        ("Created (wall clock)", _e(run.get("created_wall"))),
        ("Simulator seed", _e(run.get("seed"))),
        ("Operators", "; ".join(f"{_e(o['name'])} ({_e(o['role'])})" for o in record["operators"])),
        ("Database", (f"<code>{_e(run.get('database') or '(in memory)')}</code>, events seq {_e(run['first_seq'])}–"
                      f"{_e(run['last_seq'])} ({_e(run['events'])} events of this run)")),
    ]))
    w("<h3>Parameters</h3>")
    params = record["parameters"] or {}
    w(_table(["Parameter", "Value"], [[_e(k), _e(v)] for k, v in params.items()], cls="narrow") if params else
      '<p class="muted">No parameters.</p>')

    # 2 workcell
    wc = record["workcell"]
    w('<h2 id="s2">2. Workcell and instruments</h2>')
    w(f"<p>Workcell <b>{_e(wc['name'])}</b>" + (f" from <code>{_e(wc['source'])}</code>" if wc.get("source") else "")
      + ".</p>")
    if not wc["identity_recorded"]:
        w('<div class="note">No <code>instrument.identity</code> events are in the journal for this run: vendor, '
          'model, serial number and firmware were not recorded. The instruments below are those the steps used; '
          'their class is inferred from the actions.</div>')
    w(_table(["Instrument", "Class", "Driver", "Mode", "Vendor", "Model", "Serial", "Firmware", "Steps", "Actions"],
             [[f"<b>{_e(i['name'])}</b>", _e(i["class"]), f"<code>{_e(i['driver'])}</code>" if i["driver"] else "",
               _e(i["mode"]), _e(i["vendor"]), _e(i["model"]), f"<code>{_e(i['serial'])}</code>" if i["serial"] else "",
               _e(i["firmware"]), _e(i["steps"]), _e(", ".join(i["actions"]))] for i in wc["instruments"]],
             cls="dense", num=[8]))

    # 3 schedule
    w('<h2 id="s3">3. Schedule (executed)</h2>')
    lanes = [i["name"] for i in wc["instruments"] if i["steps"]]
    w(f"<p class=\"muted\">Times are elapsed from the time origin ({_e(run.get('origin'))}): "
      f"<b>D3 06:15</b> is day 3, 6 h 15 min after the origin. One lane per instrument; bars coloured by the step's "
      f"final status.</p>")
    w(gantt_figure(rows_from_steps(record["steps"]), lanes=lanes, title=f"Run {rid}", panel_width=500))

    # 4 steps
    w('<h2 id="s4">4. Steps — planned and actual</h2>')
    rows, cls = [], []
    for n, s in enumerate(record["steps"], 1):
        st = _badge(s["status"])
        if s.get("error"):
            st += f'<br><span class="muted">{_e(s["error"])}</span>'
        delay = s.get("delay_s")
        rows.append([
            _e(n), f"<code>{_e(s['key'])}</code>", _e(s.get("kind")),
            f"{_e(s.get('instrument'))}" + (f" · {_e(s.get('action'))}" if s.get("action") else ""),
            _args(s.get("args")), _t(s.get("planned_start")), _t(s.get("start")), _t(s.get("end")),
            escape(fmt_duration(s.get("duration_s"))), escape(("+" if delay and delay > 0 else "") + fmt_duration(delay))
            if delay is not None else "", _e(s.get("attempt") or ""), st])
        cls.append("fail" if s["status"] == "failed" else ("transport" if s.get("kind") == "transport" else ""))
    w('<p class="muted">Planned = earliest allowed start the executor computed; Δ plan = actual start − planned start. '
      'Plate-mover transfers and incubator moves (grey) are inserted by the engine.</p>')
    w(_table(["#", "Step", "Kind", "Instrument · action", "Arguments", "Planned", "Start", "End", "Duration", "Δ plan",
              "Att.", "Status"], rows, cls="dense", row_cls=cls, num=[0, 8, 9, 10], times=[5, 6, 7]))

    # 5 measurements
    w('<h2 id="s5">5. Measurements</h2>')
    mrows = []
    for m in record["measurements"]:
        vals = " · ".join(f'<span class="mv">{_e(v["field"])} <b>{_e(v["value"])}</b>'
                          f'{" " + _e(v["unit"]) if v["unit"] else ""}</span>' for v in m["values"])
        mrows.append([f"<code>{_e(m['step'])}</code>", _e(m["name"]), _t(m["sim_time"]), vals])
    w(_table(["Step", "Measurement", "Time", "Values (unit; none = dimensionless)"], mrows, cls="dense", times=[2])
      if mrows else '<p class="muted">No measurements.</p>')
    w('<p class="muted">Values without a unit are dimensionless (fractions such as confluence and viability are '
      '0…1).</p>')

    # 6 QC
    w('<h2 id="s6">6. QC verdicts</h2>')
    if record["qc"]:
        w(_table(["Step", "Criterion", "Measured", "Unit", "Time", "Verdict"],
                 [[f"<code>{_e(q['step'])}</code>", f"<code>{_e(q['criterion'])}</code>", _e(q["value"]),
                   _unit(q["unit"]), _t(q["sim_time"]), _badge("PASS", "pass") if q["passed"] else _badge("FAIL", "fail")]
                  for q in record["qc"]], num=[2]))
    else:
        w('<p class="muted">The protocol has no acceptance criteria.</p>')

    # 7 deviations
    w('<h2 id="s7">7. Deviations and interventions</h2>')
    if record["deviations"]:
        kinds = ", ".join(f"{_e(k)} × {v}" for k, v in summ["deviations_by_kind"].items())
        w(f"<p>{len(record['deviations'])} deviation(s): {kinds}.</p>")
        w(_table(["#", "Time", "Step", "Kind", "Detail"],
                 [[_e(d["id"]), _t(d["sim_time"]), f"<code>{_e(d['step'])}</code>", _badge(d["kind"], "warn"),
                   _e(d["detail"])] for d in record["deviations"]], cls="dense", num=[0]))
    elif not record["step_failures"]:
        w('<div class="okbox">No deviations were recorded (no missed windows, retries, rejected QC or in-doubt '
          'steps).</div>')
    else:
        w('<p>No deviations were recorded in the deviation log; see the step failures below.</p>')
    if record["step_failures"]:
        w("<h3>Step failures</h3>")
        w(_table(["Event", "Time", "Step", "Instrument · action", "Error", "Final status"],
                 [[_e(f["seq"]), _t(f["sim_time"]), f"<code>{_e(f['step'])}</code>",
                   f"{_e(f['instrument'])} · {_e(f['action'])}", _e(f["error"]), _badge(f["final_status"])]
                  for f in record["step_failures"]], cls="dense", num=[0], times=[1]))
    if record["interventions"]:
        w("<h3>Operator interventions</h3>")
        w(_table(["Event", "Time", "Recorded (UTC)", "Operator", "Kind", "Subject", "Detail"],
                 [[_e(i["seq"]), _t(i["sim_time"]), _e((i["wall_time"] or "")[:19].replace("T", " ")),
                   _e(i["operator"] or "—"), _e(i["kind"]), f"<code>{_e(i['subject'])}</code>", _args(i["payload"])]
                  for i in record["interventions"]], cls="dense", num=[0], times=[1, 2]))
    else:
        w('<p class="muted">No operator interventions.</p>')
    if record["instrument_events"]:
        w("<h3>Instrument incidents</h3>")
        w(_table(["Event", "Time", "Instrument", "Detail"],
                 [[_e(i["seq"]), _t(i["sim_time"]), _e(i["instrument"]), _args(i["payload"])]
                  for i in record["instrument_events"]], cls="dense", num=[0]))

    # 8 audit
    w('<h2 id="s8">8. Audit trail</h2>')
    if audit["ok"]:
        w(f'<div class="okbox"><b>Verified.</b> All {_e(audit["events"])} events of the database recompute to their '
          f'SHA-256 hashes, every record links to its predecessor, the chain ends at the recorded head and the '
          f'projection tables match a replay of the events.</div>')
    else:
        w(f'<div class="alert"><b>Verification failed</b> — {len(audit["problems"])} problem(s).</div>')
        w(_table(["Seq", "Kind", "Problem"], [[_e(p["seq"]), _badge(p["kind"], "bad"), _e(p["message"])]
                                              for p in audit["problems"]], cls="dense"))
    w(_kv([
        ("Chain head (newest event)", f'seq {_e(audit["head_seq"])} · <span class="hash">{_e(audit["head"])}</span>'),
        ("This run's last event", f'seq {_e(run["last_seq"])} · <span class="hash">{_e(audit.get("run_last_hash"))}</span>'),
        ("Events verified", _e(audit["events"])),
    ]))
    for note in audit.get("notes", []):
        w(f'<p class="muted">Note: {_e(note)}</p>')
    w('<p class="muted">Keep the chain-head hash outside this database (e.g. in the lab notebook or QMS); '
      '<code>cellwright audit verify --expect-head SEQ:HASH</code> then also detects a consistent rewrite of the '
      'whole chain.</p>')

    # 9 sign-off
    w('<h2 id="s9">9. Review and approval</h2>')
    w('<table class="sign"><thead><tr><th style="width:18%">Role</th><th style="width:27%">Name</th>'
      '<th style="width:35%">Signature</th><th>Date</th></tr></thead><tbody>')
    for role in ("Performed by", "Reviewed by (QC)", "Approved by (QA)"):
        who = _e(record["operators"][0]["name"]) if role == "Performed by" else ""
        w(f"<tr><td>{role}</td><td>{who}</td><td></td><td></td></tr>")
    w("</tbody></table>")
    foot = f"Document {_e(doc_id)} · {_e(record['generator'])} · schema {_e(record['schema'])}"
    if json_name:
        foot += f" · machine-readable record <code>{_e(json_name)}</code>"
        if json_sha256:
            foot += f' (SHA-256 <span class="hash">{_e(json_sha256)}</span>)'
    w(f"<footer>{foot}</footer>")
    w("</main></body></html>")
    return "\n".join(out)
