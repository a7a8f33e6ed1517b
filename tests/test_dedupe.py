"""The dedupe filter: planted exact and near duplicates in a test corpus, one of each kept."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import read_jsonl
from synthtune.core import ChatMessage, GenerationRequest, Record, TrainingExample, Verdict, hookimpl
from synthtune.core.plugins import PluginHost
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins.dedupe.minhash import jaccard, normalise, shingles, signature

VOCAB = [
    f"{a}{b}"
    for a in ("ka", "lo", "mi", "ne", "su", "ta", "ri", "po")
    for b in ("n", "ra", "te", "vo", "lis")
]


def _paragraph(rng: random.Random, words: int = 120) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(words)).capitalize() + "."


def _swap(text: str, positions: list[int]) -> str:
    words = text.split(" ")
    for p in positions:
        words[p] = "CHANGED"
    return " ".join(words)


def corpus() -> tuple[list[tuple[str, str]], dict[str, str]]:
    """30 distinct paragraphs, then 5 planted copies: id -> the original each should be kept for."""
    rng = random.Random(7)
    texts = [(f"doc-{i:02d}", _paragraph(rng)) for i in range(30)]
    original = dict(texts)
    planted = {
        "exact-of-03": "  " + original["doc-03"].upper().replace(" ", "\n ", 5) + "!!",
        "exact-of-07": original["doc-07"],
        "near-of-10": _swap(original["doc-10"], [40, 90]),
        "near-of-15": _swap(original["doc-15"], [5]) + " tail",
        "near-of-20": _swap(original["doc-20"], [60, 61]),
    }
    return texts + list(planted.items()), {k: "doc-" + k[-2:] for k in planted}


class CorpusTask:
    """A fake task plugin: each record's text is asked back from the fake server verbatim."""

    @hookimpl
    def source(self, settings: Any, context: Any) -> Any:
        for record_id, text in corpus()[0]:
            yield Record(
                id=record_id, category="planted" if "-of-" in record_id else "original", data={"text": text}
            )

    @hookimpl
    def prompt(self, record: Record, settings: Any, context: Any) -> list[GenerationRequest]:
        return [GenerationRequest(messages=[ChatMessage(role="user", content=f"ECHO:{record.data['text']}")])]

    @hookimpl
    def format(self, sample: Any, settings: Any, context: Any) -> list[TrainingExample]:
        return [
            TrainingExample.chat(
                [{"role": "user", "content": sample.record.id}, {"role": "assistant", "content": sample.text}]
            )
        ]


def echo(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"]).removeprefix("ECHO:")


PRESET = """
name = "corpus"
seed = 1
[source]
plugin = "corpus-task"
[prompt]
plugin = "corpus-task"
[generate]
plugin = "openai"
model = "gpt-4.1-mini"
concurrency = 8
[[filter]]
plugin = "dedupe"
{extra}
[format]
plugin = "corpus-task"
"""


@pytest.fixture
def corpus_host(host: PluginHost) -> PluginHost:
    assert host.register(CorpusTask(), "corpus-task")
    return host


def _run(cli, workdir: Path, extra: str = "") -> tuple[dict, list[dict], list[dict]]:
    preset = workdir / "corpus.toml"
    preset.write_text(PRESET.format(extra=extra))
    result = cli("run", "--preset", str(preset), "--yes")
    assert result.exit_code == 0, result.output
    out = workdir / "runs" / "corpus"
    return (
        json.loads((out / "report.json").read_text()),
        read_jsonl(out / "train.jsonl"),
        read_jsonl(out / "rejected.jsonl"),
    )


def test_dedupe_finds_planted_duplicates_and_keeps_one_of_each(
    cli, corpus_host: PluginHost, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = echo
    _, pairs = corpus()
    report, train, rejected = _run(cli, workdir)
    kept = [line["messages"][0]["content"] for line in train]
    assert len(kept) == 30 and len(rejected) == 5
    for copy, original in pairs.items():  # exactly one of each planted pair is in the dataset
        assert (copy in kept) != (original in kept), (copy, original)
    kinds = sorted(r["reason"].split(" (")[0] for r in rejected)
    assert kinds == ["exact duplicate"] * 2 + ["near-duplicate"] * 3
    assert report["stats"]["duplicates"] == {"exact": 2, "near": 3, "total": 5}
    for r in rejected:
        assert r["filter"] == "dedupe"
        if r["reason"].startswith("near"):
            assert re.fullmatch(r"near-duplicate \(of [\w-]+, jaccard≈0\.\d\d\)", r["reason"])
            assert float(r["reason"][-5:-1]) >= 0.7

    # A cached rerun judges samples in source order: the planted copies (after their originals
    # in the source) are the ones dropped, naming the originals, every time.
    for _ in range(2):
        again, train2, rejected2 = _run(cli, workdir)
        assert again["cached"] == 35 and again["generated"] == 0
        assert {r["record_id"]: r["reason"].split("of ")[1][:6] for r in rejected2} == pairs


def test_dedupe_settings_threshold_and_exact_only(
    cli, corpus_host: PluginHost, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = echo
    report, train, rejected = _run(cli, workdir, extra="near = false")
    assert sorted(r["record_id"] for r in rejected) == ["exact-of-03", "exact-of-07"]
    report, train, rejected = _run(cli, workdir, extra="threshold = 0.99\nshingle_size = 3\nnum_perm = 64")
    assert sorted(r["record_id"] for r in rejected) == ["exact-of-03", "exact-of-07"]
    bad = workdir / "bad.toml"
    bad.write_text(PRESET.format(extra="threshold = 1.5"))
    result = cli("run", "--preset", str(bad), "--yes")
    assert result.exit_code == 2 and "threshold" in result.output


def test_minhash_estimates_jaccard_with_fixed_size_signatures() -> None:
    rng = random.Random(3)
    base = _paragraph(rng, 300)
    near = _swap(base, [100, 200, 250])
    a, b = shingles(normalise(base), 5), shingles(normalise(near), 5)
    true = len(a & b) / len(a | b)
    sa, sb = signature(a, 128), signature(b, 128)
    assert len(sa.tobytes()) == 4 * 128  # bounded memory per sample
    assert abs(jaccard(sa, sb) - true) < 0.12
    assert signature(a, 128) == sa  # deterministic (blake2b, not Python's salted hash)
    other = shingles(normalise(_paragraph(rng, 300)), 5)
    assert jaccard(sa, signature(other, 128)) < 0.1
    assert normalise("Hello,   WORLD!\n") == normalise("hello world")


def test_dedupe_state_is_per_run(corpus_host: PluginHost) -> None:
    from synthtune.core.models import GenerationOutcome, RunContext, Sample
    from synthtune.plugins.dedupe import DedupeSettings
    from synthtune.plugins.dedupe import filter as dedupe

    def sample(record_id: str, text: str) -> Sample:
        request = GenerationRequest(messages=[ChatMessage(role="user", content="x")])
        return Sample(
            record=Record(id=record_id),
            request=request,
            generation=GenerationOutcome(key="k", text=text),
            text=text,
        )

    settings = DedupeSettings()
    one, two = RunContext(run_id="run-1", seed=0), RunContext(run_id="run-2", seed=0)
    assert dedupe(sample("a", "same words here"), settings, one) == Verdict.keep()
    assert dedupe(sample("b", "Same words, here."), settings, one).reason == "exact duplicate (of a)"
    assert dedupe(sample("b", "same words here"), settings, two) == Verdict.keep()
