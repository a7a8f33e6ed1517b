"""Batch mode end to end against the fake OpenAI server: same dataset as online mode, splitting,
a run killed while its batch runs, expiry, errors, and request bodies checked against the schemas."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import read_dataset
from synthtune.core.errors import EXIT_FAILED, EXIT_PARTIAL
from synthtune.core.testing import (
    REQUEST_SCHEMAS,
    FakeOpenAI,
    Reply,
    default_text,
    load_schemas,
    validator_for,
)
from synthtune.plugins.openai import batch_book

BATCH = ["--set", "generate.mode=batch", "--set", "generate.batch_poll_interval=0.02"]
PRICE_IN, PRICE_OUT = 0.40, 1.60  # gpt-4.1-mini, USD per 1M tokens (core/prices.toml)


def run(cli: Any, *args: str) -> Any:
    return cli("run", "--preset", "plot-generator", "--yes", *args)


def answered_once(fake: FakeOpenAI) -> None:
    assert fake.batch_answered, "no batch line was answered"
    assert [cid for cid, n in fake.batch_answered.items() if n != 1] == []


def poll(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def kv(db: Path, prefix: str) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT key, value FROM kv WHERE namespace = 'openai' AND key LIKE ?", (prefix + "%",)
        ).fetchall()
    return dict(rows)


def test_batch_dataset_equals_online_dataset(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    online = run(cli, "--limit", "12", "--store", "online.db", "--out", "online")
    assert online.exit_code == 0, online.output
    batch = run(cli, "--limit", "12", "--store", "batch.db", "--out", "batch", *BATCH)
    assert batch.exit_code == 0, batch.output

    for name in ("train.jsonl", "valid.jsonl"):
        assert (workdir / "batch" / name).read_bytes() == (workdir / "online" / name).read_bytes()
    assert len(read_dataset(workdir / "batch")) == 12
    assert fake_openai.chat_count == 12  # the online run only
    assert fake_openai.batch_count == 1
    answered_once(fake_openai)
    # Each batch line carries exactly the body online mode sent, keyed by the cache key.
    (only,) = fake_openai.batches
    lines = fake_openai.batch_lines(only)
    assert sorted(json.dumps(line["body"], sort_keys=True) for line in lines) == sorted(
        json.dumps(body, sort_keys=True) for body in fake_openai.chat_requests
    )
    with sqlite3.connect(workdir / "batch.db") as conn:
        keys = {row[0] for row in conn.execute("SELECT key FROM generations")}
    assert {line["custom_id"] for line in lines} == keys

    # Spend at the batch discount: half of usage x list price, recorded per generation and run.
    report = json.loads((workdir / "batch" / "report.json").read_text())
    expected = 0.0
    for line in lines:
        usage = FakeOpenAI.completion(line["body"], Reply(text=default_text(line["body"])))["usage"]
        expected += (usage["prompt_tokens"] * PRICE_IN + usage["completion_tokens"] * PRICE_OUT) / 1e6 / 2
    assert report["pricing"] == "batch"
    assert report["cost_usd"] == pytest.approx(expected, abs=1e-6)
    with sqlite3.connect(workdir / "batch.db") as conn:
        assert conn.execute("SELECT SUM(cost) FROM generations").fetchone()[0] == pytest.approx(expected)
    online_report = json.loads((workdir / "online" / "report.json").read_text())
    assert online_report["cost_usd"] == pytest.approx(2 * expected, abs=1e-6)

    again = run(cli, "--limit", "12", "--store", "batch.db", "--out", "batch", *BATCH)
    assert again.exit_code == 0, again.output
    assert fake_openai.batch_count == 1  # a rerun is free: nothing submitted


def test_batch_create_bodies_and_lines_validate_against_the_reference_schemas(
    cli, fake_openai: FakeOpenAI
) -> None:
    result = run(cli, "--limit", "5", *BATCH)
    assert result.exit_code == 0, result.output
    document = load_schemas(REQUEST_SCHEMAS)
    batch_validator = validator_for(document, "CreateBatchRequest")
    chat_validator = validator_for(document, "CreateChatCompletionRequest")
    (body,) = fake_openai.batch_create_bodies
    assert [e.message for e in batch_validator.iter_errors(body)] == []
    assert body["endpoint"] == "/v1/chat/completions" and body["completion_window"] == "24h"
    assert set(body["metadata"]) >= {"synthtune_chunk", "synthtune_run"}
    assert fake_openai.files[body["input_file_id"]]["purpose"] == "batch"
    (batch_id,) = fake_openai.batches
    for line in fake_openai.batch_lines(batch_id):
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        assert [e.message for e in chat_validator.iter_errors(line["body"])] == []
    # The fake server really rejects a body that breaks CreateBatchRequest.
    bad = {**body, "completion_window": "1h"}
    assert [e.message for e in batch_validator.iter_errors(bad)] != []
    request = urllib.request.Request(
        f"{fake_openai.base_url}/batches",
        data=json.dumps(bad).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert fake_openai.batch_count == 1
    assert len(fake_openai.schema_errors) == 1 and "'1h'" in fake_openai.schema_errors[0]
    fake_openai.schema_errors.clear()  # expected: the fixture fails the test on any other


def test_request_sets_over_the_limits_are_split_across_batches(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    result = run(cli, "--limit", "10", *BATCH, "--set", "generate.batch_max_requests=3")
    assert result.exit_code == 0, result.output
    sizes = [len(fake_openai.batch_lines(b)) for b in sorted(fake_openai.batches)]
    assert sizes == [3, 3, 3, 1]
    assert len(read_dataset(workdir / "runs" / "plot-generator")) == 10
    answered_once(fake_openai)

    # A byte limit of about two and a half lines: two lines per batch.
    line_size = max(fake_openai.files[b["input_file_id"]]["bytes"] for b in fake_openai.batches.values())
    limit = int(line_size * 2.5 / 3)
    more = run(cli, "--limit", "16", *BATCH, "--set", f"generate.batch_max_bytes={limit}")
    assert more.exit_code == 0, more.output
    new = sorted(fake_openai.batches)[4:]
    assert [len(fake_openai.batch_lines(b)) for b in new] == [2, 2, 2]
    for batch_id in new:
        assert fake_openai.files[fake_openai.batches[batch_id]["input_file_id"]]["bytes"] <= limit
    assert len(read_dataset(workdir / "runs" / "plot-generator")) == 16
    answered_once(fake_openai)


def test_a_run_killed_while_waiting_is_resumed_by_polling_the_same_batch(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.batch_hold = True  # the batch stays in progress until the test releases it
    command = [sys.executable, "-c", "from synthtune.core.cli import main; main()", "run"]
    command += ["--preset", "plot-generator", "--limit", "8", "--yes", *BATCH]
    child = subprocess.Popen(
        command, cwd=workdir, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def polled() -> bool:  # polling starts only after the batch id is committed to the run store
        return any(batch.get("_gets", 0) >= 1 for batch in list(fake_openai.batches.values()))

    try:
        poll(polled)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    (batch_id,) = fake_openai.batches
    chunks = [json.loads(v) for v in kv(workdir / "synthtune.db", batch_book.CHUNK_PREFIX).values()]
    assert [(c["state"], c["batch_id"]) for c in chunks] == [("submitted", batch_id)]
    assert fake_openai.batch_answered == {}

    fake_openai.batch_hold = False
    rerun = run(cli, "--limit", "8", *BATCH)
    assert rerun.exit_code == 0, rerun.output
    assert "resuming 1 batch(es)" in rerun.output
    assert fake_openai.batch_count == 1  # polled the existing batch, never resubmitted
    assert fake_openai.chat_count == 0
    answered_once(fake_openai)
    assert len(read_dataset(workdir / "runs" / "plot-generator")) == 8
    chunks = [json.loads(v) for v in kv(workdir / "synthtune.db", batch_book.CHUNK_PREFIX).values()]
    assert [c["state"] for c in chunks] == ["closed"]


def test_a_crash_between_create_and_commit_adopts_the_batch_by_its_metadata(
    cli, fake_openai: FakeOpenAI, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_put = batch_book.ChunkBook.put

    def crash_on_submitted(self: Any, record: Any) -> None:
        if record.state == "submitted":
            raise RuntimeError("simulated crash right after batches.create")
        real_put(self, record)

    monkeypatch.setattr(batch_book.ChunkBook, "put", crash_on_submitted)
    fake_openai.batch_hold = True
    crashed = run(cli, "--limit", "6", *BATCH)
    assert crashed.exit_code == 1
    assert (
        "plugin 'openai' failed in stage 'generate': simulated crash right after batches.create"
        in crashed.output
    )
    assert fake_openai.batch_count == 1
    monkeypatch.setattr(batch_book.ChunkBook, "put", real_put)

    fake_openai.batch_hold = False
    rerun = run(cli, "--limit", "6", *BATCH)
    assert rerun.exit_code == 0, rerun.output
    assert fake_openai.batch_count == 1
    answered_once(fake_openai)
    assert len(read_dataset(workdir / "runs" / "plot-generator")) == 6


def test_an_expired_batch_fails_its_unanswered_requests_and_a_rerun_retries_only_those(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.batch_final_status = "expired"
    fake_openai.batch_answer_limit = 2
    first = run(cli, "--limit", "6", *BATCH)
    assert first.exit_code == EXIT_PARTIAL, first.output
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert (report["generated"], report["failed"]) == (2, 4)
    assert all("batch_expired" in f["error"] for f in report["failures"])
    assert "4 request(s) failed" in first.output

    fake_openai.batch_final_status = "completed"
    second = run(cli, "--limit", "6", *BATCH)
    assert second.exit_code == 0, second.output
    first_id, second_id = sorted(fake_openai.batches)
    assert len(fake_openai.batch_lines(second_id)) == 4
    retried = {line["custom_id"] for line in fake_openai.batch_lines(second_id)}
    assert retried == {line["custom_id"] for line in fake_openai.batch_lines(first_id)[2:]}
    answered_once(fake_openai)
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert (report["cached"], report["generated"], report["failed"]) == (2, 4, 0)
    assert len(read_dataset(workdir / "runs" / "plot-generator")) == 6


def test_lines_the_batch_answered_with_an_error_become_failures(cli, workdir: Path, monkeypatch) -> None:
    def responder(body: dict[str, Any]) -> Reply | str:
        if "science fiction" in body["messages"][-1]["content"]:
            return Reply(status=500, error_message="model overloaded")
        return default_text(body)

    with FakeOpenAI(responder) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        result = run(cli, "--limit", "6", *BATCH)
        assert result.exit_code == EXIT_PARTIAL, result.output  # one request failed
        assert fake.schema_errors == []
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert report["failed"] == 1 and report["generated"] == 5
    assert report["failures"][0]["error"] == "HTTP 500: model overloaded"


def test_batch_max_wait_leaves_the_batch_running_for_a_rerun(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.batch_hold = True
    first = run(cli, "--limit", "4", *BATCH, "--set", "generate.batch_max_wait=0")
    assert first.exit_code == EXIT_PARTIAL, first.output  # nothing answered yet, nothing failed
    assert "still running" in first.output
    assert "4 request(s) not answered yet, the dataset is partial" in first.output
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert report["failed"] == 4

    fake_openai.batch_hold = False
    second = run(cli, "--limit", "4", *BATCH)
    assert second.exit_code == 0, second.output
    assert fake_openai.batch_count == 1
    answered_once(fake_openai)
    assert len(read_dataset(workdir / "runs" / "plot-generator")) == 4


def test_a_batch_the_server_lost_is_failed_then_resubmitted(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.batch_hold = True
    assert run(cli, "--limit", "3", *BATCH, "--set", "generate.batch_max_wait=0").exit_code == EXIT_PARTIAL
    (lost,) = fake_openai.batches
    del fake_openai.batches[lost]  # deleted server-side, or the base URL now names another server
    fake_openai.batch_hold = False

    second = run(cli, "--limit", "3", *BATCH)
    # every request failed: the lost batch's (a rerun resubmits them)
    assert second.exit_code == EXIT_FAILED, second.output
    assert "every request failed (3): batch" in second.output and "not found on the server" in second.output
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert report["failed"] == 3 and "not found on the server" in report["failures"][0]["error"]
    assert fake_openai.batch_count == 0

    third = run(cli, "--limit", "3", *BATCH)
    assert third.exit_code == 0, third.output
    assert fake_openai.batch_count == 1
    answered_once(fake_openai)
    assert len(read_dataset(workdir / "runs" / "plot-generator")) == 3
