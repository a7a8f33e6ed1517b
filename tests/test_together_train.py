"""The `together` trainer against the Together stand-in: `tune run --train`, DPO, bad input,
refusals, failures, a lost connection, cancel, and `tune try` on the tuned model."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from conftest import PREFERENCE_PAIRS, read_jsonl
from synthtune.core.jobs.models import JobRecord
from synthtune.core.store import RunStore
from synthtune.core.testing import FakeOpenAI
from synthtune.core.testing.together import FakeTogether

RUN = ("run", "--preset", "plot-generator", "--limit", "12", "--yes", "--train")
TOGETHER = ("--set", "train.plugin=together", "--set", "train.poll_interval=0.01")
FAST = ("--set", "poll_interval=0.01")


def records(workdir: Path) -> list[JobRecord]:
    store = RunStore(workdir / "synthtune.db")
    try:
        return [JobRecord.model_validate_json(v) for _, v in store.kv_items("together", "job:")]
    finally:
        store.close()


def chat_file(path: Path, n: int = 12, **change: object) -> Path:
    lines = [
        {
            "messages": [
                {"role": "system", "content": "You write plots."},
                {"role": "user", "content": f"Genre: drama {i}"},
                {"role": "assistant", "content": f"A plot outline number {i}."},
            ]
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_run_with_train_on_together_uploads_creates_one_job_and_follows_it(
    cli, fake_openai: FakeOpenAI, fake_together: FakeTogether, workdir: Path
) -> None:
    result = cli(*RUN, *TOGETHER)
    assert result.exit_code == 0, result.output
    train = workdir / "runs" / "plot-generator" / "train.jsonl"
    valid = workdir / "runs" / "plot-generator" / "valid.jsonl"
    # 12 records (past the held-out ones), and the preset's seeded 10% validation split: both
    # files go to Together.
    assert (len(read_jsonl(train)), len(read_jsonl(valid))) == (10, 2)
    by_content = {fake_together.file_content(f): f for f in fake_together.files}
    file_id, valid_id = by_content[train.read_bytes()], by_content[valid.read_bytes()]
    assert {fake_together.files[f]["purpose"] for f in (file_id, valid_id)} == {"fine-tune"}
    (body,) = fake_together.job_requests
    assert body["model"] == "Qwen/Qwen3-8B" and body["n_epochs"] == 3 and body["suffix"] == "plot-generator"
    assert body["training_file"] == file_id
    assert body["validation_file"] == valid_id and body["n_evals"] == 1
    assert body["training_method"] == {"method": "sft", "train_on_inputs": "auto"}
    assert "training_type" not in body  # Together's default: LoRA
    (job_id,) = fake_together.jobs
    job = fake_together.jobs[job_id]
    assert job["status"] == "completed"
    tuned = job["model_output_name"]
    assert f"job {job_id} (together): succeeded" in result.stdout
    assert f"fine-tuned model  {tuned}" in result.stdout
    assert (
        f"evaluate it       tune eval --preset plot-generator --model base --model tuned={tuned}"
        in result.stdout
    )
    assert (
        f"base URL          {fake_together.base_url} (OpenAI-compatible; key from $TOGETHER_API_KEY)"
        in result.stdout
    )
    assert "cost              $" in result.stdout
    assert "Training started" in result.stderr and result.stderr.count("Fine tune request created") == 1
    (record,) = records(workdir)
    assert (record.job_id, record.status, record.fine_tuned_model) == (job_id, "succeeded", tuned)
    assert record.endpoint == fake_together.base_url and record.api_key_env == "TOGETHER_API_KEY"

    # The printed `tune try` command works as printed (with a real input).
    (line,) = [line for line in result.stdout.splitlines() if "try it" in line]
    command = shlex.split(line.split("try it", 1)[1].strip())
    assert command[:2] == ["tune", "try"] and command[-1] == "YOUR INPUT"
    answer = cli(*command[1:-1], "Genre: horror\nLocation: Japan\nPeriod: the 1960s\nModifier: gritty")
    assert answer.exit_code == 0, answer.output
    assert answer.stdout.startswith("tuned answer to: Genre: horror")
    (asked,) = fake_together.chat_requests
    assert asked["model"] == tuned and asked["messages"][0]["role"] == "system"  # the preset's framing

    again = cli(*RUN, *TOGETHER)
    assert again.exit_code == 0 and tuned in again.stdout
    assert len(fake_together.job_requests) == 1 and len(fake_together.files) == 2  # nothing new


def test_a_preference_file_trains_with_dpo(cli, fake_together: FakeTogether, workdir: Path) -> None:
    result = cli(
        "train", str(PREFERENCE_PAIRS), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B",
        "--set", "dpo_beta=0.2", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (body,) = fake_together.job_requests
    assert body["training_method"] == {"method": "dpo", "dpo_beta": 0.2}
    (file_id,) = fake_together.files
    assert fake_together.file_content(file_id) == PREFERENCE_PAIRS.read_bytes()
    (record,) = records(workdir)
    assert record.method == "dpo" and record.status == "succeeded"
    wrong = cli("train", str(PREFERENCE_PAIRS), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B",
                "--set", "method=supervised")  # fmt: skip
    assert wrong.exit_code == 2 and "a preference dataset needs method = 'dpo'" in wrong.stderr


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([{"prompt": "a", "completion": "b"}], "line 1: prompt/completion lines are not taken here"),
        (
            [{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                           {"role": "assistant", "content": "c"}]}],
            "line 1: messages[1]: after the system message, user and assistant turns must alternate",
        ),
        (
            [{"messages": [{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]}],
            "line 1: messages[1].role 'tool' is not one of system, user, assistant",
        ),
        (
            [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
              "tools": []}],
            "line 1: key(s) ['tools'] are not taken by Together",
        ),
        ([], "0 example(s); Together needs at least 1; nothing was uploaded"),
    ],
)  # fmt: skip
def test_a_dataset_in_the_wrong_format_is_one_line_before_any_upload(
    cli, fake_together: FakeTogether, workdir: Path, lines: list[dict], expected: str
) -> None:
    bad = workdir / "bad.jsonl"
    bad.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = cli("train", str(bad), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B", *FAST)
    assert result.exit_code == 1
    (line,) = error_lines(result)
    assert expected in line and str(bad) in line and "Traceback" not in result.output
    assert fake_together.files == {} and fake_together.job_requests == []


def test_a_refusal_is_the_providers_message_in_one_line(
    cli, fake_together: FakeTogether, workdir: Path
) -> None:
    train = chat_file(workdir / "train.jsonl")
    refused = cli("train", str(train), "--backend", "together", "--yes", "--model", "Qwen/Qwen9-1T", *FAST)
    assert refused.exit_code == 1
    (line,) = error_lines(refused)
    assert line == (
        "error: Together refused to create a fine-tuning job for Qwen/Qwen9-1T (HTTP 400): "
        "Model Qwen/Qwen9-1T is not supported for fine-tuning"
    )
    (record,) = records(workdir)
    assert record.status == "refused" and record.job_id is None
    fixed = cli("train", str(train), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B", *FAST)
    assert fixed.exit_code == 0 and len(fake_together.jobs) == 1
    assert len(fake_together.files) == 1  # the upload was reused


def test_a_job_failing_on_the_provider_gives_its_reason_verbatim(
    cli, fake_together: FakeTogether, workdir: Path
) -> None:
    fake_together.fail_with = (
        "Training data contains 3 examples longer than the model's context (32768 tokens)"
    )
    train = chat_file(workdir / "train.jsonl")
    result = cli("train", str(train), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B", *FAST)
    assert result.exit_code == 1
    (job_id,) = fake_together.jobs
    (line,) = error_lines(result)
    assert line == f"error: job {job_id} failed: {fake_together.fail_with}"
    (record,) = records(workdir)
    assert record.status == "failed" and record.error == fake_together.fail_with
    fake_together.fail_with = None
    rerun = cli("train", str(train), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B", *FAST)
    assert rerun.exit_code == 0 and "ended failed; creating a new one" in rerun.stderr
    assert len(fake_together.jobs) == 2


def test_a_lost_connection_while_polling_resumes_with_tune_jobs_wait(
    cli, fake_together: FakeTogether, workdir: Path
) -> None:
    train = chat_file(workdir / "train.jsonl")
    fake_together.drop_polls = 100
    lost = cli("train", str(train), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B", *FAST,
               "--set", "max_retries=0")  # fmt: skip
    assert lost.exit_code == 1
    (job_id,) = fake_together.jobs
    (line,) = error_lines(lost)
    assert f"lost the connection to {fake_together.base_url}" in line
    assert f"job {job_id} is recorded" in line and "tune jobs wait" in line
    fake_together.drop_polls = 0
    resumed = cli("jobs", "wait", "--poll", "0.01")
    assert resumed.exit_code == 0, resumed.output
    assert f"fine-tuned model: {fake_together.jobs[job_id]['model_output_name']}" in resumed.stdout
    assert "try it: tune try" in resumed.stdout and "--api-key-env TOGETHER_API_KEY" in resumed.stdout
    assert list(fake_together.jobs) == [job_id] and len(fake_together.job_requests) == 1
    (record,) = records(workdir)
    assert record.status == "succeeded"


def test_jobs_show_events_cancel_and_list(cli, fake_together: FakeTogether, workdir: Path) -> None:
    train = chat_file(workdir / "train.jsonl")
    created = cli(
        "train", str(train), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B", "--no-wait"
    )
    assert created.exit_code == 0, created.output
    (job_id,) = fake_together.jobs
    assert f"job {job_id} (together): queued" in created.stdout
    shown = cli("jobs", "show", job_id)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == job_id
    events = cli("jobs", "events", job_id)
    assert events.stdout.splitlines()[0].endswith("Fine tune request created")
    listed = cli("jobs", "list")
    assert listed.exit_code == 0 and job_id in listed.stdout and "together" in listed.stdout
    cancelled = cli("jobs", "cancel", job_id)
    assert cancelled.exit_code == 0 and "cancelling" in cancelled.stdout
    waited = cli("jobs", "wait", job_id, "--poll", "0.01")
    assert waited.exit_code == 1 and f"error: job {job_id} cancelled" in waited.stderr
    (record,) = records(workdir)
    assert record.status == "cancelled"
    assert "cancelled" in cli("jobs", "list", "--local").stdout
    again = cli("jobs", "cancel", job_id)
    assert again.exit_code == 1 and "(HTTP 400)" in again.stderr and "already cancelled" in again.stderr


def test_a_missing_key_stops_before_anything_is_uploaded(
    cli, fake_together: FakeTogether, workdir: Path, monkeypatch
) -> None:
    monkeypatch.delenv("TOGETHER_API_KEY")
    train = chat_file(workdir / "train.jsonl")
    result = cli("train", str(train), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B")
    assert result.exit_code == 2 and "TOGETHER_API_KEY is not set" in result.stderr
    assert fake_together.files == {} and fake_together.unauthorized == 0
    monkeypatch.setenv("TOGETHER_API_KEY", "a-wrong-key")
    wrong = cli("train", str(train), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B")
    assert wrong.exit_code == 1 and "(HTTP 401): Invalid API key provided" in wrong.stderr
    assert fake_together.files == {}


def test_a_hosted_job_is_not_started_without_yes_when_nobody_can_confirm(
    cli, fake_together: FakeTogether, workdir: Path
) -> None:
    train = chat_file(workdir / "train.jsonl")
    result = cli("train", str(train), "--backend", "together", "--model", "Qwen/Qwen3-8B")
    assert result.exit_code == 2
    assert error_lines(result) == [
        "error: a together fine-tuning job for Qwen/Qwen3-8B is billed by together (synthtune has no price "
        "for it): pass --yes to start it without a prompt"
    ]
    assert fake_together.files == {}
