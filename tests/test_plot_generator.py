"""plot-generator: balanced sampling, stable entropy, filters and formats."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from conftest import read_dataset, read_jsonl
from synthtune.core import RunContext
from synthtune.core.testing import FakeOpenAI, Reply, default_text
from synthtune.plugins import plot_generator as pg


def records(count: int, seed: int = 42) -> list[dict[str, str]]:
    settings = pg.PlotSourceSettings(count=count)
    return [r.data for r in pg.source(settings=settings, context=RunContext(run_id="t", seed=seed))]


def spread(drawn: list[dict[str, str]], field: str) -> int:
    counts = Counter(d[field] for d in drawn)
    return max(counts.values()) - min(counts.values())


def test_every_list_is_balanced_and_combinations_are_distinct() -> None:
    for seed in (1, 42):
        for count in (7, 60, 200, 1000):
            drawn = records(count, seed)
            assert len({tuple(d.values()) for d in drawn}) == count
            assert spread(drawn, "genre") <= 1  # strict, at every count
            assert max(spread(drawn, f) for f in ("modifier", "place", "period")) <= (1 if count <= 60 else 2)
    sixty = Counter(d["genre"] for d in records(60))
    assert set(sixty) == set(pg.GENRES) and set(sixty.values()) == {10}


def test_sampling_is_seeded() -> None:
    assert records(20, seed=1) == records(20, seed=1)
    assert records(20, seed=1) != records(20, seed=2)


def test_all_combinations_when_count_is_unset() -> None:
    settings = pg.PlotSourceSettings(genres=["a", "b"], modifiers=["m"], places=["p", "q"], periods=["t"])
    drawn = list(pg.source(settings=settings, context=RunContext(run_id="t", seed=0)))
    assert len(drawn) == 4 and len({r.id for r in drawn}) == 4


def test_entropy_line_is_a_stable_uuid_per_record_and_sample() -> None:
    first = pg.entropy_line(42, "a/b", 0)
    assert first == pg.entropy_line(42, "a/b", 0)
    assert first != pg.entropy_line(42, "a/b", 1) != pg.entropy_line(43, "a/b", 0)
    assert len(first) == 36 and first[14] == "4"


def scripted(body: dict) -> Reply:
    """Short outlines for crime, truncated ones for horror, good ones otherwise."""
    prompt = body["messages"][-1]["content"]
    if "crime & mystery" in prompt:
        return Reply(text="A detective solves it.")
    if "horror & thriller" in prompt:
        return Reply(text=default_text(body, 1500), finish_reason="length")
    return Reply(text=default_text(body, 1500))


def test_sixty_record_run_drops_short_and_truncated_outlines(
    cli, workdir: Path, monkeypatch, line_validators
) -> None:
    with FakeOpenAI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        # No held-out split: the categories stay exactly balanced (the source's promise).
        result = cli("run", "--preset", "plot-generator", "--limit", "60", "--set", "eval.holdout=0", "--yes")
        assert server.schema_errors == []
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "runs/plot-generator/report.json").read_text())
    assert set(report["categories"].values()) == {10}  # balanced before filtering
    assert report["dropped"] == {
        "plot-generator: too short": 10,
        "plot-generator: truncated": 10,
    }
    rejected = read_jsonl(workdir / "runs/plot-generator/rejected.jsonl")
    assert {r["reason"] for r in rejected} == {"too short (22 < 1000 chars)", "truncated (hit max_tokens)"}
    train = read_dataset(workdir / "runs/plot-generator")
    assert len(train) == 40
    for line in train:
        assert not list(line_validators["chat"].iter_errors(line))
        user = line["messages"][1]["content"]
        assert user.startswith("Genre: ") and "\nLocation: " in user and "\nModifier: " in user
        assert "crime" not in user and "horror" not in user
    body = server.chat_requests[0]
    assert body["temperature"] == 1.0 and body["top_p"] == 1.0 and body["max_completion_tokens"] == 1000
    assert body["messages"][1]["content"].splitlines()[0].count("-") == 4  # the UUID line


def test_completion_style_validates(cli, fake_openai: FakeOpenAI, workdir: Path, line_validators) -> None:
    result = cli(
        "run", "--preset", "plot-generator", "--limit", "5", "--set", "format.style=completion", "--yes"
    )
    assert result.exit_code == 0, result.output
    lines = read_dataset(workdir / "runs/plot-generator")
    assert len(lines) == 5
    for line in lines:
        assert not list(line_validators["completion"].iter_errors(line))
        assert line["prompt"].endswith("\n\nPLOT OUTLINE:")
        assert line["completion"].startswith(" ") and line["completion"].endswith("\n\nEND")
