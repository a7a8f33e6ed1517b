"""``tune run --preset writing-coach`` against the OAuth Reddit stand-in: with credentials, without,
and when Reddit refuses."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import read_jsonl
from plugin_helpers import tune
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins.reddit.sample_threads import STORY_IDS
from synthtune.plugins.reddit.testing import FakeReddit
from test_writing_coach import coach_responder

AGENT = "python:synthtune:0.1.0 (by /u/synthtune_tests)"


def run_args(server: FakeReddit, *more: str) -> list[str]:
    return [
        "run",
        "--preset",
        "writing-coach",
        "--set",
        f"source.base_url={server.base_url}",
        "--set",
        f"source.auth_url={server.base_url}",
        *more,
        "--yes",
    ]


@pytest.mark.usefixtures("encodings")
def test_limit_5_with_credentials_fetches_with_a_token_within_the_budget(
    cli, fake_openai: FakeOpenAI, workdir: Path, monkeypatch: pytest.MonkeyPatch, line_validators
) -> None:
    fake_openai.responder = coach_responder
    # A budget of 4 requests a second: the five API requests must be paced by the headers.
    with FakeReddit(quota=4, window=1.0) as reddit:
        for name, value in reddit.env().items():
            monkeypatch.setenv(name, value)
        result = cli(*run_args(reddit, "--set", "source.rate_window=1", "--limit", "5"))
    assert result.exit_code == 0, result.output

    paths = [r.path for r in reddit.requests]
    assert paths[:5] == [
        "/api/v1/access_token",
        "/r/WritingPrompts/top",
        "/comments/abc101",
        "/r/WritingPrompts/top",
        "/comments/abc102",
    ]
    # The walk is lazy: it goes no further than the runner pulls. The runner asks for one record
    # past --limit before it stops (core/pipeline.py), which costs the next page and thread.
    assert paths[5:] in ([], ["/r/WritingPrompts/top", "/comments/abc103"])
    api = reddit.api_requests()
    assert {r.status for r in reddit.requests} == {200}  # paced, never refused
    assert reddit.tokens_issued == 1 and all(r.token for r in api)
    assert {r.user_agent for r in reddit.requests} == {AGENT}

    report = json.loads((workdir / "runs/writing-coach/report.json").read_text())
    assert report["records"] == 5
    prompts = "\n".join(body["messages"][-1]["content"] for body in fake_openai.chat_requests)
    assert all(name in prompts for name in ("Marguerite", "Tobias", "Ilse", "Rennick", "Agnes"))
    for line in read_jsonl(workdir / "runs/writing-coach/train.jsonl"):
        assert not list(line_validators["chat"].iter_errors(line))
    assert STORY_IDS[:5] == ["lamp01", "tide02", "clock04", "fox03", "log05"]


def test_without_credentials_one_line_and_exit_2_before_any_request(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    # In-process CLI tests may have set SYNTHTUNE_TRACEBACK in this process (`tune --traceback`).
    dropped = ("REDDIT_", "OPENAI_", "SYNTHTUNE_TRACEBACK", "SYNTHTUNE_STORE", "SYNTHTUNE_LOAD_PLUGINS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(
        OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=fake_openai.base_url, SYNTHTUNE_PRESETS_DIR=str(tmp_path)
    )
    with FakeReddit() as reddit:
        result = tune(*run_args(reddit, "--limit", "5"), env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: reddit: REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET not set.")
    for expected in ("403 since May 2026", "OAuth app", "writing-coach-dump", "writing-coach-hf", "README"):
        assert expected in lines[0]
    assert reddit.request_count == 0
    assert fake_openai.chat_count == 0


def test_a_403_from_the_api_is_one_line(
    cli, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeReddit() as reddit:
        for name, value in reddit.env().items():
            monkeypatch.setenv(name, value)
        reddit.forbid_api()
        result = cli(*run_args(reddit))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "HTTP 403" in lines[0] and "approved app" in lines[0]
    assert len(reddit.api_requests()) == 1 and fake_openai.chat_count == 0


def test_a_revoked_app_is_one_line_without_a_retry_loop(
    cli, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeReddit() as reddit:
        for name, value in reddit.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("REDDIT_CLIENT_SECRET", "an-old-secret")
        result = cli(*run_args(reddit))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "refused the app's credentials (HTTP 401" in lines[0]
    assert "an-old-secret" not in result.output
    assert [r.path for r in reddit.requests] == ["/api/v1/access_token"]
