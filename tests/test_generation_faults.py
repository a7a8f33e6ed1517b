"""Generation under faults, end to end through `tune run` against the fake server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from synthtune.core.errors import EXIT_PARTIAL
from synthtune.core.store import RunStore
from synthtune.core.testing import FakeOpenAI, Reply, default_text
from synthtune.core.testing.limits import Faults

FAST_RETRIES = [
    "--set",
    "generate.timeout=2",  # an injected timeout costs 2 s; a busy machine rarely takes that long
    "--set",
    "generate.backoff_base=0.01",
    "--set",
    "generate.backoff_cap=0.05",
]


def _run(cli: Any, *extra: str, records: int = 60) -> Any:
    return cli(
        "run",
        "--preset",
        "plot-generator",
        "--limit",
        str(records),
        "--set",
        f"source.count={records}",
        "--set",
        "eval.holdout=0",  # every record of the source in the dataset
        "--yes",
        *FAST_RETRIES,
        *extra,
    )


@pytest.mark.parametrize("transport", ["direct", "aiohttp"])
def test_fault_injection_gives_the_clean_dataset_and_pays_once_per_answer(
    cli: Any, fake_openai: FakeOpenAI, workdir: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    # 400 records (about 480 attempts): at these rates every kind of fault is met with
    # probability > 0.99 whatever the request bodies are, instead of relying on a lucky seed.
    clean = _run(
        cli, "--out", "clean", "--store", "clean.db", "--set", f"generate.transport={transport}", records=400
    )
    assert clean.exit_code == 0, clean.output

    faults = Faults(
        server_error=0.10, rate_limit=0.05, timeout=0.02, malformed=0.01, retry_after=0.05, seed=2
    )
    with FakeOpenAI(faults=faults) as faulty:
        monkeypatch.setenv("OPENAI_BASE_URL", faulty.base_url)
        result = _run(
            cli,
            "--out",
            "faulty",
            "--store",
            "faulty.db",
            "--set",
            f"generate.transport={transport}",
            records=400,
        )
        assert result.exit_code == 0, result.output
        assert faulty.schema_errors == []
        assert faulty.answered_twice() == []
        # every kind of fault was met, and every request was answered
        assert set(faulty.faults_injected) == {"server_error", "rate_limit", "timeout", "malformed"}
        assert len(faulty.answered) == 400

    assert (workdir / "faulty" / "train.jsonl").read_bytes() == (
        workdir / "clean" / "train.jsonl"
    ).read_bytes()
    report = json.loads((workdir / "faulty" / "report.json").read_text())
    assert report["failed"] == 0 and report["generated"] == 400
    assert report["events"]["retries"] == sum(faulty.faults_injected.values())
    assert report["events"]["rate_limited"] == faulty.faults_injected["rate_limit"]
    assert report["events"]["timeouts"] == faulty.faults_injected["timeout"]


def test_failures_after_the_last_retry_are_recorded_and_only_they_are_retried(
    cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    broken: set[str] = set()

    def responder(body: dict[str, Any]) -> Reply | str:
        content = body["messages"][-1]["content"]
        if "science fiction" in content and "on" in broken:
            return Reply(status=502, error_message="bad gateway")
        return default_text(body)

    fake_openai.responder = responder
    broken.add("on")
    # a budget for every retry: this test counts the per-request limit
    first = _run(cli, "--set", "generate.max_retries=2", "--set", "generate.retry_budget=100", records=24)
    assert first.exit_code == EXIT_PARTIAL, first.output  # some requests failed: a partial dataset
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    failed = report["failed"]
    assert failed > 0 and report["generated"] == 24 - failed
    assert "request(s) failed, the dataset is partial; rerun to retry them" in first.output
    assert fake_openai.chat_count == (24 - failed) + failed * 3  # 1 try + 2 retries each
    store = RunStore(workdir / "synthtune.db")
    recorded = store.failures(report["run_id"])
    store.close()
    assert len(recorded) == failed
    assert all(f["error"] == "HTTP 502: bad gateway (gave up after 3 attempts)" for f in recorded)
    assert all(f["attempts"] == 3 for f in recorded)
    assert report["failures"][0]["record_id"] is not None

    broken.clear()
    before = fake_openai.chat_count
    second = _run(cli, records=24)
    assert second.exit_code == 0, second.output
    assert fake_openai.chat_count - before == failed  # only the failed requests were sent again
    again = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert again["failed"] == 0 and again["generated"] == failed and again["cached"] == 24 - failed


def test_a_refused_key_stops_the_run(cli: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = lambda body: Reply(status=401, error_message="Incorrect API key provided")
    result = _run(cli, records=10)
    assert result.exit_code == 1
    assert "the server refused the request (401): Incorrect API key provided" in result.output
    assert fake_openai.chat_count <= 2 * 16  # stopped at once, not once per record


def test_rate_limited_server_is_paced_after_learning_its_limits(
    cli: Any, fake_openai: FakeOpenAI, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAI(rpm=3000, burst_seconds=0.2) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = _run(cli, "--set", "generate.concurrency=32", records=40)
        assert result.exit_code == 0, result.output
        assert server.answered_twice() == []
        refused = server.status_counts[429]
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert report["generated"] == 40 and report["failed"] == 0
    assert report["events"].get("rate_limited", 0) == refused
