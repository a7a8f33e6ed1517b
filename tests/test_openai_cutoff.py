"""OpenAI's end of fine-tuning: one warning before 2027-01-06, a refusal before any upload from
that day (unless forced), and OpenAI's own refusals (closed for the organisation, model retired)
as one line naming the other trainers, with the dataset kept. The date comes from
$SYNTHTUNE_TODAY, never from the clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins.openai import deadline
from test_together_train import chat_file, error_lines

RUN = (
    "run",
    "--preset",
    "plot-generator",
    "--limit",
    "12",
    "--yes",
    "--train",
    "--set",
    "train.poll_interval=0.01",
)
ALTERNATIVES = "--set train.plugin=trl|together|fireworks"

# Every test here runs tune run or tune train, which count tokens.
pytestmark = pytest.mark.usefixtures("encodings")


@pytest.fixture(autouse=True)
def warn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a fresh process would: not warned yet."""
    monkeypatch.setattr(deadline, "_warned", False)


def test_before_the_cutoff_a_new_job_is_warned_about_once(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    train = chat_file(workdir / "train.jsonl")
    first = cli("train", str(train), "--model", "gpt-4.1-mini", "--yes", "--set", "poll_interval=0.01")
    assert first.exit_code == 0, first.output
    warnings = [line for line in first.stderr.splitlines() if line.startswith("warning: OpenAI")]
    assert warnings == [
        "warning: OpenAI stops accepting new fine-tuning jobs on 2027-01-06 (35 day(s) left; models shut down "
        f"2027-01-14); after that, train elsewhere with {ALTERNATIVES} (tune run) or --backend "
        "trl|together|fireworks (tune train)"
    ]
    second = cli(
        "train",
        str(train),
        "--model",
        "gpt-4.1-mini",
        "--suffix",
        "b",
        "--yes",
        "--set",
        "poll_interval=0.01",
    )
    assert second.exit_code == 0 and "warning: OpenAI" not in second.stderr  # once per process
    assert len(fake_openai.ft_jobs) == 2


@pytest.mark.parametrize("today", ["2027-01-06", "2027-03-01"])
def test_from_the_cutoff_nothing_is_uploaded_unless_forced(
    cli, fake_openai: FakeOpenAI, workdir: Path, monkeypatch, today: str
) -> None:
    monkeypatch.setenv("SYNTHTUNE_TODAY", today)
    train = chat_file(workdir / "train.jsonl")
    refused = cli("train", str(train), "--model", "gpt-4.1-mini", "--yes")
    assert refused.exit_code == 1
    (line,) = error_lines(refused)
    assert line.startswith(
        f"error: OpenAI stopped accepting new fine-tuning jobs on 2027-01-06 (today is {today}): nothing was uploaded"
    )
    assert ALTERNATIVES in line and "--set ignore_cutoff=true" in line
    assert fake_openai.files == {} and fake_openai.ft_job_requests == []
    forced = cli("train", str(train), "--model", "gpt-4.1-mini", "--yes", "--set", "ignore_cutoff=true",
                 "--set", "poll_interval=0.01")  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert len(fake_openai.ft_jobs) == 1


def test_run_train_after_the_cutoff_keeps_the_dataset_and_another_trainer_takes_it(
    cli, fake_openai: FakeOpenAI, fake_together, workdir: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SYNTHTUNE_TODAY", "2027-01-07")
    refused = cli(*RUN)
    assert refused.exit_code == 1
    (line,) = error_lines(refused)
    assert "OpenAI stopped accepting new fine-tuning jobs on 2027-01-06" in line and ALTERNATIVES in line
    out = workdir / "runs" / "plot-generator"
    lines = [len((out / name).read_text().splitlines()) for name in ("train.jsonl", "valid.jsonl")]
    assert sum(lines) == 12 and lines[1] >= 1  # the dataset is there, with its validation split
    assert fake_openai.files == {}
    chats = fake_openai.chat_count
    moved = cli(*RUN, "--set", "train.plugin=together")
    assert moved.exit_code == 0, moved.output
    assert fake_openai.chat_count == chats  # nothing generated twice
    assert len(fake_together.jobs) == 1


@pytest.mark.parametrize(
    ("status", "message", "reason"),
    [
        (403, "This organization is no longer allowed to create fine-tuning jobs.",
         "Fine-tuning is closed for this organisation"),
        (400, "Model gpt-4.1-mini-2025-04-14 has been retired and can no longer be fine-tuned.",
         "The model is retired or no longer takes fine-tuning"),
    ],
)  # fmt: skip
def test_openais_refusals_name_the_alternatives_and_keep_the_dataset(
    cli, fake_openai: FakeOpenAI, workdir: Path, status: int, message: str, reason: str
) -> None:
    fake_openai.ft_refusal = (status, message)
    result = cli(*RUN)
    assert result.exit_code == 1
    (line,) = error_lines(result)
    train = Path("runs") / "plot-generator" / "train.jsonl"
    assert line.startswith(
        f"error: OpenAI refused to create a fine-tuning job for gpt-4.1-mini-2025-04-14 (HTTP {status}): "
        f"{message.rstrip('.')}. {reason}; the dataset is kept ({train}): train elsewhere with {ALTERNATIVES}"
    )
    assert "2027-01-14" in line and "Traceback" not in result.output
    assert (workdir / train).is_file() and fake_openai.ft_jobs == {}


def test_a_bad_date_override_is_one_line(cli, fake_openai: FakeOpenAI, workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("SYNTHTUNE_TODAY", "next tuesday")
    train = chat_file(workdir / "train.jsonl")
    result = cli("train", str(train), "--model", "gpt-4.1-mini", "--yes")
    assert (
        result.exit_code == 2
        and "SYNTHTUNE_TODAY='next tuesday': expected a date like 2027-01-06" in result.stderr
    )


def test_after_the_cutoff_the_refusal_comes_before_any_key_is_needed(cli, workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("SYNTHTUNE_TODAY", "2027-02-01")  # and no OPENAI_API_KEY, no OPENAI_BASE_URL
    train = chat_file(workdir / "train.jsonl")
    result = cli("train", str(train), "--model", "gpt-4.1-mini", "--yes")
    assert result.exit_code == 1 and "OpenAI stopped accepting new fine-tuning jobs" in result.stderr
    assert "OPENAI_API_KEY" not in result.stderr
