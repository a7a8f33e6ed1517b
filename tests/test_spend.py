"""Spend control: `tune estimate` against hand-counted tokens x prices, the confirmation prompt,
--max-cost, and actual spend from usage x price per generation and per run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import tiktoken
from conftest import read_jsonl
from synthtune.core.cli import run_cmd
from synthtune.core.spend import default_epochs
from synthtune.core.testing import FakeOpenAI, Reply, default_text

PRICE_IN, PRICE_OUT, PRICE_TRAIN = 0.40, 1.60, 5.00  # gpt-4.1-mini, USD per 1M (core/prices.toml)
MAX_TOKENS = 1000  # the plot-generator preset's max_tokens


def chat_tokens(messages: list[dict[str, Any]]) -> int:
    """The OpenAI cookbook's count: 3 per message, its values' tokens, 3 to prime the reply."""
    encoding = tiktoken.get_encoding("o200k_base")  # gpt-4.1-mini's encoding
    return 3 + sum(3 + sum(len(encoding.encode(v)) for v in m.values()) for m in messages)


def usage_dollars(bodies: list[dict[str, Any]]) -> float:
    """What the fake server's usage for these bodies costs at list price."""
    total = 0.0
    for body in bodies:
        usage = FakeOpenAI.completion(body, Reply(text=default_text(body)))["usage"]
        total += (usage["prompt_tokens"] * PRICE_IN + usage["completion_tokens"] * PRICE_OUT) / 1e6
    return total


def estimate(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("estimate", "--preset", "plot-generator", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.usefixtures("encodings")
def test_estimate_equals_hand_counted_tokens_times_prices(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    done = cli("run", "--preset", "plot-generator", "--limit", "6", "--yes")
    assert done.exit_code == 0, done.output
    bodies = fake_openai.chat_requests  # exactly the requests a run of 6 records sends
    input_tokens = sum(chat_tokens(body["messages"]) for body in bodies)

    fresh = estimate(cli, "--limit", "6", "--store", "empty.db")
    assert fresh["records"] == 6
    assert fresh["to_send"]["requests"] == 6 and fresh["answered"]["requests"] == 0
    assert fresh["to_send"]["input_tokens"] == input_tokens
    assert fresh["to_send"]["output_tokens"] == 6 * MAX_TOKENS
    online = (input_tokens * PRICE_IN + 6 * MAX_TOKENS * PRICE_OUT) / 1e6
    assert fresh["to_send"]["cost_online"] == pytest.approx(online)
    assert fresh["to_send"]["cost_batch"] == pytest.approx(online / 2)
    assert "max_tokens of 6 request(s), a ceiling" in fresh["output_basis"]
    assert not (workdir / "empty.db").exists()  # estimating never creates a run store

    # Against the run's store: the 6 answered requests are shown apart, nothing is left to send.
    known = estimate(cli, "--limit", "8")
    assert known["answered"]["requests"] == 6 and known["to_send"]["requests"] == 2
    assert known["answered"]["input_tokens"] == input_tokens
    assert known["total"]["requests"] == 8
    assert (
        known["total"]["input_tokens"] == known["answered"]["input_tokens"] + known["to_send"]["input_tokens"]
    )

    text = cli("estimate", "--preset", "plot-generator", "--limit", "6", "--store", "empty.db")
    assert text.exit_code == 0, text.output
    assert f"online ${online:,.4f} <- this run, batch ${online / 2:,.4f}" in text.output


@pytest.mark.usefixtures("encodings")
def test_training_estimate_counts_the_formatted_dataset(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    done = cli("run", "--preset", "plot-generator", "--limit", "5", "--yes")
    assert done.exit_code == 0, done.output
    lines = read_jsonl(workdir / "runs" / "plot-generator" / "train.jsonl")
    per_epoch = sum(chat_tokens(line["messages"]) for line in lines)

    result = estimate(cli, "--limit", "5", "--train-model", "gpt-4.1-mini")
    training = result["training"]
    assert training["examples"] == 5 and training["tokens_per_epoch"] == per_epoch
    assert training["epochs"] == 20 == default_epochs(5)  # auto: about 100 examples seen in all
    assert training["epochs_from"] == "OpenAI auto, expected"
    assert training["cost"] == pytest.approx(per_epoch * 20 * PRICE_TRAIN / 1e6)

    chosen = estimate(cli, "--limit", "5", "--train-model", "gpt-4.1-mini", "--epochs", "3")["training"]
    assert chosen["epochs"] == 3 and chosen["training_tokens"] == per_epoch * 3
    # Without --train-model the preset's own [train] stage is estimated.
    from_preset = estimate(cli, "--limit", "5")["training"]
    assert from_preset["model"] == "gpt-4.1-mini-2025-04-14" and from_preset["tokens_per_epoch"] == per_epoch


def test_default_epochs_follow_openai_auto() -> None:
    assert [default_epochs(n) for n in (1, 10, 34, 100, 8_000, 8_334, 100_000)] == [25, 10, 3, 3, 3, 2, 1]


@pytest.mark.usefixtures("encodings")
def test_max_cost_below_the_estimate_stops_before_the_cap(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    full = estimate(cli, "--limit", "20")["to_send"]["cost_online"]
    cap = full / 4
    result = cli("run", "--preset", "plot-generator", "--limit", "20", "--yes", "--max-cost", f"{cap:.6f}")
    assert result.exit_code == run_cmd.EXIT_COST_CAP, result.output
    assert "stopped at the cost cap" in result.output

    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    sent = fake_openai.chat_count
    assert 0 < sent < 20
    assert report["status"] == "capped"
    assert report["generated"] == sent and report["not_sent_cost_cap"] == 20 - sent
    # The spend: usage x price, computed here from the fake server's own usage.
    spend = usage_dollars(fake_openai.chat_requests)
    assert report["cost_usd"] == pytest.approx(spend, abs=1e-6)
    assert spend <= cap
    with sqlite3.connect(workdir / "synthtune.db") as conn:
        assert conn.execute("SELECT SUM(cost) FROM generations").fetchone()[0] == pytest.approx(spend)
    # Every admitted request fit under the cap by its estimate (max_tokens as the output).
    per_request = full / 20
    assert sent == pytest.approx(cap / per_request, abs=1.01)
    assert len(read_jsonl(workdir / "runs" / "plot-generator" / "train.jsonl")) == sent

    # A higher cap goes on from there: answers already paid for are reused.
    more = cli("run", "--preset", "plot-generator", "--limit", "20", "--yes", "--max-cost", f"{full:.6f}")
    assert more.exit_code == 0, more.output
    assert fake_openai.chat_count == 20 and fake_openai.answered_twice() == []
    assert "cost cap   $" in more.output and "not reached" in more.output


def test_spend_is_recorded_per_generation_and_per_run(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    result = cli("run", "--preset", "plot-generator", "--limit", "7", "--yes")
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    spend = usage_dollars(fake_openai.chat_requests)
    assert report["cost_usd"] == pytest.approx(spend, abs=1e-6) and report["pricing"] == "online"
    assert f"cost ${report['cost_usd']:.4f}" in result.output
    with sqlite3.connect(workdir / "synthtune.db") as conn:
        costs = [row[0] for row in conn.execute("SELECT cost FROM generations")]
    assert len(costs) == 7 and all(c > 0 for c in costs)


@pytest.mark.usefixtures("encodings")
def test_unknown_prices_show_as_unknown_never_zero(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    local = ["--set", "generate.model=my-local-llama"]
    result = cli("run", "--preset", "plot-generator", "--limit", "3", "--yes", *local)
    assert result.exit_code == 0, result.output
    assert "cost unknown (no price for the model)" in result.output
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert report["cost_usd"] is None
    with sqlite3.connect(workdir / "synthtune.db") as conn:
        assert [row[0] for row in conn.execute("SELECT cost FROM generations")] == [None] * 3
    # A cached rerun pays nothing, but its dataset's cost is still unknown, not $0.
    again = cli("run", "--preset", "plot-generator", "--limit", "3", "--yes", *local)
    assert again.exit_code == 0, again.output
    assert "$0.0000" not in again.output and "cost unknown (no price for the model)" in again.output
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert report["cost_usd"] is None and report["cost"]["earlier_runs"]["usd"] is None
    assert report["cost"]["earlier_runs"]["unpriced"] == 3

    shown = cli("estimate", "--preset", "plot-generator", "--limit", "5", *local)
    assert "online unknown (no price)" in shown.output
    capped = cli("run", "--preset", "plot-generator", "--limit", "3", "--yes", "--max-cost", "1", *local)
    assert capped.exit_code == 2 and "no price for model 'my-local-llama'" in capped.output


@pytest.mark.usefixtures("encodings")
def test_confirmation_prompt_on_a_terminal(
    cli, fake_openai: FakeOpenAI, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_cmd, "stdin_is_interactive", lambda: True)
    refused = cli("run", "--preset", "plot-generator", "--limit", "4", input="n\n")
    assert refused.exit_code == 1
    assert "estimate for plot-generator" in refused.output and "Spend about $" in refused.output
    assert "training" not in refused.output  # no --train: no training cost in the question
    assert fake_openai.chat_count == 0
    assert not (workdir / "synthtune.db").exists()  # saying no writes nothing

    accepted = cli("run", "--preset", "plot-generator", "--limit", "4", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert fake_openai.chat_count == 4

    again = cli("run", "--preset", "plot-generator", "--limit", "4")  # nothing to spend: no question
    assert again.exit_code == 0, again.output
    assert "Spend about" not in again.output and "nothing to spend" in again.output


@pytest.mark.usefixtures("encodings")
def test_without_a_terminal_a_run_that_spends_needs_yes(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    refused = cli("run", "--preset", "plot-generator", "--limit", "3")
    assert refused.exit_code == 2
    assert "pass --yes" in refused.output and "3 request(s)" in refused.output
    assert fake_openai.chat_count == 0

    assert cli("run", "--preset", "plot-generator", "--limit", "3", "--yes").exit_code == 0
    cached = cli("run", "--preset", "plot-generator", "--limit", "3")  # everything cached: no spend
    assert cached.exit_code == 0, cached.output
    assert fake_openai.chat_count == 3


@pytest.mark.usefixtures("encodings")
def test_max_cost_in_batch_mode_admits_requests_at_the_batch_price(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    batch = ["--set", "generate.mode=batch", "--set", "generate.batch_poll_interval=0.02"]
    full = estimate(cli, "--limit", "10", *batch)["to_send"]["cost_batch"]
    cap = full / 2
    options = ["--limit", "10", "--yes", "--max-cost", f"{cap:.6f}", *batch]
    result = cli("run", "--preset", "plot-generator", *options)
    assert result.exit_code == run_cmd.EXIT_COST_CAP, result.output
    (batch_id,) = fake_openai.batches
    lines = fake_openai.batch_lines(batch_id)
    assert len(lines) == pytest.approx(10 / 2, abs=1.01)  # the cap holds about half the estimate
    spend = usage_dollars([line["body"] for line in lines]) / 2  # the batch discount
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert report["cost_usd"] == pytest.approx(spend, abs=1e-6) and spend <= cap
    assert report["not_sent_cost_cap"] == 10 - len(lines)


@pytest.mark.parametrize("batch", [False, True])
def test_a_runs_pricer_prices_answers_as_usage_cost_does(batch: bool) -> None:
    from synthtune.core.models import Usage
    from synthtune.core.spend import AnswerPricer, usage_cost

    pricer = AnswerPricer(batch=batch)
    usage = Usage(prompt_tokens=1234, completion_tokens=567)
    for model in [
        "gpt-4.1-mini",
        "gpt-4.1-mini-2025-04-14",
        "ft:gpt-4.1-mini:acme::x1",
        "no-such-model",
        None,
    ]:
        for _ in range(2):  # the second time from its cache
            assert pricer(model, usage) == usage_cost(model, usage, batch=batch)
    assert pricer("gpt-4.1-mini", usage) is not None and pricer("no-such-model", usage) is None
