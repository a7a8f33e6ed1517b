"""End to end: `tune run` against the fake OpenAI server, in-process and as a console script."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import read_jsonl
from synthtune.core.testing import FakeOpenAI


def test_plot_generator_writes_a_valid_dataset_and_rerun_is_free(
    cli, fake_openai: FakeOpenAI, workdir: Path, line_validators
) -> None:
    result = cli("run", "--preset", "plot-generator", "--limit", "20", "--yes")
    assert result.exit_code == 0, result.output
    lines = read_jsonl(workdir / "runs" / "plot-generator" / "train.jsonl")
    valid = read_jsonl(workdir / "runs" / "plot-generator" / "valid.jsonl")  # the preset's 10% split
    assert len(lines) + len(valid) == 20 and valid
    for line in lines + valid:
        errors = [e.message for e in line_validators["chat"].iter_errors(line)]
        assert errors == []
    assert fake_openai.chat_count == 20
    first = (workdir / "runs" / "plot-generator" / "train.jsonl").read_bytes()
    paid = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())["cost_usd"]
    assert paid > 0

    again = cli("run", "--preset", "plot-generator", "--limit", "20", "--yes")
    assert again.exit_code == 0, again.output
    assert fake_openai.chat_count == 20  # zero new requests
    assert (workdir / "runs" / "plot-generator" / "train.jsonl").read_bytes() == first
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert report["cached"] == 20 and report["generated"] == 0
    # The dataset still cost what the first run paid, all of it paid earlier.
    assert report["cost_usd"] == paid
    assert report["cost"]["this_run"]["answers"] == 0 and report["cost"]["earlier_runs"]["answers"] == 20
    assert report["usage"]["completion_tokens"] > 0
