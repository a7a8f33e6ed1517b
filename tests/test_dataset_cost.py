"""Costs tell the truth: a dataset's cost counts the cached answers it reused (paid earlier) with the
split shown; unknown prices read "unknown"; estimates show only the trainer that will run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from synthtune.core.cli import run_cmd
from synthtune.core.cli.progress import describe
from synthtune.core.pipeline import RunStats
from synthtune.core.testing import FakeOpenAI

REPORT = Path("runs") / "plot-generator" / "report.json"

pytestmark = pytest.mark.usefixtures("encodings")


def report(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / REPORT).read_text())


def test_a_grown_run_counts_what_it_paid_and_what_earlier_runs_paid(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    assert cli("run", "--preset", "plot-generator", "--limit", "2", "--yes").exit_code == 0
    first = report(workdir)["cost_usd"]
    grown = cli("run", "--preset", "plot-generator", "--limit", "5", "--yes")
    assert grown.exit_code == 0, grown.output
    data = report(workdir)
    now, before = data["cost"]["this_run"], data["cost"]["earlier_runs"]
    assert (now["answers"], before["answers"]) == (3, 2)
    assert before["usd"] == pytest.approx(first)
    assert data["cost_usd"] == pytest.approx(now["usd"] + before["usd"])
    assert data["usage"]["prompt_tokens"] == now["prompt_tokens"] + before["prompt_tokens"]
    line = next(line for line in grown.output.splitlines() if line.strip().startswith("tokens"))
    assert line.endswith(
        f"cost ${data['cost_usd']:.4f}: this run ${now['usd']:.4f} for 3 answer(s), "
        f"earlier runs ${before['usd']:.4f} for 2 cached answer(s)"
    )


def test_the_html_report_shows_the_whole_cost_and_unknown_prices(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    assert cli("run", "--preset", "plot-generator", "--limit", "2", "--yes").exit_code == 0
    assert cli("run", "--preset", "plot-generator", "--limit", "2", "--yes").exit_code == 0
    assert cli("report", "latest", "--html", "priced.html").exit_code == 0
    html = (workdir / "priced.html").read_text()
    total = report(workdir)["cost_usd"]
    assert f'data-key="cost (USD)"><b>{total:.4f}</b>' in html
    assert 'data-key="paid earlier, 2 cached (USD)"' in html

    local = ["--set", "generate.model=my-local-llama", "--out", "runs/local"]
    assert cli("run", "--preset", "plot-generator", "--limit", "2", "--yes", *local).exit_code == 0
    assert cli("report", "runs/local", "--html", "local.html").exit_code == 0
    assert 'data-key="cost (USD)"><b>unknown</b>' in (workdir / "local.html").read_text()


def test_the_run_estimate_shows_training_only_with_train(
    cli, fake_openai: FakeOpenAI, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_cmd, "stdin_is_interactive", lambda: True)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    plain = cli("run", "--preset", "plot-generator", "--limit", "3", input="n\n")
    assert "estimate for plot-generator" in plain.output and "training" not in plain.output
    with_train = cli("run", "--preset", "plot-generator", "--limit", "3", "--train", input="n\n")
    assert "training (gpt-4.1-mini-2025-04-14)" in with_train.output


def test_a_local_trainer_has_no_training_cost(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    preset = workdir / "local-train.toml"
    text = (Path(__file__).parents[1] / "presets" / "plot-generator.toml").read_text()
    text = text.split("[train]")[0] + '[train]\nplugin = "trl"\nmodel = "Qwen/Qwen2.5-0.5B-Instruct"\n'
    preset.write_text(text.replace('name = "plot-generator"', 'name = "local-train"'))
    shown = cli("estimate", "--preset", str(preset), "--limit", "3", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["training"] is None
    openai = cli("estimate", "--preset", "plot-generator", "--limit", "3", "--json")
    assert json.loads(openai.output)["training"]["cost"] > 0  # the hosted trainer is priced


def test_the_progress_line_shows_no_dollars_before_the_first_answer() -> None:
    stats = RunStats(requests=4)
    assert "$" not in describe(stats, 1.0)[1]
    stats.generated, stats.cost = 1, 0.0012
    assert "$0.0012" in describe(stats, 1.0)[1]
    stats.cost_known = False
    assert "$" not in describe(stats, 1.0)[1]
