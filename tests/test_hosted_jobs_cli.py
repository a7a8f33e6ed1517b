"""Hosted trainers from the command line: a `tune run --train` killed with SIGKILL while polling,
then `tune jobs wait` reattaching (no second job); keys never written anywhere; `tune train
--list-backends`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synthtune.core.jobs.models import JobRecord
from synthtune.core.store import RunStore
from synthtune.core.testing import FakeOpenAI
from test_together_train import chat_file

TUNE = Path(sys.executable).with_name("tune")
RUN = ["run", "--preset", "plot-generator", "--limit", "12", "--yes", "--train"]


def recorded(workdir: Path, backend: str) -> list[JobRecord]:
    store = RunStore(workdir / "synthtune.db")
    try:
        return [JobRecord.model_validate_json(v) for _, v in store.kv_items(backend, "job:")]
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["together", "fireworks"])
def test_killed_while_polling_then_tune_jobs_reattaches_to_the_same_job(
    request, cli, fake_openai: FakeOpenAI, workdir: Path, backend: str
) -> None:
    server = request.getfixturevalue(f"fake_{backend}")
    server.hold = True  # the job stays running until released
    args = [str(TUNE), *RUN, "--set", f"train.plugin={backend}", "--set", "train.poll_interval=0.01"]
    process = subprocess.Popen(
        args, cwd=workdir, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 90
        while not any(n >= 4 for n in server.retrieves.values()):  # created, then polled while running
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the job was never polled"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    (job_id,) = server.jobs
    (record,) = recorded(workdir, backend)
    assert record.job_id == job_id and record.status == "running"
    polls_before = server.retrieves[job_id]

    server.hold = False
    resumed = cli("jobs", "wait", "--poll", "0.01")
    assert resumed.exit_code == 0, resumed.output
    assert f"following {backend} job {job_id}" in resumed.stderr
    assert server.retrieves[job_id] > polls_before
    assert len(server.job_requests) == 1 and list(server.jobs) == [job_id]
    (record,) = recorded(workdir, backend)
    assert record.status == "succeeded" and record.fine_tuned_model
    assert f"fine-tuned model: {record.fine_tuned_model}" in resumed.stdout
    (tried,) = [line for line in resumed.stdout.splitlines() if line.startswith("try it: ")]
    assert tried.startswith(f"try it: tune try {record.fine_tuned_model} --base-url ")
    assert tried.endswith('--preset plot-generator "YOUR INPUT"')  # framed like the run's preset

    chats = fake_openai.chat_count
    rerun = cli(*RUN, "--set", f"train.plugin={backend}", "--set", "train.poll_interval=0.01")
    assert rerun.exit_code == 0, rerun.output
    assert f"reattached to {backend} job {job_id} (succeeded)" in rerun.stderr
    assert len(server.job_requests) == 1 and fake_openai.chat_count == chats


def test_keys_are_never_written_to_the_store_outputs_or_output(
    cli, fake_openai: FakeOpenAI, fake_together, fake_fireworks, workdir: Path, monkeypatch
) -> None:
    together_key, fireworks_key = "tgp_v1_SECRET-together-8f2c1d", "fw_SECRET-fireworks-77ab30"
    monkeypatch.setenv("TOGETHER_API_KEY", together_key)
    monkeypatch.setenv("FIREWORKS_API_KEY", fireworks_key)
    fake_together.api_key, fake_fireworks.api_key = together_key, fireworks_key  # the keys are really sent
    outputs = []
    for backend in ("together", "fireworks"):
        ran = cli(*RUN, "--set", f"train.plugin={backend}", "--set", "train.poll_interval=0.01")
        assert ran.exit_code == 0, ran.output
        outputs.append(ran.output)
        (record,) = recorded(workdir, backend)
        base = fake_together.base_url if backend == "together" else f"{fake_fireworks.base_url}/inference/v1"
        tried = cli("try", record.fine_tuned_model or "", "--base-url", base,
                    "--api-key-env", f"{backend.upper()}_API_KEY", "hello")  # fmt: skip
        assert tried.exit_code == 0, tried.output
        outputs.append(tried.output)
    extra = chat_file(workdir / "extra.jsonl")
    for args in (
        ("jobs", "list"),
        ("jobs", "list", "--local", "--json"),
        ("train", "--list-backends"),
        ("train", str(extra), "--backend", "together", "--yes", "--model", "Qwen/Qwen3-8B", "--no-wait"),
    ):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert fake_together.chat_requests and fake_fireworks.chat_requests
    for key in (together_key, fireworks_key):
        assert all(key not in text for text in outputs)
        for path in workdir.rglob("*"):
            if path.is_file():
                assert key.encode() not in path.read_bytes(), f"{key} found in {path}"


def test_list_backends_says_which_trainers_have_their_keys(cli, workdir: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOGETHER_API_KEY", "secret-together-value")
    result = cli("train", "--list-backends")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert {"openai", "together", "fireworks", "trl"} <= set(rows)
    assert "TOGETHER_API_KEY set" in rows["together"] and " yes " in rows["together"]
    assert "FIREWORKS_API_KEY not set" in rows["fireworks"] and " no " in rows["fireworks"]
    assert "FIREWORKS_ACCOUNT_ID not set" in rows["fireworks"]
    assert "OPENAI_API_KEY not set" in rows["openai"] and " no " in rows["openai"]
    assert "no key needed" in rows["trl"]
    assert "secret-together-value" not in result.output
    missing = cli("train")
    assert missing.exit_code == 2 and "give the training FILE (or --list-backends)" in missing.stderr


@pytest.mark.parametrize("backend", ["together", "fireworks"])
def test_a_job_created_but_not_recorded_is_found_again(request, cli, workdir: Path, backend: str) -> None:
    server = request.getfixturevalue(f"fake_{backend}")
    train = chat_file(workdir / "train.jsonl")
    args = ("train", str(train), "--backend", backend, "--yes", "--set", "poll_interval=0.01",
            "--model", "Qwen/Qwen3-8B" if backend == "together" else "accounts/fireworks/models/qwen3-8b")  # fmt: skip
    first = cli(*args, "--no-wait")
    assert first.exit_code == 0, first.output
    (job_id,) = server.jobs
    # As if tune was killed after the create request, before it could record the job's id.
    store = RunStore(workdir / "synthtune.db")
    ((key, value),) = store.kv_items(backend, "job:")
    record = JobRecord.model_validate_json(value)
    store.kv_put(
        backend, key, record.model_copy(update={"job_id": None, "status": "creating"}).model_dump_json()
    )
    store.close()
    rerun = cli(*args)
    assert rerun.exit_code == 0, rerun.output
    assert f"reattached to {backend} job {job_id}" in rerun.stderr
    assert len(server.job_requests) == 1 and list(server.jobs) == [job_id]
    (record,) = recorded(workdir, backend)
    assert record.job_id == job_id and record.status == "succeeded"
