"""Run statistics: counts that add up, distributions that match the data, the printed summary."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from review_runs import preset_with_dedupe, responder
from synthtune.core import tokens
from synthtune.core.stats import distribution, histogram, run_statistics
from synthtune.core.store import RunStore
from synthtune.core.testing import FakeOpenAI


def _run(cli, workdir: Path, limit: int = 48) -> dict:
    result = cli("run", "--preset", str(preset_with_dedupe(workdir)), "--limit", str(limit), "--yes")
    assert result.exit_code == 0, result.output
    return json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())


def test_report_counts_add_up_to_records_and_requests(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    fake_openai.responder = responder
    report = _run(cli, workdir)
    stats = report["stats"]
    # plot-generator asks one completion per record: every record ends kept, dropped or failed
    assert report["records"] == report["requests"] == 48
    assert report["kept"] + report["dropped_total"] + report["failed"] == report["requests"]
    assert report["failed"] > 0 and report["dropped_total"] > 0 and report["kept"] > 0
    assert stats["records"] == report["records"] and stats["kept"] == report["kept"]
    assert stats["samples"] + stats["failed"] == report["requests"]
    assert [s["count"] for s in stats["funnel"]][:3] == [48, 48, report["requests"] - report["failed"]]
    assert stats["funnel"][-2] == {"stage": "kept", "count": report["kept"]}
    # per filter: what passes one filter is what the next one sees
    first, second = stats["filters"]
    assert (first["filter"], second["filter"]) == ("plot-generator", "dedupe")
    assert first["seen"] == stats["samples"] and second["seen"] == first["kept"]
    assert sum(f["dropped"] for f in stats["filters"]) == report["dropped_total"]
    assert {f"{f['filter']}: {k}": n for f in stats["filters"] for k, n in f["reasons"].items()} == report[
        "dropped"
    ]
    # per category (genre): each stage adds up to the totals
    cats = stats["categories"]
    assert len(cats) == 6
    for key, total in (("records", 48), ("kept", report["kept"]), ("failed", report["failed"])):
        assert sum(c[key] for c in cats.values()) == total
    for c in cats.values():
        assert c["kept"] + c["dropped"] + c["failed"] == c["records"]
    assert stats["duplicates"]["exact"] == second["reasons"]["exact duplicate"] > 0
    assert report["examples"] == {"train": report["kept"]}

    printed = cli("report", "latest").output
    assert "output chars (kept" in printed and "duplicates exact" in printed
    assert "romance & comedy" in printed


def test_distributions_match_the_samples(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    fake_openai.responder = responder
    report = _run(cli, workdir, limit=30)
    store = RunStore(workdir / "synthtune.db")
    run_id = report["run_id"]
    rows = store.db.execute("SELECT s.text, s.kept FROM samples s WHERE run_id = ?", (run_id,)).fetchall()
    for scope, texts in (("all", [t for t, _ in rows]), ("kept", [t for t, k in rows if k])):
        lengths = sorted(len(t) for t in texts)
        dist = distribution(store, run_id, "output_chars", scope)
        assert dist is not None
        q1, median, q3 = statistics.quantiles(lengths, n=4, method="inclusive")
        assert (dist["min"], dist["max"], dist["count"]) == (lengths[0], lengths[-1], len(lengths))
        assert (dist["q1"], dist["median"], dist["q3"]) == tuple(
            round(v, 2) if not float(v).is_integer() else int(v) for v in (q1, median, q3)
        )
        assert report["stats"]["lengths"][scope]["output_chars"] == dist
    token_counts = sorted(tokens.count_text(t, "gpt-4.1-mini") for t, _ in rows)
    assert distribution(store, run_id, "output_tokens")["max"] == token_counts[-1]
    hist = histogram(store, run_id, "output_chars", bins=7)
    assert len(hist["counts"]) <= 7 and len(hist["edges"]) == len(hist["counts"]) + 1
    assert sum(hist["counts"]) == len(rows) and sum(hist["kept"]) == report["kept"]
    store.close()


def test_cached_rerun_reports_the_same_statistics(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    fake_openai.responder = responder
    first = _run(cli, workdir, limit=24)
    calls = fake_openai.chat_count
    again = _run(cli, workdir, limit=24)
    assert fake_openai.chat_count - calls == again["failed"]  # only failures are asked again
    assert again["stats"]["lengths"] == first["stats"]["lengths"]
    assert again["stats"]["categories"] == first["stats"]["categories"]
    store = RunStore(workdir / "synthtune.db")
    assert run_statistics(store, first["run_id"])["kept"] == first["kept"]
    store.close()
