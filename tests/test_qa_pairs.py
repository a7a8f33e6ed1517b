"""qa-pairs: a two-step preset (questions, then one answer request per question) through the engine."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import read_jsonl
from synthtune.core.presets import load_preset
from synthtune.core.testing import FakeOpenAI, Reply
from synthtune.plugins.qa_pairs import source
from synthtune.plugins.qa_pairs.settings import QaSourceSettings
from synthtune.plugins.qa_pairs.steps import parse_questions
from test_resume import _committed, _env

TUNE = Path(sys.executable).parent / "tune"
RUN = ["run", "--preset", "qa-pairs", "--limit", "6", "--yes"]


def is_questions(body: dict[str, Any]) -> bool:
    return "distinct questions" in body["messages"][-1]["content"]


def teacher(body: dict[str, Any]) -> Reply:
    """Four questions per record (its own, from the topic line), and an answer naming its question."""
    prompt = body["messages"][-1]["content"]
    if is_questions(body):
        about = (
            prompt.split("ask about ", 1)[1].split(". Each", 1)[0]
            if "ask about " in prompt
            else "the passage"
        )
        if about == "the passage":  # one set of questions per passage
            about = f"passage {hashlib.sha256(prompt.encode()).hexdigest()[:8]}"
        questions = [
            f"What is the {n} thing to know about {about}?" for n in ("first", "second", "third", "fourth")
        ]
        return Reply(text=json.dumps({"questions": questions}))
    return Reply(text=f"The answer to: {prompt.splitlines()[-1]}")


def dataset(folder: Path) -> list[dict[str, Any]]:
    return [
        line
        for name in ("train.jsonl", "valid.jsonl")
        if (folder / name).exists()
        for line in read_jsonl(folder / name)
    ]


# -- pure parts ---------------------------------------------------------------------------------------


def test_questions_are_read_from_json_fenced_json_or_question_lines() -> None:
    limit = {"limit": 10, "min_chars": 5}
    assert parse_questions('{"questions": ["Why is it so?", "How come?"]}', **limit) == [
        "Why is it so?",
        "How come?",
    ]
    assert parse_questions('```json\n["What is X?", "what is x?", "Who?"]\n```', **limit) == ["What is X?"]
    assert parse_questions("Sure:\n1. What is X?\n- Why does Y happen?\nA statement.", **limit) == [
        "What is X?",
        "Why does Y happen?",
    ]
    assert parse_questions("nothing to see", **limit) == []
    assert parse_questions(
        '{"questions": ["Q one here?", "Q two here?", "Q three?"]}', limit=2, min_chars=1
    ) == [
        "Q one here?",
        "Q two here?",
    ]


def test_the_topic_source_takes_the_areas_in_turn() -> None:
    from synthtune.core import RunContext

    records = list(source(QaSourceSettings(), RunContext(run_id="r", seed=1)))
    assert len(records) == 36 and len({r.id for r in records}) == 36
    assert len({r.category for r in records[:6]}) == 6  # a --limit 6 covers every area once


# -- runs ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("encodings")
def test_qa_pairs_sends_more_requests_than_records_writes_chat_lines_and_a_rerun_sends_nothing(
    cli, workdir: Path, monkeypatch, line_validators
) -> None:
    with FakeOpenAI(teacher) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli(*RUN)
        assert result.exit_code == 0, result.output
        assert server.chat_count == 6 + 6 * 4  # one questions request per record, one per answer
        answers = [b for b in server.chat_requests if not is_questions(b)]
        assert len(answers) == 24
        questions = {b["messages"][-1]["content"] for b in answers}
        assert len(questions) == 24 and all(q.endswith("?") for q in questions)  # each in its own request
        first = server.chat_requests[0]
        assert first["response_format"]["type"] == "json_schema"  # step 1 asks for a JSON list

        report = json.loads((workdir / "runs/qa-pairs/report.json").read_text())
        assert report["records"] == 6 and report["requests"] == 30
        assert report["steps"]["answer"]["requests"] == 24 and report["steps"]["prompt"]["requests"] == 6

        lines = dataset(workdir / "runs/qa-pairs")
        assert len(lines) == 24
        for line in lines:
            assert not list(line_validators["chat"].iter_errors(line))
            user, assistant = line["messages"]
            assert user["role"] == "user" and assistant == {
                "role": "assistant",
                "content": f"The answer to: {user['content']}",
            }
        check = cli("validate", str(workdir / "runs/qa-pairs/train.jsonl"))
        assert check.exit_code == 0, check.output

        rerun = cli(*RUN)
        assert rerun.exit_code == 0, rerun.output
        assert server.chat_count == 30  # nothing sent again
        assert dataset(workdir / "runs/qa-pairs") == lines
        assert server.answered_twice() == []


def test_questions_about_corpus_passages_are_answered_from_the_passage(
    cli, workdir: Path, monkeypatch
) -> None:
    with FakeOpenAI(teacher) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli(
            "run",
            "--preset",
            "qa-pairs",
            "--limit",
            "3",
            "--yes",
            "--set",
            "source.plugin=corpus",
            "--set",
            "source.path=package:synthtune.plugins.corpus/sample",
        )
        assert result.exit_code == 0, result.output
        asks = [b for b in server.chat_requests if is_questions(b)]
        assert len(asks) == 3 and all("PASSAGE:" in b["messages"][-1]["content"] for b in asks)
        answers = [b for b in server.chat_requests if not is_questions(b)]
        assert len(answers) == 12
        assert all(
            b["messages"][-1]["content"].startswith("PASSAGE:")
            and "QUESTION: " in b["messages"][-1]["content"]
            for b in answers
        )
    lines = dataset(workdir / "runs/qa-pairs")
    assert len(lines) == 12
    assert all(not line["messages"][0]["content"].startswith("PASSAGE") for line in lines)  # question only


def test_a_failed_answer_fails_the_record_and_the_rerun_asks_only_for_it(
    cli, workdir: Path, monkeypatch
) -> None:
    failing = {"on": True}

    def flaky(body: dict[str, Any]) -> Reply:
        if failing["on"] and not is_questions(body) and "second thing" in body["messages"][-1]["content"]:
            return Reply(status=400, error_message="scripted refusal", error_type="invalid_request_error")
        return teacher(body)

    with FakeOpenAI(flaky) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        first = cli(*RUN)
        assert first.exit_code != 0 or "failed" in first.output
        sent = server.chat_count
        report = json.loads((workdir / "runs/qa-pairs/report.json").read_text())
        assert report["failed_records"] == 6
        failing["on"] = False
        again = cli(*RUN)
        assert again.exit_code == 0, again.output
        # Only the six failed answers are asked again: questions and the other answers come from the store.
        assert server.chat_count - sent == 6
        assert len(dataset(workdir / "runs/qa-pairs")) == 24
        assert server.answered_twice() == []


def test_the_preset_resolves_with_a_judge_appended(host, workdir: Path) -> None:
    preset = load_preset("qa-pairs", host, filters=["judge"])
    assert [f.plugin for f in preset.filters] == ["qa-pairs", "judge"]
    assert "questions" in (preset.filters[1].settings.rubric or "")  # the task's rubric


# -- kill -9 in the middle of the chain --------------------------------------------------------------


class HoldAfterAnswers:
    """Answer requests until ``n`` answer requests were let through; from then on hold every
    request (the process is killed while they wait), so nothing is delivered but not committed."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.answers = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        reply = teacher(body)
        with self.lock:
            hold = self.answers >= self.n
            if not hold and not is_questions(body):
                self.answers += 1
        reply.delay = 30.0 if hold else 0.02
        return reply


def test_sigkill_mid_chain_then_rerun_answers_no_request_twice(workdir: Path) -> None:
    responder = HoldAfterAnswers(10)
    args = [str(TUNE), *RUN, "--set", "generate.concurrency=4"]
    with FakeOpenAI(responder) as server:
        proc = subprocess.Popen(
            args, cwd=workdir, env=_env(server.base_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 60
            # 10 answers (and the questions before them) delivered and committed, the rest held:
            # the kill lands between the steps.
            settled = 0
            while settled < 3:
                assert time.monotonic() < deadline, "timed out"
                time.sleep(0.1)
                delivered = sum(server.answered.values())
                done = responder.answers >= 10 and delivered == _committed(workdir / "synthtune.db")
                settled = settled + 1 if done else 0
            assert 10 < delivered < 30
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
        assert sum(server.answered.values()) == 30
    assert len(dataset(workdir / "runs/qa-pairs")) == 24


@pytest.mark.usefixtures("encodings")
def test_estimate_counts_every_step(cli, workdir: Path) -> None:
    result = cli("estimate", "--preset", "qa-pairs", "--limit", "6", "--json")
    assert result.exit_code == 0, result.output
    estimate = json.loads(result.output)
    assert estimate["records"] == 6
    assert estimate["steps"]["prompt"]["total"]["requests"] == 6
    assert estimate["steps"]["answer"]["total"]["requests"] == 24  # 4 questions per record
    assert estimate["total"]["requests"] == 30
    assert estimate["training"]["examples"] == 24


def test_both_structured_steps_adapt_to_a_server_that_refuses_json_schema(host, workdir: Path) -> None:
    """llama-cpp-python's server refuses response_format json_schema: the openai plugin knows the
    server kind, so step 1's questions and the judge's verdicts go as json_object with the schema
    instead, and the run is the same."""
    from synthtune.core.testkit import run_preset

    def local(body: dict[str, Any]) -> Reply:
        if body["messages"][0]["content"].startswith("You are a strict, consistent judge"):
            return Reply(text=json.dumps({"score": 9, "reason": "specific"}))
        return teacher(body)

    with FakeOpenAI(local, persona="llama-cpp-python") as server:
        out = run_preset(
            "qa-pairs",
            overrides=["generate.model=smollm2", 'filter=[{plugin = "qa-pairs"}, {plugin = "judge"}]'],
            limit=2,
            host=host,
            server=server,
            workdir=workdir,
        )
        shapes = {json.dumps(b.get("response_format", {}).get("type")) for b in server.chat_requests}
        assert not server.refused_formats
    assert '"json_object"' in shapes and '"json_schema"' not in shapes
    assert out.report["kept"] == 2 and len(out.train) + len(out.valid) == 8
    assert out.report["steps"]["judge"]["requests"] == 2 and out.line_errors() == []
