"""One self-contained HTML file describing a run: statistics, histograms, categories, the filter
funnel and a searchable table of every judged sample with its reason.

No network: CSS, SVG and JavaScript are inline, and a Content-Security-Policy allows only the
page's own style and script (by hash), so nothing is fetched and no injected script could run.
Sample text is untrusted (Reddit posts, model output): every value goes through ``html.escape``
and the script only reads ``textContent``. Rows are streamed from the run store into the file,
so the dataset is never held in memory.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from synthtune.core.errors import ConfigError, SynthtuneError
from synthtune.core.review import REJECTED_REASON
from synthtune.core.stats import REVIEW_FILTER, histogram, run_statistics
from synthtune.core.store import SAMPLE_GENERATION, SAMPLE_TEXT, RunStore

BINS = 20
CHART_ORDER = ("output_chars", "output_tokens", "input_chars", "input_tokens")
LABELS = {
    "output_chars": "Output length (characters)",
    "output_tokens": "Output length (tokens)",
    "input_chars": "Input length (characters)",
    "input_tokens": "Input length (tokens)",
}

CSS = """
:root { --kept: #2f7d4f; --dropped: #c8553d; --rejected: #8a4fbf; --failed: #9a9a9a;
  --ink: #1d2330; --muted: #667085; --line: #e3e6ec; --bg: #f7f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--ink); background: var(--bg); }
header { padding: 18px 28px; background: #1d2330; color: #fff; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header p { margin: 0; color: #c9cfdb; }
main { padding: 20px 28px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 16px 18px; margin-bottom: 18px; }
h2 { font-size: 16px; margin: 0 0 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.card b { display: block; font-size: 20px; }
.card span { color: var(--muted); font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 18px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
svg text { font-size: 11px; fill: var(--muted); }
.bar { fill: #f0b9ab; } .bar-kept { fill: var(--kept); }
.seg-kept { fill: var(--kept); } .seg-dropped { fill: var(--dropped); } .seg-failed { fill: var(--failed); }
.funnel { fill: #4a6fa5; }
.legend span { display: inline-block; margin-right: 14px; color: var(--muted); font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
.legend .k { background: var(--kept); } .legend .d { background: #f0b9ab; }
.legend .dd { background: var(--dropped); } .legend .f { background: var(--failed); }
.controls { display: flex; gap: 10px; align-items: center; margin-bottom: 10px; }
#search { flex: 1; padding: 7px 10px; border: 1px solid #c5cad3; border-radius: 6px; font-size: 14px; }
select { padding: 6px; border-radius: 6px; border: 1px solid #c5cad3; }
#samples th { cursor: pointer; position: sticky; top: 0; background: #fff; }
.status { font-size: 12px; font-weight: 600; border-radius: 10px; padding: 1px 8px; color: #fff; }
.status.kept { background: var(--kept); } .status.dropped { background: var(--dropped); }
.status.rejected { background: var(--rejected); }
.text { white-space: pre-wrap; max-height: 9em; overflow: auto; font-size: 13px; min-width: 360px; }
.input { white-space: pre-wrap; max-height: 9em; overflow: auto; font-size: 12px; color: var(--muted); }
.reason { max-width: 200px; }
#table { overflow-x: auto; }
.input { max-width: 200px; word-break: break-word; }
td { overflow-wrap: anywhere; }
td.num, .status { white-space: nowrap; overflow-wrap: normal; }
td.record { min-width: 170px; }
"""

SCRIPT = """
(function () {
  var search = document.getElementById('search');
  var status = document.getElementById('status');
  var shown = document.getElementById('shown');
  var body = document.querySelector('#samples tbody');
  var rows = Array.prototype.slice.call(body.rows);
  function apply() {
    var needle = search.value.trim().toLowerCase();
    var wanted = status.value;
    var n = 0;
    rows.forEach(function (row) {
      var ok = (wanted === 'all' || row.getAttribute('data-status') === wanted) &&
        (!needle || row.textContent.toLowerCase().indexOf(needle) !== -1);
      row.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n + ' of ' + rows.length + ' samples';
  }
  search.addEventListener('input', apply);
  status.addEventListener('change', apply);
  document.querySelectorAll('#samples th').forEach(function (th, column) {
    th.addEventListener('click', function () {
      var numeric = th.classList.contains('num');
      var down = th.getAttribute('data-sort') !== 'desc';
      th.setAttribute('data-sort', down ? 'desc' : 'asc');
      rows.sort(function (a, b) {
        var x = a.cells[column].textContent, y = b.cells[column].textContent;
        var cmp = numeric ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
        return down ? -cmp : cmp;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  apply();
})();
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _bars_svg(
    svg_attrs: str,
    aria_label: str,
    counts: list[int],
    kept: list[int],
    bin_label: Callable[[int], str],
    ends: tuple[str, str],
    width: int,
    height: int,
    *,
    zero_label: bool,
) -> str:
    """One ``rect.bar`` per bin (all samples) with ``rect.bar-kept`` (the kept share) over it,
    ``bin_label(i)`` as each bin's tooltip and ``ends`` under the first and last bin."""
    left, bottom, top_pad = 40, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    top = max(counts) or 1
    bar_w = plot_w / len(counts)
    parts = [
        f'<svg {svg_attrs} viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" aria-label="{_e(aria_label)}">',
        f'<text x="{left - 4}" y="{top_pad + 10}" text-anchor="end">{top}</text>',
    ]
    if zero_label:
        parts.append(f'<text x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end">0</text>')
    for i, (n, k) in enumerate(zip(counts, kept, strict=True)):
        x = left + i * bar_w
        h_all, h_kept = plot_h * n / top, plot_h * k / top
        parts.append(
            f"<g><title>{_e(bin_label(i))}</title>"
            f'<rect class="bar" data-count="{n}" x="{x + 1:.1f}" y="{top_pad + plot_h - h_all:.1f}"'
            f' width="{max(bar_w - 2, 1):.1f}" height="{h_all:.1f}"/>'
            f'<rect class="bar-kept" data-count="{k}" x="{x + 1:.1f}" y="{top_pad + plot_h - h_kept:.1f}"'
            f' width="{max(bar_w - 2, 1):.1f}" height="{h_kept:.1f}"/></g>'
        )
    parts.append(f'<text x="{left}" y="{height - 6}">{ends[0]}</text>')
    parts.append(f'<text x="{width - 8}" y="{height - 6}" text-anchor="end">{ends[1]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(hist: dict[str, Any] | None, metric: str, width: int = 560, height: int = 190) -> str:
    """An SVG histogram: one ``rect.bar`` per bin (all samples) with the kept share drawn over it."""
    if not hist:
        return f'<p class="empty">No samples measured for {_e(metric)}.</p>'
    counts, kept, edges = hist["counts"], hist["kept"], hist["edges"]
    return _bars_svg(
        f'class="hist" data-metric="{_e(metric)}" data-bins="{len(counts)}"',
        LABELS.get(metric, metric),
        counts,
        kept,
        lambda i: f"{edges[i]:,}–{edges[i + 1] - 1:,}: {counts[i]} sample(s), {kept[i]} kept",
        (f"{edges[0]:,}", f"{edges[-1] - 1:,}"),
        width,
        height,
        zero_label=True,
    )


def score_histograms(store: RunStore, run_id: str, bins: int = 10) -> dict[str, dict[str, Any]]:
    """Per filter that gave scores (``Verdict.score``, a judge's): equal-width bins between the
    lowest and highest score, ``{"edges", "counts", "kept"}`` (kept: of the sample overall)."""
    rows = store.db.execute(
        "SELECT v.filter, v.score, s.kept FROM verdicts v JOIN samples s ON s.run_id = v.run_id"
        " AND s.seq = v.seq WHERE v.run_id = ? AND v.score IS NOT NULL ORDER BY v.filter",
        (run_id,),
    ).fetchall()
    by_filter: dict[str, list[tuple[float, int]]] = {}
    for flt, score, kept in rows:
        by_filter.setdefault(flt, []).append((float(score), int(kept)))
    out: dict[str, dict[str, Any]] = {}
    for flt, values in by_filter.items():
        low, high = min(v for v, _ in values), max(v for v, _ in values)
        n = bins if high > low else 1
        width = (high - low) / n or 1.0
        counts, kept = [0] * n, [0] * n
        for value, was_kept in values:
            i = min(int((value - low) / width), n - 1)
            counts[i] += 1
            kept[i] += was_kept
        out[flt] = {"edges": [low + i * width for i in range(n + 1)], "counts": counts, "kept": kept}
    return out


def score_svg(flt: str, hist: dict[str, Any], width: int = 560, height: int = 170) -> str:
    """An SVG histogram of one filter's scores (``rect.bar`` all, ``rect.bar-kept`` kept)."""
    counts, kept, edges = hist["counts"], hist["kept"], hist["edges"]
    return _bars_svg(
        f'class="hist scores" data-filter="{_e(flt)}" data-bins="{len(counts)}"',
        f"scores given by {flt}",
        counts,
        kept,
        lambda i: f"{edges[i]:g}–{edges[i + 1]:g}: {counts[i]} sample(s), {kept[i]} kept",
        (f"{edges[0]:g}", f"{edges[-1]:g}"),
        width,
        height,
        zero_label=False,
    )


def _scores_section(store: RunStore, run_id: str) -> str:
    hists = score_histograms(store, run_id)
    if not hists:
        return ""
    charts = "".join(f"<div><h2>{_e(flt)}</h2>{score_svg(flt, h)}</div>" for flt, h in hists.items())
    return f'<section id="scores"><h2>Scores</h2><div class="grid">{charts}</div></section>'


def categories_svg(categories: dict[str, dict[str, int]], width: int = 560) -> str:
    """Stacked horizontal bars per category: kept, dropped, failed."""
    if not categories:
        return "<p>The source gave its records no categories.</p>"
    label_w, row_h = 170, 24
    top = max((c["kept"] + c["dropped"] + c["failed"]) for c in categories.values()) or 1
    plot_w = width - label_w - 50
    height = row_h * len(categories) + 4
    parts = [f'<svg class="cats" viewBox="0 0 {width} {height}" width="{width}" height="{height}">']
    for row, (name, c) in enumerate(categories.items()):
        y = row * row_h + 2
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_e(name[:28])}</text>')
        x = float(label_w)
        for key in ("kept", "dropped", "failed"):
            w = plot_w * c[key] / top
            if w > 0:
                parts.append(
                    f'<rect class="seg-{key}" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}">'
                    f"<title>{_e(name)}: {c[key]} {key}</title></rect>"
                )
            x += w
        total = c["kept"] + c["dropped"] + c["failed"]
        parts.append(f'<text x="{x + 5:.1f}" y="{y + 15}">{c["kept"]}/{total}</text>')
    parts.append("</svg>")
    return "".join(parts)


def funnel_svg(funnel: list[dict[str, Any]], width: int = 560) -> str:
    """The filter funnel: one bar per stage, as wide as the samples that reach it."""
    label_w, row_h = 170, 26
    top = max((s["count"] for s in funnel), default=0) or 1
    plot_w = width - label_w - 50
    height = row_h * len(funnel) + 4
    parts = [f'<svg class="funnel-chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}">']
    for row, stage in enumerate(funnel):
        y = row * row_h + 2
        w = max(plot_w * stage["count"] / top, 1)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{_e(stage["stage"][:28])}</text>'
            f'<rect class="funnel" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}"/>'
            f'<text x="{label_w + w + 5:.1f}" y="{y + 16}">{stage["count"]:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _usd(value: Any) -> str:
    """Dollars, or "unknown" (never 0) when a price was missing."""
    return f"{value:.4f}" if isinstance(value, int | float) else "unknown"


def _cards(report: dict[str, Any], stats: dict[str, Any]) -> str:
    usage = report.get("usage") or {}
    items = [
        ("records", stats["records"]),
        ("requests", report.get("requests", stats["samples"] + stats["failed"])),
        ("answered", stats["samples"]),
        ("kept", stats["kept"]),
        ("dropped", stats["samples"] - stats["kept"]),
        ("failed", stats["failed"]),
        ("examples", stats["examples"]),
        ("exact duplicates", stats["duplicates"]["exact"]),
        ("near-duplicates", stats["duplicates"]["near"]),
        ("rejected in review", stats["rejected_in_review"]),
        ("prompt tokens", usage.get("prompt_tokens", "-")),
        ("completion tokens", usage.get("completion_tokens", "-")),
    ]
    steps = report.get("steps") or {}
    if set(steps) - {"prompt"}:  # chain steps asked for with context.complete()
        calls = sum((c or {}).get("requests", 0) for name, c in steps.items() if name != "prompt")
        items.append(("chain calls", calls))
    if report.get("recovered"):
        items.append(("recovered by re-ask", report["recovered"]))
    if report.get("failed_records"):
        items.append(("records failed mid-chain", report["failed_records"]))
    items.append(("cost (USD)", _usd(report.get("cost_usd"))))
    split = report.get("cost") or {}
    earlier = split.get("earlier_runs") or {}
    if earlier.get("answers"):  # cached answers reused: who paid for what
        items.append(("paid in this run (USD)", _usd((split.get("this_run") or {}).get("usd"))))
        items.append((f"paid earlier, {earlier['answers']:,} cached (USD)", _usd(earlier.get("usd"))))
    return "".join(
        f'<div class="card" data-key="{_e(k)}"><b>{_e(_num(v) if isinstance(v, int) else v)}</b>'
        f"<span>{_e(k)}</span></div>"
        for k, v in items
    )


def _lengths_table(stats: dict[str, Any]) -> str:
    head = "".join(f'<th class="num">{c}</th>' for c in ("count", "min", "q1", "median", "q3", "max", "mean"))
    rows = []
    for metric in CHART_ORDER:
        for scope in ("all", "kept"):
            d = stats["lengths"][scope].get(metric)
            if not d:
                continue
            cells = "".join(
                f'<td class="num">{_num(d[c])}</td>'
                for c in ("count", "min", "q1", "median", "q3", "max", "mean")
            )
            rows.append(f"<tr><td>{_e(metric.replace('_', ' '))}</td><td>{scope}</td>{cells}</tr>")
    return (
        f"<table><thead><tr><th>measure</th><th>samples</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _filters_table(stats: dict[str, Any]) -> str:
    rows = []
    for f in stats["filters"]:
        reasons = "; ".join(f"{k}: {n}" for k, n in sorted(f["reasons"].items())) or "-"
        rows.append(
            f"<tr><td>{f['position']}</td><td>{_e(f['filter'])}</td><td class='num'>{f['seen']}</td>"
            f"<td class='num'>{f['kept']}</td><td class='num'>{f['dropped']}</td><td>{_e(reasons)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>#</th><th>filter</th><th class='num'>seen</th><th class='num'>passed</th>"
        f"<th class='num'>dropped</th><th>reasons</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _input_of(body_json: str | None) -> str:
    if not body_json:
        return ""
    messages = json.loads(body_json).get("messages", [])
    users = [m for m in messages if m.get("role") == "user"] or messages
    content = users[-1].get("content") if users else ""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]} … [+{len(text) - limit:,} chars]"


def _rows(store: RunStore, run_id: str, text_chars: int) -> Iterator[str]:
    cursor = store.db.execute(
        "SELECT s.seq, s.record_id, r.category, s.kept, v.filter, v.reason,"
        f" {SAMPLE_TEXT}, g.request_json,"
        " m.output_chars, m.output_tokens, m.input_tokens,"
        " (SELECT sv.score FROM verdicts sv WHERE sv.run_id = s.run_id AND sv.seq = s.seq"
        " AND sv.score IS NOT NULL ORDER BY sv.position DESC LIMIT 1)"
        " FROM samples s"
        " LEFT JOIN records r ON r.run_id = s.run_id AND r.record_id = s.record_id"
        f"{SAMPLE_GENERATION}"
        " LEFT JOIN sample_measures m ON m.run_id = s.run_id AND m.seq = s.seq"
        " LEFT JOIN verdicts v ON v.run_id = s.run_id AND v.seq = s.seq AND v.kept = 0"
        " WHERE s.run_id = ? ORDER BY s.seq",
        (run_id,),
    )
    for seq, record_id, category, kept, flt, reason, text, body, oc, ot, it, score in cursor:
        status = "kept" if kept else ("rejected" if flt == REVIEW_FILTER else "dropped")
        why = "" if kept else (REJECTED_REASON if status == "rejected" else f"{flt}: {reason}")
        if score is not None:
            why = f"{why} (score {score:g})" if why else f"score {score:g}"
        yield (
            f'<tr data-status="{status}" data-seq="{seq}">'
            f'<td class="num">{seq}</td><td><span class="status {status}">{status}</span></td>'
            f"<td>{_e(category or '')}</td><td class='record'>{_e(record_id)}</td>"
            f"<td class='reason'>{_e(why)}</td>"
            f'<td class="num">{_num(oc)}</td><td class="num">{_num(ot)}</td><td class="num">{_num(it)}</td>'
            f'<td><div class="input">{_e(_cut(_input_of(body), 400))}</div></td>'
            f'<td><div class="text">{_e(_cut(text, text_chars))}</div></td></tr>\n'
        )


def write_html_report(store: RunStore, run_id: str, path: Path, text_chars: int = 4000) -> int:
    """Write the HTML report of ``run_id`` to ``path`` (atomically); returns the number of
    sample rows written."""
    stats = run_statistics(store, run_id, bins=BINS)
    info = store.run_info(run_id) or {}
    report = info.get("report") or {}
    title = f"synthtune run {run_id} ({info.get('preset', '?')})"
    csp = (
        "default-src 'none'; img-src data:; "
        f"style-src {_csp_hash(CSS)}; script-src {_csp_hash(SCRIPT)}; base-uri 'none'; form-action 'none'"
    )
    histograms = "".join(
        f"<div><h2>{_e(LABELS[m])}</h2>{histogram_svg(histogram(store, run_id, m, BINS), m)}</div>"
        for m in CHART_ORDER
    )
    legend = (
        '<p class="legend"><span><i class="k"></i>kept</span>'
        '<span><i class="d"></i>dropped or rejected</span></p>'
    )
    head = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(title)}</title>
<style>{CSS}</style></head>
<body>
<header><h1>{_e(title)}</h1><p>model {_e(report.get("model", "?"))} · status {_e(info.get("status", "?"))}
 · output {_e(info.get("out_dir", "?"))}</p></header>
<main>
<section id="summary"><h2>Summary</h2><div class="cards">{_cards(report, stats)}</div></section>
<div class="grid">
<section id="funnel"><h2>Filter funnel</h2>{funnel_svg(stats["funnel"])}{_filters_table(stats)}</section>
<section id="categories"><h2>Per category</h2>
<p class="legend"><span><i class="k"></i>kept</span><span><i class="dd"></i>dropped</span>
<span><i class="f"></i>failed</span></p>{categories_svg(stats["categories"])}</section>
</div>
<section id="histograms"><h2>Lengths</h2>{legend}<div class="grid">{histograms}</div>
{_lengths_table(stats)}</section>
{_scores_section(store, run_id)}
<section id="table"><h2>Samples</h2>
<div class="controls"><input id="search" type="search" placeholder="Search text, reasons, records, categories"
 autocomplete="off" aria-label="Search samples">
<select id="status" aria-label="Status"><option value="all">all</option><option value="kept">kept</option>
<option value="dropped">dropped</option><option value="rejected">rejected in review</option></select>
<span id="shown"></span></div>
<table id="samples"><thead><tr><th class="num">#</th><th>status</th><th>category</th><th>record</th>
<th>reason</th><th class="num">chars</th><th class="num">tokens</th><th class="num">input tokens</th>
<th>input</th><th>output</th></tr></thead>
<tbody>
"""
    if path.is_dir():
        raise ConfigError(f"--html {path} is a folder: name a file, e.g. {path / 'report.html'}")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    count = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", encoding="utf-8") as out:
            out.write(head)
            for row in _rows(store, run_id, text_chars):
                out.write(row)
                count += 1
            out.write(f"</tbody></table></section>\n</main>\n<script>{SCRIPT}</script>\n</body></html>\n")
        os.replace(tmp, path)
    except OSError as error:
        raise SynthtuneError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return count
