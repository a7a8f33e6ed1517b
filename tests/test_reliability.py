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
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from synthtune.core.errors import EXIT_BAD_INPUT, EXIT_BUSY, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_PARTIAL
from synthtune.core.runlock import FileLock, store_lock_path
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
    return FakeOpenAI(responder, **kwargs)


# -- 1. failed runs exit non-zero, fast -----------------------------------------------------------


def test_a_refused_port_stops_the_run_with_one_line(workdir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = tune(*run_args(20), cwd=workdir, env={"OPENAI_BASE_URL": url})
    # Found by the check before the run (exit 2, nothing started): see tests/test_preflight.py.
    assert_one_line(result, EXIT_BAD_INPUT, f"cannot reach the server at {url}", "connection refused")


def test_an_unknown_host_stops_the_run_with_one_line(cli: Any, workdir: Path, names: None) -> None:
    result = cli(*run_args(20, "--set", "generate.base_url=http://nowhere.invalid/v1"))
    assert_one_line(
        result, EXIT_BAD_INPUT, "cannot reach the server at http://nowhere.invalid/v1", "unknown host"
    )


def test_tls_to_a_plain_http_server_stops_at_once(
    cli: Any, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url.replace("http://", "https://"))
    result = cli(*run_args(20))
    assert_one_line(result, EXIT_BAD_INPUT, "cannot reach the server", "TLS handshake failed")


def test_base_url_that_is_not_a_url_is_bad_input(cli: Any, workdir: Path) -> None:
    result = cli(*run_args(5, "--set", "generate.base_url=not-a-url"))
    assert_one_line(result, EXIT_BAD_INPUT, "'not-a-url' is not an http:// or https:// URL")


def test_a_server_that_never_answers_stops_the_run(
    cli: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server(faults=Faults(timeout=1.0, hang=5.0)) as hanging:
        monkeypatch.setenv("OPENAI_BASE_URL", hanging.base_url)
        result = cli(*run_args(20, "--set", "generate.timeout=0.2"))
    assert_one_line(result, EXIT_FAILED, "cannot reach the server", "no answer within the timeout")


def test_every_connection_dropped_stops_the_run(
    cli: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    # the run's retry budget (max(10, 2 x 16)), not 9 attempts for each of 60 requests
    assert fake_openai.chat_count <= 5 * 16, fake_openai.chat_count
    assert max(fake_openai.attempts.values()) <= 9  # no body beyond the retry limit


def test_every_reply_an_html_page_ends_non_zero(
    cli: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with server(faults=Faults(html=1.0)) as web_page:
        monkeypatch.setenv("OPENAI_BASE_URL", web_page.base_url)
        result = cli(*run_args(40))
        assert web_page.requests_total <= 5 * 16  # a few waves of the 16 slots, not 9 x 40
    assert_one_line(result, EXIT_FAILED, "the server rejects every request", "text/html")


def test_every_reply_malformed_ends_non_zero(
    cli: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
    fake_openai.responder = lambda body: Reply(
        status=500, error_message=message, error_type="internal_server_error"
    )
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


# -- 2. one writer per store ----------------------------------------------------------------------


def test_a_second_run_on_a_held_store_stops_naming_the_holder(workdir: Path, fake_openai: FakeOpenAI) -> None:
    lock = FileLock(store_lock_path(workdir / "synthtune.db"), "run store")
    lock.acquire()  # as a running `tune run` holds it
    try:
        result = tune(*run_args(3), cwd=workdir, env={"OPENAI_BASE_URL": fake_openai.base_url})
    finally:
        lock.release()
    assert_one_line(result, EXIT_BUSY, "run store synthtune.db is in use by PID", str(os.getpid()))
    assert fake_openai.chat_count == 0


def test_a_second_run_on_a_held_output_folder_stops(cli: Any, workdir: Path, fake_openai: FakeOpenAI) -> None:
    lock = FileLock(workdir / "shared-out" / ".synthtune.lock", "output folder")
    lock.acquire()
    try:
        result = cli(*run_args(3, "--out", "shared-out", "--store", "other.db"))
    finally:
        lock.release()
    assert_one_line(result, EXIT_BUSY, "output folder shared-out is in use by PID")
    assert fake_openai.chat_count == 0


def test_two_concurrent_runs_on_one_store_never_pay_twice(workdir: Path) -> None:
    gate = threading.Event()  # the first run's requests wait here until the second has tried

    def responder(body: dict[str, Any]) -> str:
        gate.wait(timeout=60)
        return default_text(body)

    with server(responder) as held:
        env = {"OPENAI_BASE_URL": held.base_url}
        args = ["run", "--preset", "plot-generator", "--limit", "30", "--yes"]
        first = subprocess.Popen(
            [str(TUNE), *args],
            cwd=workdir,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while held.chat_count == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            second = tune(*args, "--out", "elsewhere", cwd=workdir, env=env)
        finally:
            gate.set()
            _, first_err = first.communicate(timeout=120)
        assert first.returncode == 0, first_err.decode()[-2000:]
        assert_one_line(second, EXIT_BUSY, "run store synthtune.db is in use by PID", str(first.pid))
        assert held.answered_twice() == []
        assert len(held.answered) == 30


def test_outputs_are_all_or_nothing_and_leave_no_temp_files(
    cli: Any, fake_openai: FakeOpenAI, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cli(*run_args(4))
    assert first.exit_code == 0, first.output
    out = workdir / "runs" / "plot-generator"
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (out / ".train.jsonl.killed-run.123.tmp").write_text("left by a killed writer")

    from synthtune.core import outputs

    real = outputs._write_lines
    calls = {"n": 0}

    def full_disk(path: Path, lines: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:  # train.jsonl written, rejected.jsonl not
            raise OSError(28, "No space left on device")
        return real(path, lines)

    monkeypatch.setattr(outputs, "_write_lines", full_disk)
    second = cli(*run_args(6))
    assert_one_line(second, EXIT_FAILED, "cannot write the outputs in runs/plot-generator", "No space left")
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # the first run's files, all of them, untouched; no temp file left


def test_review_does_not_write_while_a_run_holds_the_store(
    cli: Any, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    assert cli(*run_args(3)).exit_code == 0
    train = workdir / "runs" / "plot-generator" / "train.jsonl"
    before = train.read_bytes()
    lock = FileLock(store_lock_path(workdir / "synthtune.db"), "run store")
    lock.acquire()
    try:
        result = cli("review", "latest", input="o\nx\nq\n")
    finally:
        lock.release()
    assert "error: run store synthtune.db is in use by PID" in result.output
    assert train.read_bytes() == before


# -- 3. presets cannot escape or leak -------------------------------------------------------------


PRESET = """
name = "{name}"
[source]
plugin = "plot-generator"
count = 3
[prompt]
plugin = "plot-generator"
[generate]
plugin = "openai"
model = "gpt-4.1-mini"
{generate}
[[filter]]
plugin = "plot-generator"
[format]
plugin = "plot-generator"
"""


def write_preset(folder: Path, name: str = "checked", generate: str = "") -> Path:
    path = folder / "checked.toml"
    path.write_text(PRESET.format(name=name, generate=generate))
    return path


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped", "a/b", ".."])
def test_a_preset_name_that_is_a_path_is_refused(cli: Any, workdir: Path, name: str) -> None:
    result = cli("run", "--preset", str(write_preset(workdir, name)), "--yes")
    assert_one_line(result, EXIT_BAD_INPUT, f"preset name {name!r} must be a simple name")
    assert not (workdir / "escaped").exists() and not Path("/tmp/escaped").exists()


def test_a_preset_name_from_the_command_line_is_checked_too(cli: Any, workdir: Path) -> None:
    result = cli("run", "--preset", "plot-generator", "--set", "name=../x", "--yes")
    assert_one_line(result, EXIT_BAD_INPUT, "preset name '../x' must be a simple name")


def test_a_preset_cannot_read_another_secret(
    cli: Any, workdir: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_OTHER_SECRET", "aws-secret-value-123")
    preset = write_preset(workdir, generate='api_key_env = "MY_OTHER_SECRET"')
    result = cli("run", "--preset", str(preset), "--yes")
    assert_one_line(
        result,
        EXIT_BAD_INPUT,
        "api_key_env = 'MY_OTHER_SECRET'",
        "--set generate.api_key_env=MY_OTHER_SECRET",
    )
    assert fake_openai.chat_count == 0
    # named on the command line, it is the user's choice
    allowed = cli("run", "--preset", str(preset), "--set", "generate.api_key_env=MY_OTHER_SECRET", "--yes")
    assert allowed.exit_code == 0, allowed.output
    assert fake_openai.chat_count == 3


def test_a_preset_sending_the_key_to_an_unknown_host_needs_yes(
    cli: Any, workdir: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, names: None
) -> None:
    from synthtune.core.cli import run_cmd

    monkeypatch.setattr(run_cmd, "stdin_is_interactive", lambda: False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    monkeypatch.delenv("OPENAI_BASE_URL")
    url = fake_openai.base_url.replace("127.0.0.1", "models.example.test")
    preset = write_preset(workdir, generate=f'base_url = "{url}"')
    refused = cli("run", "--preset", str(preset))
    assert_one_line(refused, EXIT_BAD_INPUT, "sends your $OPENAI_API_KEY to models.example.test", "--yes")
    assert fake_openai.chat_count == 0
    sent = cli("run", "--preset", str(preset), "--yes")
    assert sent.exit_code == 0, sent.output
    assert "warning: preset 'checked' sends your $OPENAI_API_KEY to models.example.test" in sent.output
    assert fake_openai.chat_count == 3
    # this machine, or the user's own OPENAI_BASE_URL, need no question
    local = write_preset(workdir, generate=f'base_url = "{fake_openai.base_url}"')
    assert "sends your" not in cli("run", "--preset", str(local), "--yes").output


def test_a_preset_cannot_choose_where_the_trainer_writes_or_run_remote_code(cli: Any, workdir: Path) -> None:
    base = PRESET.format(name="t", generate="") + '[train]\nplugin = "trl"\nmodel = "tiny"\n'
    (workdir / "out.toml").write_text(base + 'output_dir = "/home/someone/.ssh"\n')
    result = cli("presets", "show", str(workdir / "out.toml"))
    assert_one_line(result, EXIT_BAD_INPUT, "[train] output_dir = '/home/someone/.ssh'", "relative path")
    (workdir / "code.toml").write_text(base + "trust_remote_code = true\n")
    result = cli("presets", "show", str(workdir / "code.toml"))
    assert_one_line(result, EXIT_BAD_INPUT, "trust_remote_code = True: a preset may not set this")
    ok = cli(
        "presets",
        "show",
        str(workdir / "code.toml").replace("code", "out"),
        "--set",
        "train.output_dir=/tmp/x",
    )
    assert ok.exit_code == 0, ok.output


# -- 4. no tracebacks on bad input or full disks --------------------------------------------------


def test_a_preset_that_is_not_utf8(cli: Any, workdir: Path) -> None:
    (workdir / "latin.toml").write_bytes(PRESET.format(name="caf\xe9", generate="").encode("latin-1"))
    result = cli("run", "--preset", str(workdir / "latin.toml"), "--yes")
    assert_one_line(result, EXIT_BAD_INPUT, "latin.toml: not UTF-8 text")


def test_a_user_preset_folder_with_a_bad_file_still_lists_the_others(cli: Any, workdir: Path) -> None:
    folder = workdir / "user-presets"
    folder.mkdir()
    (folder / "bad.toml").write_bytes(b"name = '\xff'")
    result = cli("presets", "list")
    assert result.exit_code == 0, result.output
    assert "plot-generator" in result.output and "bad.toml: not UTF-8 text" in result.output


def test_a_deeply_nested_preset(cli: Any, workdir: Path) -> None:
    (workdir / "deep.toml").write_text(
        PRESET.format(name="deep", generate="") + "x = " + "[" * 5000 + "]" * 5000
    )
    result = cli("run", "--preset", str(workdir / "deep.toml"), "--yes")
    assert_one_line(result, EXIT_BAD_INPUT, "deep.toml: nested more than 100 levels deep")


DEEP_LINE = '{"messages": ' + "[" * 20000 + "]" * 20000 + "}\n"


def test_a_deeply_nested_dataset_line_in_validate_train_and_export(cli: Any, workdir: Path) -> None:
    data = workdir / "deep.jsonl"
    data.write_text(DEEP_LINE)
    checked = cli("validate", str(data))
    assert checked.exit_code == 1 and "Traceback" not in checked.output
    assert "nested more than 100 levels deep" in checked.output
    exported = cli("export", str(data), "--format", "sharegpt")
    assert_one_line(exported, EXIT_BAD_INPUT, "deep.jsonl:1: nested more than 100 levels deep")
    trained = cli("train", str(data), "--backend", "trl", "--set", "model=tiny", "--yes")
    assert trained.exit_code != 0 and "Traceback" not in trained.output
    assert "nested more than 100 levels deep" in trained.output


def test_set_below_a_value_is_bad_input(cli: Any, workdir: Path) -> None:
    result = cli("run", "--preset", "plot-generator", "--set", "generate.model.sub=1", "--yes")
    assert_one_line(result, EXIT_BAD_INPUT, "generate.model is a value ('gpt-4.1-mini'), not a table")


def test_export_of_a_line_of_the_wrong_shape(cli: Any, workdir: Path) -> None:
    (workdir / "odd.jsonl").write_text('{"messages": "x"}\n')
    result = cli("export", str(workdir / "odd.jsonl"), "--format", "sharegpt")
    assert_one_line(result, EXIT_BAD_INPUT, "example 1: not a fine-tuning line")


def test_report_html_into_a_folder(cli: Any, fake_openai: FakeOpenAI, workdir: Path) -> None:
    assert cli(*run_args(3)).exit_code == 0
    (workdir / "folder").mkdir()
    result = cli("report", "--html", "folder")
    assert_one_line(result, EXIT_BAD_INPUT, "--html folder is a folder: name a file")
    assert not [p for p in workdir.rglob("*.tmp")]


def test_a_store_damaged_mid_file(cli: Any, fake_openai: FakeOpenAI, workdir: Path) -> None:
    assert cli(*run_args(40, "--store", "damaged.db")).exit_code == 0
    store = workdir / "damaged.db"
    data = bytearray(store.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[3 * page : len(data) - page] = b"\xa5" * (len(data) - 4 * page)  # pages past the schema
    store.write_bytes(bytes(data))
    for extra in ("-wal", "-shm"):
        Path(str(store) + extra).unlink(missing_ok=True)
    report = cli("report", "--store", "damaged.db")
    assert_one_line(report, EXIT_FAILED, "run store:", "Move it aside")
    rerun = cli(*run_args(40, "--store", "damaged.db"))
    assert rerun.exit_code in (EXIT_FAILED, EXIT_BAD_INPUT) and "Traceback" not in rerun.output
    assert len(error_lines(rerun.output)) == 1, rerun.output


class FullDisk:
    """A sqlite3 connection whose COMMITs fail with SQLITE_FULL for a while, as on a full disk
    (SQLite rolls the transaction back)."""

    def __init__(self, conn: sqlite3.Connection, fail_from: int, fail_count: int) -> None:
        self._conn = conn
        self.commits = 0
        self.fail_from, self.fail_count = fail_from, fail_count

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            self.commits += 1
            if self.fail_from <= self.commits < self.fail_from + self.fail_count:
                self._conn.execute("ROLLBACK")
                raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """The run store of ``--store full.db`` hits a full disk at its Nth commit, for K commits."""
    plan = {"from": 4, "count": 10**6}
    real = sqlite3.connect

    def connect(path: Any, *args: Any, **kwargs: Any) -> Any:
        conn = real(path, *args, **kwargs)
        if str(path).endswith("full.db"):
            return FullDisk(conn, plan["from"], plan["count"])
        return conn

    monkeypatch.setattr(sqlite3, "connect", connect)
    yield plan


def _stored_keys(path: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # never creates the file
    try:
        return {row[0] for row in conn.execute("SELECT key FROM generations")}
    finally:
        conn.close()


@pytest.mark.parametrize("freed", [True, False], ids=["space-freed", "space-never-freed"])
def test_a_full_disk_stops_the_run_and_loses_no_paid_answer(
    cli: Any,
    fake_openai: FakeOpenAI,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    full_disk: dict[str, int],
    freed: bool,
) -> None:
    monkeypatch.setenv("SYNTHTUNE_STORE_RETRY_SECONDS", "1")
    full_disk["count"] = 3 if freed else 10**6
    fake_openai.latency = 0.05
    result = cli(*run_args(30, "--store", "full.db", "--set", "generate.concurrency=4"))
    answered = len(fake_openai.answered)
    assert 0 < answered < 30  # stopped early
    stored = _stored_keys(workdir / "full.db")
    if freed:
        assert_one_line(result, EXIT_FAILED, "database or disk is full", "every answer is kept", "rerun")
        assert len(stored) == answered  # every paid answer reached the store
    else:
        line = assert_one_line(result, EXIT_FAILED, "database or disk is full", "could not be saved")
        assert f"{answered - len(stored)} paid answer(s) could not be saved" in line
    assert not list(workdir.rglob("*.tmp"))
    # the disk has room again: the rerun pays only for what the store does not hold
    full_disk["count"] = 0
    again = cli(*run_args(30, "--store", "full.db", "--set", "generate.concurrency=4"))
    assert again.exit_code == 0, again.output
    twice = fake_openai.answered_twice()
    assert len(twice) == (0 if freed else answered - len(stored))


# -- 5. Ctrl-C and control characters --------------------------------------------------------------


def test_ctrl_c_says_what_is_kept_and_exits_130(workdir: Path) -> None:
    # No short timeout here: on a busy machine a 0.2 s answer can take longer than FAST's 0.5 s,
    # and a request that timed out after the server answered is (rightly) sent again.
    args = ["run", "--preset", "plot-generator", "--limit", "40", "--yes"]
    with server(latency=0.2) as slow:
        process = subprocess.Popen(
            [str(TUNE), *args, "--set", "generate.concurrency=2"],
            cwd=workdir,
            env={**os.environ, "OPENAI_BASE_URL": slow.base_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                if len(_stored_keys(workdir / "synthtune.db")) >= 3:
                    break
            except sqlite3.Error:  # not made yet
                continue
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == EXIT_INTERRUPTED, stderr
        assert "Traceback" not in stderr
        kept = len(_stored_keys(workdir / "synthtune.db"))
        assert f"interrupted: {kept} answers kept; rerun the same command to resume" in stderr
        assert kept >= 3
        rerun = tune(*args, cwd=workdir, env={"OPENAI_BASE_URL": slow.base_url})
        assert rerun.returncode == 0, rerun.stderr
        # Only an answer on the wire at the moment of Ctrl-C can be asked for again (at most
        # the requests in flight: 2 slots, 2 spares); everything stored is reused.
        assert len(slow.answered_twice()) <= 4
        assert len(slow.answered) == 40


ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m\rhidden\u202eevil"


def test_review_and_report_strip_control_characters(cli: Any, fake_openai: FakeOpenAI, workdir: Path) -> None:
    fake_openai.responder = lambda body: ESCAPES + " " + default_text(body)
    assert cli(*run_args(3)).exit_code == 0
    reviewed = cli("review", "latest", input="o\nq\n")
    assert reviewed.exit_code == 0, reviewed.output
    for char in ("\x1b", "\x07", "\r", "\u202e"):
        assert char not in reviewed.output
    assert "pwned" not in reviewed.output  # a window title is not text to show
    assert "redhiddenevil" in reviewed.output  # the text around the controls stays readable
    # the dataset itself keeps the model's text as it was
    assert (
        "\x1b]0;pwned\x07"
        in json.loads((workdir / "runs" / "plot-generator" / "train.jsonl").read_text().splitlines()[0])[
            "messages"
        ][-1]["content"]
    )
