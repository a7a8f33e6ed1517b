"""`tune train` with the OpenAI trainer against the fake server: upload, job, events, reattach,
refusal; `tune jobs`; `tune run --train`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import BaseModel
from synthtune.core import hookimpl
from synthtune.core.models import DatasetFiles, RunContext, TrainingJob
from synthtune.core.store import RunStore
from synthtune.core.testing import REQUEST_SCHEMAS, FakeOpenAI, load_schemas, validator_for
from synthtune.plugins.openai.jobs import JOB_PREFIX, JobRecord

TUNE = Path(sys.executable).with_name("tune")
FAST = ["--set", "poll_interval=0.01"]


def _dataset(path: Path, n: int = 12) -> Path:
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


def _records(workdir: Path) -> list[JobRecord]:
    store = RunStore(workdir / "synthtune.db")
    try:
        return [JobRecord.model_validate_json(v) for _, v in store.kv_items("openai", JOB_PREFIX)]
    finally:
        store.close()


@pytest.mark.usefixtures("encodings")
def test_train_uploads_creates_a_valid_job_follows_it_and_stores_the_model(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    train = _dataset(workdir / "train.jsonl")
    valid = _dataset(workdir / "valid.jsonl", n=3)
    args = (
        "train",
        str(train),
        "--validation",
        str(valid),
        "--model",
        "gpt-4.1-mini-2025-04-14",
        "--suffix",
        "plots",
        "--epochs",
        "2",
        "--yes",
        "--set",
        "seed=7",
        "--set",
        "metadata.team=story",
        *FAST,
    )
    result = cli(*args)
    assert result.exit_code == 0, result.output
    # Uploaded for fine-tuning, both files.
    assert sorted(f["purpose"] for f in fake_openai.files.values()) == ["fine-tune", "fine-tune"]
    uploaded = {f["filename"]: f["_content"] for f in fake_openai.files.values()}
    assert uploaded["train.jsonl"] == train.read_bytes()
    # Exactly one job, whose body validates against the reference CreateFineTuningJobRequest.
    assert len(fake_openai.ft_job_requests) == 1
    body = fake_openai.ft_job_requests[0]
    validator = validator_for(load_schemas(REQUEST_SCHEMAS), "CreateFineTuningJobRequest")
    assert list(validator.iter_errors(body)) == []
    assert body["model"] == "gpt-4.1-mini-2025-04-14" and body["suffix"] == "plots" and body["seed"] == 7
    assert body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}}
    assert body["metadata"]["team"] == "story" and len(body["metadata"]["synthtune_key"]) == 64
    files = {f["filename"]: f["id"] for f in fake_openai.files.values()}
    assert body["training_file"] == files["train.jsonl"] and body["validation_file"] == files["valid.jsonl"]
    # Followed to the end, events shown, fine-tuned model printed and stored.
    (job_id,) = fake_openai.ft_jobs
    model = f"ft:gpt-4.1-mini-2025-04-14:synthtune-fake:plots:{job_id[6:14]}"
    assert f"fine-tuned model  {model}" in result.stdout
    # The command to run next: the tuned model against the base on the preset's held-out prompts.
    assert f"evaluate it       tune eval --preset PRESET --model base --model tuned={model}" in result.stdout
    assert f"job {job_id} (openai): succeeded" in result.stdout
    assert "Step 2/6: training loss=1.0" in result.stderr and "successfully completed" in result.stderr
    assert result.stderr.count("Fine-tuning job started") == 1  # each event once
    (record,) = _records(workdir)
    assert (record.job_id, record.status, record.fine_tuned_model) == (job_id, "succeeded", model)
    assert record.trained_tokens == fake_openai.ft_jobs[job_id]["trained_tokens"] > 0

    again = cli(*args)
    assert again.exit_code == 0 and model in again.stdout
    assert len(fake_openai.ft_job_requests) == 1 and len(fake_openai.files) == 2  # nothing new


@pytest.mark.usefixtures("encodings")
def test_killed_while_waiting_then_rerun_reattaches_to_the_same_job(
    fake_openai: FakeOpenAI, workdir: Path, cli
) -> None:
    train = _dataset(workdir / "train.jsonl")
    fake_openai.ft_hold = True  # the job stays "running" until released
    env = {**os.environ, "OPENAI_BASE_URL": fake_openai.base_url}
    args = [str(TUNE), "train", str(train), "--model", "gpt-4o-mini-2024-07-18", "--yes", *FAST]
    process = subprocess.Popen(args, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(n >= 3 for n in fake_openai.ft_retrieves.values()):  # created, then polled
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the job was never polled"
            time.sleep(0.02)
        (job_id,) = fake_openai.ft_jobs
        assert fake_openai.ft_jobs[job_id]["status"] == "running"
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()  # reaps it and closes the pipes
    assert process.returncode == -signal.SIGKILL
    (record,) = _records(workdir)
    assert record.job_id == job_id and record.status == "running"

    fake_openai.ft_hold = False
    rerun = cli("train", str(train), "--model", "gpt-4o-mini-2024-07-18", "--yes", *FAST)
    assert rerun.exit_code == 0, rerun.output
    assert f"reattached to fine-tuning job {job_id}" in rerun.stderr
    assert len(fake_openai.ft_job_requests) == 1 and list(fake_openai.ft_jobs) == [job_id]
    assert len(fake_openai.files) == 1  # not uploaded again either
    assert fake_openai.ft_jobs[job_id]["fine_tuned_model"] in rerun.stdout
    assert "Validating training file" not in rerun.stderr  # events seen before the kill: not again


@pytest.mark.usefixtures("encodings")
def test_a_job_created_but_not_recorded_is_found_through_its_metadata(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    train = _dataset(workdir / "train.jsonl")
    first = cli("train", str(train), "--model", "gpt-4.1-mini", "--yes", "--no-wait", *FAST)
    assert first.exit_code == 0, first.output
    (job_id,) = fake_openai.ft_jobs
    store = RunStore(workdir / "synthtune.db")
    ((key, value),) = store.kv_items("openai", JOB_PREFIX)
    record = JobRecord.model_validate_json(value)
    store.kv_put(
        "openai", key, record.model_copy(update={"job_id": None, "status": "creating"}).model_dump_json()
    )
    store.close()
    rerun = cli("train", str(train), "--model", "gpt-4.1-mini", "--yes", *FAST)
    assert rerun.exit_code == 0, rerun.output
    assert len(fake_openai.ft_job_requests) == 1 and f"job {job_id} (openai): succeeded" in rerun.stdout


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (403, "This organization is no longer allowed to create fine-tuning jobs."),
        (400, "Model gpt-4.1-mini-2025-04-14 is not available for fine-tuning or does not exist."),
    ],
)
@pytest.mark.usefixtures("encodings")
def test_a_refusal_is_one_error_line_and_exit_code_1(
    cli, fake_openai: FakeOpenAI, workdir: Path, status: int, message: str
) -> None:
    fake_openai.ft_refusal = (status, message)
    train = _dataset(workdir / "train.jsonl")
    result = cli("train", str(train), "--model", "gpt-4.1-mini-2025-04-14", "--yes", *FAST)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert (
        f"OpenAI refused to create a fine-tuning job for gpt-4.1-mini-2025-04-14 (HTTP {status})" in errors[0]
    )
    assert message.rstrip(".") in errors[0] and "2027-01-06" in errors[0] and "2027-01-14" in errors[0]
    assert fake_openai.ft_jobs == {}


@pytest.mark.usefixtures("encodings")
def test_invalid_data_is_never_uploaded(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    train = _dataset(workdir / "train.jsonl", n=5)
    result = cli("train", str(train), "--model", "gpt-4.1-mini", "--yes")
    assert result.exit_code == 1 and "too_few_examples" in result.output
    assert fake_openai.files == {} and fake_openai.ft_jobs == {}


def test_settings_are_validated_before_anything_runs(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    train = _dataset(workdir / "train.jsonl")
    long = cli("train", str(train), "--model", "gpt-4.1-mini", "--suffix", "x" * 65, "--yes")
    assert long.exit_code == 2 and "suffix" in long.output and "64" in long.output
    unknown = cli("train", str(train), "--model", "gpt-4.1-mini", "--set", "lora_rank=8", "--yes")
    assert unknown.exit_code == 2 and "lora_rank" in unknown.output
    nobackend = cli("train", str(train), "--backend", "plot-generator", "--yes")
    assert nobackend.exit_code == 2 and "does not implement the 'train' stage" in nobackend.output
    assert fake_openai.files == {}


@pytest.mark.usefixtures("encodings")
def test_jobs_commands(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    train = _dataset(workdir / "train.jsonl")
    created = cli("train", str(train), "--model", "gpt-4.1-mini", "--suffix", "s", "--no-wait", "--yes")
    assert created.exit_code == 0, created.output
    (job_id,) = fake_openai.ft_jobs
    assert f"job {job_id} (openai): validating_files" in created.stdout

    listed = cli("jobs", "list")
    assert listed.exit_code == 0 and job_id in listed.stdout
    shown = cli("jobs", "show", job_id)
    assert json.loads(shown.stdout)["id"] == job_id
    waited = cli("jobs", "wait", job_id, "--poll", "0.01")
    assert waited.exit_code == 0, waited.output
    model = fake_openai.ft_jobs[job_id]["fine_tuned_model"]
    assert f"fine-tuned model: {model}" in waited.stdout
    (record,) = _records(workdir)
    assert record.status == "succeeded" and record.fine_tuned_model == model  # the store is updated
    local = cli("jobs", "list", "--local")
    assert job_id in local.stdout and model in local.stdout
    events = cli("jobs", "events", job_id)
    lines = events.stdout.splitlines()
    assert lines[0].endswith(f"Validating training file: {fake_openai.ft_jobs[job_id]['training_file']}")
    assert lines[-1].endswith("The job has successfully completed")
    assert cli("jobs", "cancel", job_id).exit_code == 1  # already succeeded: one-line refusal

    second = cli("train", str(train), "--model", "gpt-4.1-mini", "--suffix", "t", "--no-wait", "--yes")
    second_id = [j for j in fake_openai.ft_jobs if j != job_id][0]
    assert second.exit_code == 0
    cancelled = cli("jobs", "cancel", second_id)
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.stdout
    missing = cli("jobs", "show", "ftjob-nope")
    assert missing.exit_code == 1 and "HTTP 404" in missing.output


@pytest.mark.usefixtures("encodings")
def test_run_with_train_continues_from_the_finished_run(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    run = cli(
        "run",
        "--preset",
        "plot-generator",
        "--limit",
        "14",
        "--yes",
        "--train",
        "--set",
        "train.poll_interval=0.01",
    )
    assert run.exit_code == 0, run.output
    (job_id,) = fake_openai.ft_jobs
    body = fake_openai.ft_job_requests[0]
    uploaded = fake_openai.file_content(body["training_file"])
    assert uploaded == (workdir / "runs" / "plot-generator" / "train.jsonl").read_bytes()
    assert body["suffix"] == "plot-generator"
    # The preset's 10% validation split goes up as the job's validation file.
    valid = fake_openai.file_content(body["validation_file"])
    assert valid == (workdir / "runs" / "plot-generator" / "valid.jsonl").read_bytes()
    assert fake_openai.ft_jobs[job_id]["fine_tuned_model"] in run.stdout
    (record,) = _records(workdir)
    assert record.run_id and record.status == "succeeded"
    chats = fake_openai.chat_count
    again = cli(
        "run",
        "--preset",
        "plot-generator",
        "--limit",
        "14",
        "--yes",
        "--train",
        "--set",
        "train.poll_interval=0.01",
    )
    assert again.exit_code == 0 and fake_openai.chat_count == chats and len(fake_openai.ft_jobs) == 1


@pytest.mark.usefixtures("encodings")
def test_a_preference_file_makes_a_dpo_job(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    line = {
        "input": {"messages": [{"role": "user", "content": "Pitch a heist film."}]},
        "preferred_output": [{"role": "assistant", "content": "A vault under Cairo..."}],
        "non_preferred_output": [{"role": "assistant", "content": "A heist."}],
    }
    train = workdir / "prefs.jsonl"
    train.write_text("".join(json.dumps(line) + "\n" for _ in range(10)))
    result = cli("train", str(train), "--model", "gpt-4.1-mini", "--set", "beta=0.2", "--yes", *FAST)
    assert result.exit_code == 0, result.output
    (body,) = fake_openai.ft_job_requests
    assert body["method"] == {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}
    wrong = cli("train", str(train), "--model", "gpt-4.1-mini", "--set", "method=supervised", "--yes")
    assert wrong.exit_code == 2 and "a preference dataset needs method = 'dpo'" in wrong.output


@pytest.mark.usefixtures("encodings")
def test_a_lost_server_is_one_line_with_the_way_to_resume(cli, workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on port 9
    train = _dataset(workdir / "train.jsonl")
    result = cli("train", str(train), "--model", "gpt-4.1-mini", "--yes", "--set", "max_retries=0")
    assert result.exit_code == 1
    assert "lost the connection to http://127.0.0.1:9/v1" in result.stderr and "rerun" in result.stderr


@pytest.mark.usefixtures("encodings")
def test_the_trainer_itself_refuses_invalid_data_before_uploading(
    fake_openai: FakeOpenAI, workdir: Path
) -> None:
    from synthtune.plugins.openai.jobs import FineTuningError
    from synthtune.plugins.openai.train import OpenAITrainSettings, train_openai

    train = _dataset(workdir / "train.jsonl")
    with train.open("a") as handle:
        handle.write('{"messages": [{"role": "user", "content": "no answer"}]}\n')
    echoed: list[str] = []
    with pytest.raises(
        FineTuningError, match=r"1 validation error\(s\), first: line 13: messages: no assistant"
    ):
        train_openai(
            DatasetFiles(train=train),
            OpenAITrainSettings(model="gpt-4.1-mini"),
            RunContext(run_id="", seed=0, plugin="openai"),
            echo=echoed.append,
        )
    assert any("line 13" in line for line in echoed)
    assert fake_openai.files == {} and fake_openai.ft_jobs == {}


@pytest.mark.usefixtures("encodings")
def test_events_are_read_across_pages_and_only_new_ones(fake_openai: FakeOpenAI, workdir: Path, cli) -> None:
    from synthtune.plugins.openai.client import make_client
    from synthtune.plugins.openai.jobs import new_events

    train = _dataset(workdir / "train.jsonl")
    assert cli("train", str(train), "--model", "gpt-4.1-mini", "--no-wait", "--yes").exit_code == 0
    (job_id,) = fake_openai.ft_jobs
    for step in range(250):  # 251 events: three pages of 100
        fake_openai._ft_event(job_id, f"Step {step}")
    client = make_client(base_url=None, api_key_env="OPENAI_API_KEY", timeout=10, max_retries=0)
    everything = new_events(client, job_id, None)
    assert [e.message for e in everything] == ["Validating training file: " + body_file(fake_openai)] + [
        f"Step {n}" for n in range(250)
    ]
    later = new_events(client, job_id, everything[200].id)
    assert [e.message for e in later] == [f"Step {n}" for n in range(200, 250)]
    assert new_events(client, job_id, everything[-1].id) == []


def body_file(server: FakeOpenAI) -> str:
    return server.ft_job_requests[0]["training_file"]


class FakeTrainerSettings(BaseModel):
    model_config = {"extra": "forbid"}
    model_name_or_path: str
    num_train_epochs: int = 1
    lora_rank: int = 8


class FakeTrainer:
    """Another trainer plugin: `tune train --backend` must reach it with its own settings."""

    seen: list[tuple[DatasetFiles, BaseModel]] = []

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        return FakeTrainerSettings if stage == "train" else None

    @hookimpl
    def train(self, dataset: DatasetFiles, settings: BaseModel, context: RunContext) -> TrainingJob:
        self.seen.append((dataset, settings))
        context.cache_put("last", "done")
        return TrainingJob(
            id="local-1", backend="fake-trainer", status="succeeded", fine_tuned_model="out/adapter"
        )


def test_any_trainer_plugin_is_picked_by_name_with_its_own_settings(cli, host, workdir: Path) -> None:
    assert host.register(FakeTrainer(), "fake-trainer")
    train = _dataset(workdir / "train.jsonl")
    result = cli(
        "train",
        str(train),
        "--backend",
        "fake-trainer",
        "--model",
        "tiny-llama",
        "--epochs",
        "3",
        "--set",
        "lora_rank=16",
    )
    assert result.exit_code == 0, result.output
    assert "job local-1 (fake-trainer): succeeded" in result.stdout and "out/adapter" in result.stdout
    dataset, settings = FakeTrainer.seen[-1]
    assert settings == FakeTrainerSettings(model_name_or_path="tiny-llama", num_train_epochs=3, lora_rank=16)
    assert dataset.train == train and dataset.kind == "chat" and dataset.examples == 12
    store = RunStore(workdir / "synthtune.db")
    assert store.kv_get("fake-trainer", "last") == "done"
    store.close()
    bad = cli("train", str(train), "--backend", "fake-trainer", "--model", "m", "--suffix", "x")
    assert bad.exit_code == 2 and "--backend fake-trainer: has no setting for --suffix" in bad.output
