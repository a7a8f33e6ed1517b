"""An evaluation's outputs: a table for the terminal, ``eval.json`` and ``eval.html``.

The page reuses the run report's style (:mod:`synthtune.core.html_report`): one self-contained
file, no script, a Content-Security-Policy that allows only its own style, and every value
(prompts and answers are model text) through ``html.escape``.
"""

from __future__ import annotations

import os
from pathlib import Path

from synthtune.core.errors import SynthtuneError
from synthtune.core.evaluation.results import EvalResults, Rate, ScoreSummary
from synthtune.core.html_report import CSS, _csp_hash, _e

EXTRA_CSS = """
.answers { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; }
.answer { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.answer h3 { font-size: 13px; margin: 0 0 6px; }
.answer pre, .prompt pre { white-space: pre-wrap; word-break: break-word; margin: 0;
  font: 12px/1.45 ui-monospace, SFMono-Regular, Menlo, monospace; max-height: 420px; overflow: auto; }
.prompt { background: var(--bg); border-radius: 6px; padding: 8px 10px; margin-bottom: 10px; }
.pass { color: var(--kept); } .fail { color: var(--dropped); } .muted { color: var(--muted); }
details { margin-bottom: 14px; } summary { cursor: pointer; font-weight: 600; }
"""
STYLE = CSS + EXTRA_CSS


def pct(rate: Rate) -> str:
    """``72% [51-86%] (18/25)``, or ``-`` when nothing was checked."""
    if rate.rate is None:
        return "-"
    interval = f" [{rate.low:.0%}-{rate.high:.0%}]" if rate.low is not None and rate.high is not None else ""
    return f"{rate.rate:.0%}{interval} ({rate.passed}/{rate.checked})"


def score_text(score: ScoreSummary | None) -> str:
    """``7.2 [6.5-7.9] (n=25)``, with the unparseable replies when there were any."""
    if score is None:
        return "-"
    text = "-"
    if score.mean is not None and score.low is not None and score.high is not None:
        text = f"{score.mean:.1f} [{score.low:.1f}-{score.high:.1f}] (n={score.n})"
    return text + (f", {score.unparseable} unparseable" if score.unparseable else "")


def table(results: EvalResults) -> str:
    """The results as aligned lines for the terminal."""
    filters = sorted({name for model in results.models for name in model.filters})
    heads = ["model", "answered", *[f"{name} pass" for name in filters], "all filters"]
    scored = any(model.score is not None for model in results.models)
    if scored:
        heads.append("judge score")
    rows = []
    for model in results.models:
        if model.error is not None and not model.answered:
            rows.append([model.label, "not evaluated: " + model.error[:80]])
            continue
        row = [model.label, f"{model.answered}/{model.answered + model.failed}"]
        row += [pct(model.filters[name]) if name in model.filters else "-" for name in filters]
        row.append(pct(model.all_filters))
        if scored:
            s = model.score
            row.append(score_text(s))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [heads, *rows] if i < len(r)) for i in range(len(heads))]
    lines = [
        f"eval of {results.preset}: {results.prompts} held-out prompts (of {results.heldout}), "
        f"{results.dataset_check}"
    ]
    for row in [heads, *rows]:
        lines.append("  " + "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    for pair in results.pairs:
        n = pair.x_wins + pair.y_wins + pair.ties
        lines.append(
            f"  judge {results.judge}: {pair.x} vs {pair.y}: {pair.x} wins {pct(pair.x_rate)}, "
            f"{pair.y} wins {pct(pair.y_rate)}, ties {pair.ties}/{n}"
            + (f", unparseable {pair.unparseable}" if pair.unparseable else "")
        )
    if results.judge_error:
        lines.append(f"  judge {results.judge}: {results.judge_error}")
    return "\n".join(lines)


def write_json(results: EvalResults, path: Path) -> None:
    _atomic(path, results.model_dump_json(indent=2) + "\n")


def _rate_cell(rate: Rate) -> str:
    return f'<td class="num">{_e(pct(rate))}</td>'


def _models_table(results: EvalResults) -> str:
    filters = sorted({name for model in results.models for name in model.filters})
    head = "".join(f'<th class="num">{_e(name)} pass</th>' for name in filters)
    rows = []
    for m in results.models:
        if m.error is not None and not m.answered:
            rows.append(
                f"<tr><td>{_e(m.label)}</td><td>{_e(m.spec)}</td>"
                f'<td colspan="{len(filters) + 4}" class="fail">not evaluated: {_e(m.error)}</td></tr>'
            )
            continue
        score = score_text(m.score)
        cells = "".join(_rate_cell(m.filters[n]) if n in m.filters else "<td>-</td>" for n in filters)
        rows.append(
            f"<tr><td>{_e(m.label)}</td><td>{_e(m.spec)}</td>"
            f'<td class="num">{m.answered}/{m.answered + m.failed}</td>{cells}'
            f'{_rate_cell(m.all_filters)}<td class="num">{_e(score)}</td></tr>'
        )
    return (
        f"<table><thead><tr><th>model</th><th>spec</th><th class='num'>answered</th>{head}"
        f"<th class='num'>all filters</th><th class='num'>judge score</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _pairs_table(results: EvalResults) -> str:
    if not results.pairs:
        return f"<p class='muted'>{_e(results.judge_error or 'no pairwise judge (--judge MODEL)')}</p>"
    rows = "".join(
        f"<tr><td>{_e(p.x)}</td><td>{_e(p.y)}</td>{_rate_cell(p.x_rate)}{_rate_cell(p.y_rate)}"
        f'<td class="num">{p.ties}</td><td class="num">{p.unparseable}</td></tr>'
        for p in results.pairs
    )
    return (
        "<table><thead><tr><th>X</th><th>Y</th><th class='num'>X wins [95% CI]</th>"
        "<th class='num'>Y wins [95% CI]</th><th class='num'>ties</th><th class='num'>unparseable</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        "<p class='muted'>Each comparison is asked in both orders; a win counts only when both agree.</p>"
    )


def _outcome(outcome: str, x: str, y: str) -> str:
    return {"x": f"{x} wins", "y": f"{y} wins", "tie": "tie (the two orders disagree or say tie)"}.get(
        outcome, "unparseable"
    )


def _prompts(results: EvalResults) -> str:
    parts = []
    for n, prompt in enumerate(results.per_prompt, start=1):
        answers = []
        for label, answer in prompt.answers.items():
            verdicts = " ".join(
                f'<span class="{"pass" if v.kept else "fail"}">{_e(v.filter)}: '
                f"{_e('pass' if v.kept else v.reason or 'fail')}</span>"
                for v in answer.verdicts
            )
            score = f" · judge score {answer.score}" if answer.score is not None else ""
            missing = f"<span class='fail'>{_e(answer.error)}</span>"
            body = _e(answer.text) if answer.text is not None else missing
            answers.append(
                f'<div class="answer"><h3>{_e(label)}</h3><p>{verdicts}{_e(score)}</p><pre>{body}</pre></div>'
            )
        comparisons = "".join(
            f"<li>{_e(c.x)} vs {_e(c.y)}: <b>{_e(_outcome(c.outcome, c.x, c.y))}</b> "
            f"(verdicts {_e(c.x)} first: {_e(c.verdicts[0] or 'unparseable')}, "
            f"{_e(c.y)} first: {_e(c.verdicts[1] or 'unparseable')})</li>"
            for c in prompt.comparisons
        )
        framed = "" if prompt.framed else " · the generator's prompt (the format needs a real answer)"
        parts.append(
            f"<details{' open' if n <= 3 else ''}><summary>#{n} {_e(prompt.record_id)}"
            f"{_e(' · ' + prompt.category if prompt.category else '')}{_e(framed)}</summary>"
            f'<div class="prompt"><pre>{_e(prompt.prompt)}</pre></div>'
            f'<div class="answers">{"".join(answers)}</div>'
            f"{f'<ul>{comparisons}</ul>' if comparisons else ''}</details>"
        )
    return "\n".join(parts)


def write_html(results: EvalResults, path: Path) -> None:
    """The evaluation as one self-contained, escaped HTML page."""
    title = f"synthtune eval of {results.preset}"
    csp = (
        f"default-src 'none'; img-src data:; style-src {_csp_hash(STYLE)}; script-src 'none'; "
        "base-uri 'none'; form-action 'none'"
    )
    judge = f" · judge {results.judge} ({results.judge_mode})" if results.judge else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(title)}</title>
<style>{STYLE}</style></head>
<body>
<header><h1>{_e(title)}</h1><p>{results.prompts} held-out prompts (of {results.heldout}) · seed {results.seed}
 · {_e(results.dataset_check)}{_e(judge)}</p></header>
<main>
<section id="models"><h2>Filter pass rates (95% Wilson intervals)</h2>{_models_table(results)}</section>
<section id="pairs"><h2>Pairwise judge</h2>{_pairs_table(results)}</section>
<section id="prompts"><h2>Answers, prompt by prompt</h2>{_prompts(results)}</section>
</main>
</body></html>
"""
    _atomic(path, page)


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as error:
        raise SynthtuneError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        tmp.unlink(missing_ok=True)
