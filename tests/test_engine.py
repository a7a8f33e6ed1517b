"""The engine: chain steps asked for with ``context.complete()`` go through the run's backend,
store, spend cap and statistics, against the fake OpenAI server."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from chain_plugin import PRESET, ask, register
from conftest import read_dataset, read_jsonl
from synthtune.core import (
    CompletionFailed,
    CostCapReached,
    EngineError,
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    StageSettings,
    TrainingExample,
    hookimpl,
)
from synthtune.core.errors import EXIT_OK, EXIT_PARTIAL
from synthtune.core.testing import FakeOpenAI, Reply, default_text
from test_resume import _committed, _env, _wait_for

OUT = Path("runs") / "chain"
CHAIN_SCRIPT = Path(__file__).with_name("chain_plugin.py")


@pytest.fixture
def chain_cli(cli: Any) -> Any:
    register(cli.host)
    return cli


def write_preset(workdir: Path, count: int = 6, concurrency: int = 4, extra: str = "") -> Path:
    path = workdir / "chain.toml"
    path.write_text(PRESET.format(count=count, concurrency=concurrency) + extra)
    return path


def report(workdir: Path) -> dict[str, Any]:
    return json.loads((workdir / OUT / "report.json").read_text())


def user_texts(server: FakeOpenAI) -> list[str]:
    return [body["messages"][-1]["content"] for body in server.chat_requests]


def test_a_chain_sends_more_requests_than_records_and_a_rerun_sends_none(
    chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    preset = write_preset(workdir)
    result = chain_cli("run", "--preset", str(preset), "--yes")
    assert result.exit_code == EXIT_OK, result.output
    assert fake_openai.chat_count == 18  # 6 records x (prompt, critique, revise)
    first = report(workdir)
    assert first["records"] == 6 and first["generated"] == 18
    assert {step: counts["generated"] for step, counts in first["steps"].items()} == {
        "prompt": 6,
        "critique": 6,
        "revise": 6,
    }
    lines = read_dataset(workdir / OUT)
    assert len(lines) == 6
    # The revision is the sample's text; the critique reached format through sample.data.
    revisions = {t for t in user_texts(fake_openai) if t.startswith("revise ")}
    assert len(revisions) == 6
    assert all(line["messages"][3]["content"] != "none" for line in lines)
    # The chain steps' answers count in the dataset's cost and are filed per record.
    assert first["cost"]["this_run"]["answers"] == 18

    again = chain_cli("run", "--preset", str(preset), "--yes")
    assert again.exit_code == EXIT_OK, again.output
    assert fake_openai.chat_count == 18  # nothing sent
    rerun = report(workdir)
    assert rerun["cached"] == 18 and rerun["generated"] == 0
    assert rerun["cost"]["earlier_runs"]["answers"] == 18
    assert read_dataset(workdir / OUT) == lines


def test_records_work_concurrently_through_the_chain(
    chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = lambda body: Reply(text=default_text(body, 200), delay=0.2)
    preset = write_preset(workdir, count=8, concurrency=8)
    result = chain_cli("run", "--preset", str(preset), "--yes")
    assert result.exit_code == EXIT_OK, result.output
    # 3 sequential calls of 0.2 s per record, 8 records at once: the calls of different
    # records overlap (one record after the other would be 8 x 3 x 0.2 = 4.8 s).
    assert fake_openai.most_in_flight >= 6
    assert report(workdir)["seconds"] < 2.4


def test_an_async_prompt_asks_an_earlier_step(chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path) -> None:
    preset = write_preset(workdir, count=4, extra="")
    text = preset.read_text().replace("count = 4", "count = 4\nasync_prompt = true")
    preset.write_text(text)
    result = chain_cli("run", "--preset", str(preset), "--yes")
    assert result.exit_code == EXIT_OK, result.output
    assert fake_openai.chat_count == 16  # plan, prompt, critique, revise
    steps = report(workdir)["steps"]
    assert steps["plan"]["generated"] == 4 and steps["prompt"]["generated"] == 4
    writes = [t for t in user_texts(fake_openai) if t.startswith("write about")]
    assert all("following this plan" in t for t in writes)
    assert len(read_dataset(workdir / OUT)) == 4
    again = chain_cli("run", "--preset", str(preset), "--yes")
    assert again.exit_code == EXIT_OK and fake_openai.chat_count == 16


def test_complete_outside_a_run_raises_engine_error() -> None:
    context = RunContext(run_id="try", seed=0, plugin="judge")
    with pytest.raises(EngineError, match="outside a run"):
        asyncio.run(context.complete(ask("hello"), step="judge"))


def test_max_cost_stops_complete_calls(chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path) -> None:
    preset = write_preset(workdir, count=6, concurrency=2)
    result = chain_cli("run", "--preset", str(preset), "--yes", "--max-cost", "0.0005")
    assert result.exit_code == EXIT_PARTIAL, result.output
    capped = report(workdir)
    assert capped["status"] == "capped"
    assert 0 < fake_openai.chat_count < 18
    steps = capped["steps"]
    refused_calls = sum(steps[s]["not_sent_cost_cap"] for s in steps if s != "prompt")
    assert refused_calls > 0  # chain steps were refused at the cap, not sent
    assert capped["cost"]["this_run"]["usd"] <= 0.0005


def test_a_failing_chain_step_fails_the_record_and_a_rerun_retries_from_that_step(
    chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    def failing(body: dict[str, Any]) -> Reply:
        if body["messages"][-1]["content"].startswith("revise topic 1 "):
            return Reply(status=400, error_message="scripted refusal")
        return Reply(text=default_text(body, 300))

    fake_openai.responder = failing
    preset = write_preset(workdir)
    result = chain_cli("run", "--preset", str(preset), "--yes")
    assert result.exit_code == EXIT_PARTIAL, result.output
    first = report(workdir)
    assert first["failed_records"] == 1 and first["steps"]["revise"]["failed"] == 1
    assert len(read_dataset(workdir / OUT)) == 5
    sent = fake_openai.chat_count

    fake_openai.responder = lambda body: Reply(text=default_text(body, 300))
    again = chain_cli("run", "--preset", str(preset), "--yes")
    assert again.exit_code == EXIT_OK, again.output
    # Only the failed step is asked again: record r1's prompt and critique come from the store.
    assert fake_openai.chat_count == sent + 1
    assert user_texts(fake_openai)[-1].startswith("revise topic 1 ")
    assert len(read_dataset(workdir / OUT)) == 6


def test_reask_recovers_a_dropped_sample_with_the_reason(
    chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        if "That answer was rejected" in body["messages"][-1]["content"]:
            return Reply(text="fixed: " + default_text(body, 100))
        return Reply(text=default_text(body, 100))

    fake_openai.responder = responder
    preset = write_preset(workdir)
    text = preset.read_text().replace('[[filter]]\nplugin = "chain"', '[[filter]]\nplugin = "keyword"')
    preset.write_text(text)
    result = chain_cli("run", "--preset", str(preset), "--yes", "--set", "reask.attempts=2")
    assert result.exit_code == EXIT_OK, result.output
    done = report(workdir)
    assert done["recovered"] == 2 and done["kept"] == 6
    assert done["steps"]["reask-1"]["generated"] == 2
    follow_ups = [b for b in fake_openai.chat_requests if len(b["messages"]) == 3]
    assert len(follow_ups) == 2
    for body in follow_ups:
        first, rejected, again = body["messages"]
        assert first["content"].startswith("write about topic") and rejected["role"] == "assistant"
        assert again["content"].startswith("That answer was rejected: mentions no fix (r")
    lines = read_dataset(workdir / OUT)
    assert sum(line["messages"][1]["content"].startswith("fixed: ") for line in lines) == 2
    # Without re-asking, the same preset drops them (and sends nothing: all answers are stored).
    before = fake_openai.chat_count
    plain = chain_cli("run", "--preset", str(preset), "--yes")
    assert plain.exit_code == EXIT_OK
    assert report(workdir)["kept"] == 4 and fake_openai.chat_count == before
    rejected_lines = read_jsonl(workdir / OUT / "rejected.jsonl")
    assert len(rejected_lines) == 2


class StopAnsweringAfter:
    """Answer the first ``n`` requests, then hold every later one until the kill."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.granted = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            self.granted += 1
            hold = self.granted > self.n
        return Reply(text=default_text(body, 300), delay=30.0 if hold else 0.02)


def test_sigkill_mid_chain_then_rerun_answers_no_body_twice(workdir: Path) -> None:
    preset = write_preset(workdir, count=10, concurrency=4)
    args = [sys.executable, str(CHAIN_SCRIPT), "run", "--preset", str(preset), "--yes"]
    responder = StopAnsweringAfter(14)
    with FakeOpenAI(responder) as server:
        proc = subprocess.Popen(
            args, cwd=workdir, env=_env(server.base_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            _wait_for(
                lambda: sum(server.answered.values()) == 14 and _committed(workdir / "synthtune.db") == 14
            )
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        responder.n = 10_000
        resumed = subprocess.run(
            args, cwd=workdir, env=_env(server.base_url), capture_output=True, text=True, timeout=120
        )
        assert resumed.returncode == 0, resumed.stderr
        assert server.answered_twice() == []
        assert sum(server.answered.values()) == 30  # 10 records x 3 calls, each paid once
    assert len(read_dataset(workdir / OUT)) == 10


def test_completion_errors_are_public() -> None:
    assert issubclass(CompletionFailed, Exception) and issubclass(CostCapReached, Exception)


def test_estimate_counts_every_chain_step(chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path) -> None:
    preset = write_preset(workdir)
    result = chain_cli("estimate", "--preset", str(preset), "--json")
    assert result.exit_code == EXIT_OK, result.output
    estimate = json.loads(result.output)
    assert fake_openai.chat_count == 0  # nothing is sent to estimate
    assert estimate["records"] == 6 and estimate["total"]["requests"] == 18
    assert {step: figures["total"]["requests"] for step, figures in estimate["steps"].items()} == {
        "prompt": 6,
        "critique": 6,
        "revise": 6,
    }
    assert estimate["to_send"]["requests"] == 18 and estimate["to_send"]["cost_online"] > 0
    text = chain_cli("estimate", "--preset", str(preset))
    assert "requests per step: prompt 6, critique 6, revise 6" in text.output

    # After the run, the estimate follows the real answers through the chain: all answered.
    assert chain_cli("run", "--preset", str(preset), "--yes").exit_code == EXIT_OK
    after = json.loads(chain_cli("estimate", "--preset", str(preset), "--json").output)
    assert after["answered"]["requests"] == 18 and after["to_send"]["requests"] == 0
    # A re-ask counts too: the keyword filter drops the filler text of 2 records.
    keyword = preset.read_text().replace('[[filter]]\nplugin = "chain"', '[[filter]]\nplugin = "keyword"')
    preset.write_text(keyword)
    reask = chain_cli("estimate", "--preset", str(preset), "--json", "--set", "reask.attempts=2")
    steps = json.loads(reask.output)["steps"]
    assert steps["reask-1"]["total"]["requests"] == 2 and steps["reask-2"]["total"]["requests"] == 2


def test_scores_reach_the_store_rejected_lines_and_the_html_report(
    chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    preset = write_preset(workdir)
    text = preset.read_text() + '[[filter]]\nplugin = "keyword"\n'
    preset.write_text(text)
    result = chain_cli("run", "--preset", str(preset), "--yes")
    assert result.exit_code == EXIT_OK, result.output
    rejected = read_jsonl(workdir / OUT / "rejected.jsonl")
    assert len(rejected) == 2  # the keyword filter dropped them after the chain filter scored them
    assert all(line["filter"] == "keyword" for line in rejected)
    from synthtune.core.store import RunStore

    store = RunStore(workdir / "synthtune.db")
    try:
        scores = store.db.execute("SELECT score, data_json FROM verdicts WHERE filter = 'chain'").fetchall()
        assert len(scores) == 6 and all(s is not None and "critique" in json.loads(d) for s, d in scores)
        run_id = store.runs()[-1]["id"]
        seq = store.db.execute("SELECT MIN(seq) FROM samples WHERE run_id = ?", (run_id,)).fetchone()[0]
        lineage = store.lineage(run_id, seq)
        assert lineage is not None and [c["step"] for c in lineage["calls"]] == ["critique", "revise"]
    finally:
        store.close()
    html = workdir / "report.html"
    shown = chain_cli("report", "latest", "--html", str(html))
    assert shown.exit_code == EXIT_OK, shown.output
    page = html.read_text()
    assert 'class="hist scores" data-filter="chain"' in page and "chain calls" in page


def test_batch_mode_refuses_chain_steps_with_one_line(
    chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    preset = write_preset(workdir)
    batch = ["--set", "generate.mode=batch", "--set", "generate.batch_poll_interval=0.02"]
    result = chain_cli("run", "--preset", str(preset), "--yes", *batch)
    assert result.exit_code == 1, result.output
    assert "in batch mode" in result.output and "Traceback" not in result.output
    assert fake_openai.batch_count == 1 and fake_openai.chat_count == 0  # no chain step was sent
    # Nothing paid for is lost: the batch's answers are in the store for an online rerun.
    online = chain_cli("run", "--preset", str(preset), "--yes")
    assert online.exit_code == EXIT_OK, online.output
    assert fake_openai.chat_count == 12  # critique and revise only


def test_a_bug_in_an_async_filter_stops_the_run_with_one_line(
    chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    preset = write_preset(workdir)
    result = chain_cli("run", "--preset", str(preset), "--yes", "--set", "filter.0.explode_on=r1")
    assert result.exit_code == 1, result.output
    assert (
        "plugin 'chain' failed in stage 'filter' on record 'r1': the critique has no verdict" in result.output
    )
    assert "Traceback" not in result.output
    # Every answer that arrived is kept: the rerun without the bug pays only for the rest.
    assert 0 < fake_openai.chat_count < 18
    again = chain_cli("run", "--preset", str(preset), "--yes")
    assert again.exit_code == EXIT_OK, again.output
    assert fake_openai.answered_twice() == [] and fake_openai.chat_count == 18
    assert "steps      prompt 6" in again.output


def test_preflight_knows_when_a_chain_is_fully_answered(
    chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    from synthtune.core.preflight import _everything_answered
    from synthtune.core.presets import load_preset

    path = write_preset(workdir)
    preset = load_preset(str(path), chain_cli.host)
    store = workdir / "synthtune.db"
    assert chain_cli("run", "--preset", str(path), "--yes", "--limit", "3").exit_code == EXIT_OK
    assert not _everything_answered(chain_cli.host, preset, store, None)  # 3 records of 6 answered
    assert _everything_answered(chain_cli.host, preset, store, 3)
    assert fake_openai.chat_count == 9  # the check sends nothing


def test_reask_in_batch_mode_is_refused_before_anything_is_sent(
    chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    preset = write_preset(workdir)
    batch = ["--set", "generate.mode=batch", "--set", "reask.attempts=1"]
    result = chain_cli("run", "--preset", str(preset), "--yes", *batch)
    assert result.exit_code == 2, result.output
    assert "[reask] needs online requests" in result.output
    assert fake_openai.batch_count == 0 and fake_openai.chat_count == 0


class StreamingTask:
    """An async-generator prompt (two requests per record) and an async format that asks for
    a title: hooks of every async kind."""

    @hookimpl
    def stage_settings(self, stage: str) -> Any:
        return StageSettings if stage in ("prompt", "format") else None

    @hookimpl
    async def prompt(self, record: Record) -> AsyncIterator[GenerationRequest]:
        for angle in ("short", "long"):
            await asyncio.sleep(0)
            yield ask(f"{angle} text about {record.data['topic']}")

    @hookimpl
    async def format(self, sample: Sample, context: RunContext) -> list[TrainingExample]:
        title = await context.complete(ask(f"title for: {sample.text[:40]}"), step="title")
        return [TrainingExample.completion(prompt=str(title.text), completion=sample.text)]


def test_async_generator_prompts_and_async_formats(
    chain_cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    chain_cli.host.register(StreamingTask(), "streaming")
    preset = write_preset(workdir, count=3)
    text = preset.read_text().replace('[prompt]\nplugin = "chain"', '[prompt]\nplugin = "streaming"')
    text = text.replace('[format]\nplugin = "chain"', '[format]\nplugin = "streaming"')
    preset.write_text(text)
    result = chain_cli("run", "--preset", str(preset), "--yes")
    assert result.exit_code == EXIT_OK, result.output
    # 3 records x 2 prompt requests, each: critique, revise, title
    assert fake_openai.chat_count == 24
    lines = read_dataset(workdir / OUT)
    assert len(lines) == 6 and all(set(line) == {"prompt", "completion"} for line in lines)
    topics = ["topic 0", "topic 1", "topic 2 drop"]
    writes = [b["messages"][-1]["content"] for b in fake_openai.chat_requests if "text about" in str(b)]
    assert sorted(writes) == sorted(f"{a} text about {t}" for t in topics for a in ("short", "long"))
    steps = report(workdir)["steps"]
    assert steps["title"]["generated"] == 6 and steps["prompt"]["generated"] == 6
    again = chain_cli("run", "--preset", str(preset), "--yes")
    assert again.exit_code == EXIT_OK and fake_openai.chat_count == 24
    assert read_dataset(workdir / OUT) == lines
