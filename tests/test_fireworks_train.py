"""The `fireworks` trainer against the Fireworks stand-in: `tune run --train` (dataset, supervised
job, success, `tune try`), DPO, too-small datasets, refusals, failures, cancel."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from conftest import PREFERENCE_PAIRS
from synthtune.core.jobs.models import JobRecord
from synthtune.core.store import RunStore
from synthtune.core.testing import FakeOpenAI
from synthtune.core.testing.fireworks import FakeFireworks
from test_together_train import chat_file, error_lines

RUN = ("run", "--preset", "plot-generator", "--limit", "12", "--yes", "--train")
FIREWORKS = ("--set", "train.plugin=fireworks", "--set", "train.poll_interval=0.01")
MODEL = "accounts/fireworks/models/qwen3-8b"
FAST = ("--set", "poll_interval=0.01")


def records(workdir: Path) -> list[JobRecord]:
    store = RunStore(workdir / "synthtune.db")
    try:
        return [JobRecord.model_validate_json(v) for _, v in store.kv_items("fireworks", "job:")]
    finally:
        store.close()


def test_run_with_train_on_fireworks_creates_a_dataset_and_one_job(
    cli, fake_openai: FakeOpenAI, fake_fireworks: FakeFireworks, workdir: Path
) -> None:
    result = cli(*RUN, *FIREWORKS)
    assert result.exit_code == 0, result.output
    train = workdir / "runs" / "plot-generator" / "train.jsonl"
    (dataset,) = fake_fireworks.datasets
    assert dataset.startswith(f"accounts/{fake_fireworks.account}/datasets/synthtune-")
    assert fake_fireworks.datasets[dataset]["_content"] == train.read_bytes()
    # 12 records (past the held-out ones): the preset's seeded validation split took two, too few
    # for Fireworks (3), so the job trains on train.jsonl alone.
    lines = train.read_text().splitlines()
    assert fake_fireworks.datasets[dataset]["exampleCount"] == str(len(lines)) == "10"
    ((collection, body, query),) = fake_fireworks.job_requests
    assert collection == "supervisedFineTuningJobs"
    assert body["dataset"] == dataset and body["baseModel"] == MODEL and body["epochs"] == 3
    assert body["outputModel"].startswith("plot-generator-")
    (name,) = fake_fireworks.jobs
    assert name.endswith("/" + query["supervisedFineTuningJobId"])
    tuned = f"accounts/{fake_fireworks.account}/models/{body['outputModel']}"
    assert f"job {name} (fireworks): succeeded" in result.stdout
    assert f"fine-tuned model  {tuned}" in result.stdout
    assert (
        f"{fake_fireworks.base_url}/inference/v1 (OpenAI-compatible; key from $FIREWORKS_API_KEY)"
        in result.stdout
    )
    assert f"cost              ${len(lines) * 0.01:.2f}" in result.stdout  # the job's estimatedCost
    assert "running [RUNNING] 80%" in result.stderr
    (record,) = records(workdir)
    assert (record.job_id, record.status, record.fine_tuned_model) == (name, "succeeded", tuned)
    assert record.extra == {"account_id": fake_fireworks.account}

    (line,) = [line for line in result.stdout.splitlines() if "try it" in line]
    command = shlex.split(line.split("try it", 1)[1].strip())
    answer = cli(*command[1:-1], "Genre: horror\nLocation: Japan\nPeriod: the 1960s\nModifier: gritty")
    assert answer.exit_code == 0, answer.output
    assert answer.stdout.startswith("tuned answer to: Genre: horror")
    assert fake_fireworks.chat_requests[0]["model"] == tuned

    again = cli(*RUN, *FIREWORKS)
    assert again.exit_code == 0 and tuned in again.stdout
    assert len(fake_fireworks.job_requests) == 1 and fake_fireworks.uploads == [dataset]


def test_a_preference_file_trains_a_dpo_job(cli, fake_fireworks: FakeFireworks, workdir: Path) -> None:
    result = cli(
        "train", str(PREFERENCE_PAIRS), "--backend", "fireworks", "--yes", "--model", MODEL,
        "--set", "dpo_beta=0.2", "--set", "suffix=pitches", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ((collection, body, _),) = fake_fireworks.job_requests
    assert collection == "dpoJobs"
    assert body["lossConfig"] == {"method": "DPO", "dpo": {"beta": 0.2}}
    assert body["trainingConfig"]["baseModel"] == MODEL
    assert body["trainingConfig"]["outputModel"].startswith("pitches-")
    (name,) = fake_fireworks.jobs
    assert "/dpoJobs/" in name and fake_fireworks.dataset_lines(body["dataset"])[0]["preferred_output"]
    (record,) = records(workdir)
    assert record.method == "dpo" and record.status == "succeeded"
    out_of_range = cli("train", str(PREFERENCE_PAIRS), "--backend", "fireworks", "--yes", "--model", MODEL,
                       "--set", "dpo_beta=0.7")  # fmt: skip
    assert out_of_range.exit_code == 2 and "dpo_beta" in out_of_range.stderr


def test_too_small_or_wrong_datasets_are_one_line_before_any_upload(
    cli, fake_fireworks: FakeFireworks, workdir: Path
) -> None:
    small = chat_file(workdir / "small.jsonl", n=2)
    result = cli("train", str(small), "--backend", "fireworks", "--yes", "--model", MODEL)
    assert result.exit_code == 1
    (line,) = error_lines(result)
    assert line == f"error: {small}: 2 example(s); Fireworks needs at least 3; nothing was uploaded"
    broken = workdir / "broken.jsonl"
    broken.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n' * 3)
    no_answer = cli("train", str(broken), "--backend", "fireworks", "--yes", "--model", MODEL)
    assert no_answer.exit_code == 1 and "line 1: no assistant message (Fireworks format)" in no_answer.stderr
    assert fake_fireworks.datasets == {} and fake_fireworks.job_requests == []


def test_refusals_and_failures_are_the_providers_words(
    cli, fake_fireworks: FakeFireworks, workdir: Path
) -> None:
    train = chat_file(workdir / "train.jsonl")
    refused = cli(
        "train",
        str(train),
        "--backend",
        "fireworks",
        "--yes",
        "--model",
        "accounts/fireworks/models/giant",
        *FAST,
    )
    assert refused.exit_code == 1
    (line,) = error_lines(refused)
    assert line == (
        "error: Fireworks refused to create a fine-tuning job for accounts/fireworks/models/giant "
        "(HTTP 400): model accounts/fireworks/models/giant is not tunable"
    )
    fake_fireworks.fail_with = "dataset row 7 exceeds maxContextLength"
    failed = cli("train", str(train), "--backend", "fireworks", "--yes", "--model", MODEL, *FAST)
    assert failed.exit_code == 1
    (name,) = fake_fireworks.jobs
    assert error_lines(failed) == [f"error: job {name} failed: dataset row 7 exceeds maxContextLength"]
    fake_fireworks.fail_with = None
    retried = cli("train", str(train), "--backend", "fireworks", "--yes", "--model", MODEL, *FAST)
    assert retried.exit_code == 0, retried.output
    assert sorted(n.rsplit("-", 1)[1] for n in fake_fireworks.jobs) == ["1", "2"]  # a new job, a new id
    assert len(fake_fireworks.uploads) == 1  # one dataset, reused


def test_a_missing_account_is_one_line(
    cli, fake_fireworks: FakeFireworks, workdir: Path, monkeypatch
) -> None:
    monkeypatch.delenv("FIREWORKS_ACCOUNT_ID")
    train = chat_file(workdir / "train.jsonl")
    result = cli("train", str(train), "--backend", "fireworks", "--yes", "--model", MODEL)
    assert result.exit_code == 2 and "set FIREWORKS_ACCOUNT_ID or train.account_id" in result.stderr
    ok = cli("train", str(train), "--backend", "fireworks", "--yes", "--model", MODEL, "--set",
             f"account_id={fake_fireworks.account}", *FAST)  # fmt: skip
    assert ok.exit_code == 0, ok.output


def test_cancel_and_show(cli, fake_fireworks: FakeFireworks, workdir: Path) -> None:
    train = chat_file(workdir / "train.jsonl")
    created = cli("train", str(train), "--backend", "fireworks", "--yes", "--model", MODEL, "--no-wait")
    assert created.exit_code == 0, created.output
    (name,) = fake_fireworks.jobs
    shown = cli("jobs", "show", name)
    assert json.loads(shown.stdout)["name"] == name
    cancelled = cli("jobs", "cancel", name)
    assert cancelled.exit_code == 0 and fake_fireworks.cancels == [name]
    assert "cancelled" in cancelled.stdout  # read back after the request
    waited = cli("jobs", "wait", name, "--poll", "0.01")
    assert waited.exit_code == 1 and f"error: job {name} cancelled" in waited.stderr
    (record,) = records(workdir)
    assert record.status == "cancelled"
    assert cli("jobs", "events", name).stdout == ""  # Fireworks lists no events for these jobs
