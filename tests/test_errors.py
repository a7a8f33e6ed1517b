"""Bad input: one line on stderr naming the problem, exit code 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from synthtune.core.testing import FakeOpenAI

TUNE = Path(sys.executable).parent / "tune"

GOOD = """
name = "mini"
seed = 1
[source]
plugin = "plot-generator"
count = 3
[prompt]
plugin = "plot-generator"
[generate]
plugin = "openai"
model = "gpt-4.1-mini"
[format]
plugin = "plot-generator"
"""


def run_tune(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SYNTHTUNE_")) or k == "SYNTHTUNE_DISABLE_PLUGINS"
    }
    full_env.update(env or {})
    return subprocess.run(
        [str(TUNE), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("name = 'x'\n[source\nplugin = 1", ["bad.toml", "invalid TOML"]),
        (
            GOOD.replace('plugin = "openai"', 'plugin = "no-such-plugin"'),
            ["bad.toml", "no-such-plugin", "[generate]"],
        ),
        (GOOD.replace("count = 3", 'count = "three"'), ["bad.toml", "[source]", "count"]),
        (GOOD.replace("count = 3", "count = 3\nfavourite_colour = 'red'"), ["[source]", "favourite_colour"]),
        (GOOD.replace("[format]\nplugin", "[format]\nplugin = 'openai'\n#"), ["openai", "format"]),
    ],
    ids=["malformed-toml", "unknown-plugin", "wrong-type", "unknown-key", "plugin-lacks-stage"],
)
def test_bad_presets_fail_before_any_work(workdir: Path, text: str, needles: list[str]) -> None:
    (workdir / "bad.toml").write_text(text)
    result = run_tune("run", "--preset", "bad.toml", "--yes", cwd=workdir)
    assert_one_line_error(result, *needles)
    assert not (workdir / "synthtune.db").exists()


def test_bad_override_type_names_the_field(workdir: Path) -> None:
    result = run_tune(
        "run", "--preset", "plot-generator", "--set", "generate.concurrency=many", "--yes", cwd=workdir
    )
    assert_one_line_error(result, "[generate]", "concurrency")


def test_unknown_preset(workdir: Path) -> None:
    result = run_tune("run", "--preset", "nope", "--yes", cwd=workdir)
    assert_one_line_error(result, "unknown preset 'nope'", "plot-generator")


def test_missing_api_key_is_a_one_line_error(workdir: Path) -> None:
    result = run_tune("run", "--preset", "plot-generator", "--limit", "2", "--yes", cwd=workdir)
    assert_one_line_error(result, "OPENAI_API_KEY is not set")
    assert list(workdir.iterdir()) == []  # no run store, no output folder


def test_without_key_or_terminal_the_key_is_the_first_error(workdir: Path) -> None:
    # No --yes and no terminal: the key is checked before the estimate and the --yes question.
    result = run_tune("run", "--preset", "plot-generator", "--limit", "5", cwd=workdir)
    assert_one_line_error(result, "OPENAI_API_KEY is not set")
    assert result.stdout == ""  # no estimate printed
    assert list(workdir.iterdir()) == []


def test_missing_key_is_not_needed_when_everything_is_cached(workdir: Path) -> None:
    with FakeOpenAI() as server:
        first = run_tune(
            "run",
            "--preset",
            "plot-generator",
            "--limit",
            "2",
            "--yes",
            cwd=workdir,
            env={"OPENAI_BASE_URL": server.base_url},
        )
        assert first.returncode == 0, first.stderr
    # No server, no key: the answers are all in the run store, so no client is ever made.
    again = run_tune("run", "--preset", "plot-generator", "--limit", "2", "--yes", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert "OPENAI_API_KEY is not set" in again.stderr and "(not needed: every request" in again.stderr
    # One request more than the store holds: the key is needed again, and said first.
    more = run_tune("run", "--preset", "plot-generator", "--limit", "3", "--yes", cwd=workdir)
    assert_one_line_error(more, "OPENAI_API_KEY is not set")


def test_refusing_credentials_stops_the_run(workdir: Path) -> None:
    from synthtune.core.testing import Reply

    with FakeOpenAI(lambda body: Reply(status=401, error_message="Incorrect API key provided")) as server:
        result = run_tune(
            "run",
            "--preset",
            "plot-generator",
            "--limit",
            "3",
            "--yes",
            cwd=workdir,
            env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-secret-value-123"},
        )
    assert result.returncode == 1
    assert "Incorrect API key provided" in result.stderr
    assert "Traceback" not in result.stderr
    assert "sk-secret-value-123" not in result.stderr + result.stdout
    assert b"sk-secret-value-123" not in (workdir / "synthtune.db").read_bytes()


@pytest.mark.usefixtures("encodings")  # the estimate in the message counts tokens
def test_non_interactive_run_without_yes_refuses_to_spend(workdir: Path) -> None:
    with FakeOpenAI() as server:
        result = run_tune(
            "run", "--preset", "plot-generator", cwd=workdir, env={"OPENAI_BASE_URL": server.base_url}
        )
        assert server.chat_count == 0
    assert_one_line_error(result, "--yes")
    assert list(workdir.iterdir()) == []  # asking wrote nothing


def test_traceback_switch_shows_the_original_error(workdir: Path) -> None:
    result = run_tune("--traceback", "run", "--preset", "nope", "--yes", cwd=workdir)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr
