"""The reliability and trust probes of issue 18, replayed: each one a test that ends in one line
and the documented exit code (see core/errors.py and docs/reliability.md).

Runs go through the real `tune run` (in-process with CliRunner, or the installed console script
where a separate process matters: signals, locks, timing) against the stand-in server
(core/testing), with small timeouts and backoffs so every test stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REFERENCE
from synthtune.core.errors import EXIT_BAD_INPUT, EXIT_BUSY, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_PARTIAL
from synthtune.core.runlock import FileLock, store_lock_path
from synthtune.core.store import RunStore
from synthtune.core.testing import FakeOpenAI, Reply, default_text
from synthtune.core.testing.limits import Faults

TUNE = Path(sys.executable).parent / "tune"
FAST = [
    "--set",
    "generate.timeout=0.5",
    "--set",
    "generate.backoff_base=0.01",
    "--set",
    "generate.backoff_cap=0.05",
    "--set",
    "generate.unreachable_after=0.3",
]


def run_args(records: int = 20, *extra: str) -> list[str]:
    return ["run", "--preset", "plot-generator", "--limit", str(records), "--yes", *FAST, *extra]


def tune(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    """The installed `tune` in a subprocess, with no OPENAI_/SYNTHTUNE_ variables but ``env``."""
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SYNTHTUNE_")) or k == "SYNTHTUNE_DISABLE_PLUGINS"
    }
    full.update(env or {})
    return subprocess.run(
        [str(TUNE), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def assert_one_line(result: Any, code: int, *needles: str, stderr: str | None = None) -> str:
    """``result`` (subprocess or CliRunner) exited ``code`` with exactly one `error:` line
    holding every needle, and no traceback."""
    text = stderr if stderr is not None else getattr(result, "stderr", None) or result.output
    returned = getattr(result, "returncode", getattr(result, "exit_code", None))
    assert returned == code, (returned, text[-2000:])
    assert "Traceback" not in text, text[-3000:]
    errors = error_lines(text)
    assert len(errors) == 1, text[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process, ``nowhere.invalid`` does not resolve and ``models.example.test`` is
    127.0.0.1: DNS behaviour without asking a DNS server."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "nowhere.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host == "models.example.test":
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def server(responder: Any = None, **kwargs: Any) -> FakeOpenAI:
    return FakeOpenAI(responder, schema_path=REFERENCE / "openai-request-schemas.json", **kwargs)


# -- 1. failed runs exit non-zero, fast -----------------------------------------------------------


def test_a_refused_port_stops_the_run_with_one_line(workdir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = tune(*run_args(20), cwd=workdir, env={"OPENAI_BASE_URL": url})
    assert_one_line(result, EXIT_FAILED, f"cannot reach the server at {url}", "connection refused")


def test_an_unknown_host_stops_the_run_with_one_line(cli: Any, workdir: Path, names: None) -> None:
    result = cli(*run_args(20, "--set", "generate.base_url=http://nowhere.invalid/v1"))
    assert_one_line(result, EXIT_FAILED, "cannot reach the server at http://nowhere.invalid/v1", "unknown host")


def test_tls_to_a_plain_http_server_stops_at_once(
    cli: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url.replace("http://", "https://"))
    result = cli(*run_args(20))
    assert_one_line(result, EXIT_FAILED, "cannot reach the server", "TLS handshake failed")


def test_base_url_that_is_not_a_url_is_bad_input(cli: Any, workdir: Path) -> None:
    result = cli(*run_args(5, "--set", "generate.base_url=not-a-url"))
    assert_one_line(result, EXIT_BAD_INPUT, "'not-a-url' is not an http:// or https:// URL")


def test_a_server_that_never_answers_stops_the_run(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with server(faults=Faults(timeout=1.0, hang=5.0)) as hanging:
        monkeypatch.setenv("OPENAI_BASE_URL", hanging.base_url)
        result = cli(*run_args(20, "--set", "generate.timeout=0.2"))
    assert_one_line(result, EXIT_FAILED, "cannot reach the server", "no answer within the timeout")


def test_every_connection_dropped_stops_the_run(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with server(faults=Faults(reset=1.0)) as dropping:
        monkeypatch.setenv("OPENAI_BASE_URL", dropping.base_url)
        result = cli(*run_args(20))
    assert_one_line(result, EXIT_FAILED, "cannot reach the server", "closed the connection")


def test_every_request_a_500_ends_non_zero_and_quickly(
    cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = lambda body: Reply(status=500, error_message="the engine is on fire")
    result = cli(*run_args(60))
    assert_one_line(
        result, EXIT_FAILED, "the server rejects every request", "HTTP 500: the engine is on fire"
    )
    # the run's retry budget (max(10, concurrency 16)), not 9 attempts for each of 60 requests
    assert fake_openai.chat_count <= 4 * 16, fake_openai.chat_count
    assert max(fake_openai.attempts.values()) <= 9  # no body beyond the retry limit


def test_every_reply_an_html_page_ends_non_zero(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with server(faults=Faults(html=1.0)) as web_page:
        monkeypatch.setenv("OPENAI_BASE_URL", web_page.base_url)
        result = cli(*run_args(40))
        assert web_page.requests_total <= 4 * 16  # a few waves of the 16 slots, not 9 x 40
    assert_one_line(result, EXIT_FAILED, "the server rejects every request", "text/html")


def test_every_reply_malformed_ends_non_zero(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with server(faults=Faults(malformed=1.0)) as broken:
        monkeypatch.setenv("OPENAI_BASE_URL", broken.base_url)
        result = cli(*run_args(40))
    assert_one_line(result, EXIT_FAILED, "the server rejects every request", "malformed response")


def test_a_deterministic_400_is_sent_once_and_stops_the_run(cli: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = lambda body: Reply(status=400, error_message="model 'gpt-nope' does not exist")
    result = cli(*run_args(60))
    assert_one_line(
        result, EXIT_FAILED, "the server rejects every request: the first 8 all failed with HTTP 400"
    )
    assert set(fake_openai.attempts.values()) == {1}  # never sent twice
    assert fake_openai.chat_count < 8 + 2 * 16


def test_a_500_saying_the_request_is_invalid_is_not_retried(cli: Any, fake_openai: FakeOpenAI) -> None:
    # llama-cpp-python answers a body it cannot validate with a 500 naming the validation error
    message = "1 validation error for CreateChatCompletionRequest response_format: Input should be 'text'"
    fake_openai.responder = lambda body: Reply(status=500, error_message=message, error_type="internal_server_error")
    result = cli(*run_args(30))
    assert_one_line(result, EXIT_FAILED, "the server rejects every request", "HTTP 500: 1 validation error")
    assert set(fake_openai.attempts.values()) == {1}


def test_insufficient_quota_stops_the_run_at_once(cli: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = lambda body: Reply(
        status=429, error_message="You exceeded your current quota", error_code="insufficient_quota"
    )
    result = cli(*run_args(60))
    assert_one_line(result, EXIT_FAILED, "(429, insufficient_quota): You exceeded your current quota")
    assert fake_openai.chat_count <= 16  # the first wave, no retries


def test_a_429_storm_is_announced_off_a_terminal_and_ends_non_zero(workdir: Path) -> None:
    with server(faults=Faults(rate_limit=1.0, retry_after=0.2)) as storm:
        result = tune(
            *run_args(20),
            "--set",
            "generate.rate_limit_max_stall=3",
            "--set",
            "generate.rate_limit_notice_every=0.5",
            cwd=workdir,
            env={"OPENAI_BASE_URL": storm.base_url},
        )
        assert storm.answered == {}
    assert_one_line(result, EXIT_FAILED, "rate limited: no answer for", "injected rate limit")
    notices = [line for line in result.stderr.splitlines() if line.startswith("rate limited: waiting")]
    assert notices and "server says: injected rate limit; retry after 0.2s" in notices[0]


def test_some_failures_make_a_partial_run_exit_3(cli: Any, fake_openai: FakeOpenAI, workdir: Path) -> None:
    def responder(body: dict[str, Any]) -> Reply | str:
        if "science fiction" in body["messages"][-1]["content"]:
            return Reply(status=400, error_message="scripted refusal")
        return default_text(body)

    fake_openai.responder = responder
    result = cli(*run_args(24))
    assert result.exit_code == EXIT_PARTIAL, result.output
    assert "warning:" in result.output and "the dataset is partial; rerun to retry them" in result.output
    assert "Traceback" not in result.output


def test_an_empty_dataset_exits_1(cli: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = lambda body: "Far too short to keep."
    result = cli(*run_args(6))
    assert_one_line(result, EXIT_FAILED, "the dataset is empty: the filters dropped all 6 samples")


def test_every_request_failed_in_a_small_run_exits_1(cli: Any, fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = lambda body: Reply(status=422, error_message="unprocessable")
    result = cli(*run_args(3))  # fewer requests than the fail-fast needs: the run ends, then says so
    assert_one_line(result, EXIT_FAILED, "every request failed (3): HTTP 422: unprocessable")
