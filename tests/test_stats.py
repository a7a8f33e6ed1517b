"""Run statistics: counts that add up, distributions that match the data, the printed summary."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from review_runs import preset_with_dedupe, responder
from synthtune.core import tokens
from synthtune.core.errors import EXIT_PARTIAL
from synthtune.core.stats import distribution, histogram, run_statistics
from synthtune.core.store import SAMPLE_GENERATION, SAMPLE_TEXT, RunStore
from synthtune.core.testing import FakeOpenAI


def _run(cli, workdir: Path, limit: int = 48) -> dict:
    result = cli("run", "--preset", str(preset_with_dedupe(workdir)), "--limit", str(limit), "--yes")
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    # the responder fails some requests on purpose: a partial run exits 3
    assert result.exit_code == (EXIT_PARTIAL if report["failed"] else 0), result.output
    return report


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
    assert sum(report["examples"].values()) == report["kept"]  # train and the valid split

    printed = cli("report", "latest").output
    assert "output chars (kept" in printed and "duplicates exact" in printed
    assert "romance & comedy" in printed


def test_distributions_match_the_samples(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    fake_openai.responder = responder
    report = _run(cli, workdir, limit=30)
    store = RunStore(workdir / "synthtune.db")
    run_id = report["run_id"]
    rows = store.db.execute(
        f"SELECT {SAMPLE_TEXT}, s.kept FROM samples s{SAMPLE_GENERATION} WHERE s.run_id = ?", (run_id,)
    ).fetchall()
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
    # Token counts are the server's usage where the text is its answer (up to whitespace), and
    # tiktoken's count of the cleaned text otherwise.
    measured = store.db.execute(
        f"SELECT {SAMPLE_TEXT}, g.text, g.completion_tokens, g.prompt_tokens, m.output_tokens, m.input_tokens"
        " FROM samples s JOIN generations g ON g.key = s.key"
        " JOIN sample_measures m ON m.run_id = s.run_id AND m.seq = s.seq WHERE s.run_id = ?",
        (run_id,),
    ).fetchall()
    assert len(measured) == len(rows)
    for text, answer, completion_tokens, prompt_tokens, output_tokens, input_tokens in measured:
        assert input_tokens == prompt_tokens
        if text.strip() == answer.strip():
            assert output_tokens == completion_tokens
        else:
            assert output_tokens == tokens.count_text(text, "gpt-4.1-mini")
    hist = histogram(store, run_id, "output_chars", bins=7)
    assert len(hist["counts"]) <= 7 and len(hist["edges"]) == len(hist["counts"]) + 1
    assert sum(hist["counts"]) == len(rows) and sum(hist["kept"]) == report["kept"]
    edges = hist["edges"]
    for i in range(len(hist["counts"])):
        inside = [k for t, k in rows if edges[i] <= len(t) < edges[i + 1]]
        assert (hist["counts"][i], hist["kept"][i]) == (len(inside), sum(inside))
    assert report["stats"]["histograms"]["output_chars"] == histogram(store, run_id, "output_chars")
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


@pytest.mark.usefixtures("encodings")
def test_token_counts_come_from_usage_and_fall_back_to_tiktoken(workdir: Path) -> None:
    from synthtune.core import ChatMessage, GenerationOutcome, GenerationRequest, Usage
    from synthtune.core.stats import SampleMeasures

    store = RunStore(workdir / "measures.db")
    measures = SampleMeasures(store, "gpt-4.1-mini")
    request = GenerationRequest(
        messages=[ChatMessage(role="user", content="Write a haiku.")], model="gpt-4.1-mini"
    )
    answer = "An old silent pond, a frog jumps in."
    cases = [
        (Usage(prompt_tokens=11, completion_tokens=9), f"  {answer}\n", (11, 9)),  # usage, as is
        (Usage(prompt_tokens=11, completion_tokens=9), "A frog jumps in.", (11, None)),  # rewritten
        (Usage(), answer, (None, None)),  # a server that reports no usage
    ]
    for seq, (usage, kept_text, _) in enumerate(cases):
        generation = GenerationOutcome(key=f"k{seq}", text=answer, usage=usage)
        measures.observe("run", seq, request, generation, kept_text)
    store.flush()
    rows = store.db.execute(
        "SELECT input_tokens, output_tokens FROM sample_measures WHERE run_id = 'run' ORDER BY seq"
    ).fetchall()
    prompt = tokens.count_messages([{"role": "user", "content": "Write a haiku."}], "gpt-4.1-mini")
    assert rows == [
        (11, 9),
        (11, tokens.count_text("A frog jumps in.", "gpt-4.1-mini")),
        (prompt, tokens.count_text(answer, "gpt-4.1-mini")),
    ]
    store.close()
