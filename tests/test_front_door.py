"""The small things a first run meets: help text as written, quiet broken pipes, a status line while
a source retries, local jobs listed, validation splits by default, paths that work when pasted."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import urllib.error
from pathlib import Path
from typing import Any

import pytest
import typer
from plugin_helpers import Probe
from synthtune.core import hookimpl
from synthtune.core.cli import build_app
from synthtune.core.models import TrainingJob
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import load_preset
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins.reddit import Credentials, RedditClient, RedditError, RedditSourceSettings

TUNE = Path(sys.executable).parent / "tune"
README = Path(__file__).resolve().parents[1] / "README.md"


# -- help text ----------------------------------------------------------------------------------


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command under a click group, with the words that invoke it."""
    found = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if hasattr(command, "commands"):
            found += _commands(command, (*path, name))
    return found


def test_run_help_keeps_its_bracketed_words(cli) -> None:
    result = cli("run", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Output folder [runs/PRESET]." in text
    assert "with the preset's [train] stage." in text


def test_every_option_help_is_rendered_as_written(cli, host: PluginHost) -> None:
    root = typer.main.get_command(build_app(host))
    checked = 0
    for path, command in _commands(root):
        brackets = [
            b for p in command.params for b in re.findall(r"\[[^\]]+\]", getattr(p, "help", "") or "")
        ]
        if not brackets:
            continue
        result = cli(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        text = " ".join(result.output.split())
        for bracket in brackets:
            assert " ".join(bracket.split()) in text, (path, bracket)
            checked += 1
    assert checked >= 10


# -- broken pipe --------------------------------------------------------------------------------


def test_a_closed_pipe_ends_the_command_quietly_with_exit_code_0(workdir: Path) -> None:
    big = workdir / "big.jsonl"
    line = {"messages": [{"role": "user", "content": "x" * 200}, {"role": "assistant", "content": "y"}]}
    big.write_text((json.dumps(line) + "\n") * 3000)  # ~700 kB: far more than a pipe holds
    proc = subprocess.Popen(
        [str(TUNE), "export", str(big), "--format", "openai"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=workdir,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()  # `| head -1`: read one line, then hang up
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, stderr
    assert stderr == ""


# -- a source that retries says so -----------------------------------------------------------


def test_each_retry_to_an_unreachable_host_shows_a_status_line(caplog: pytest.LogCaptureFixture) -> None:
    sleeps: list[float] = []

    def unreachable(method: str, url: str, headers: dict[str, str], body: Any, timeout: float) -> Any:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    settings = RedditSourceSettings(
        base_url="https://reddit.test", auth_url="https://reddit.test", username="someone", max_retries=2
    )
    client = RedditClient(
        settings,
        {}.get,
        {}.__setitem__,
        credentials=Credentials("app-id", "app-secret"),
        fetch=unreachable,
        sleep=sleeps.append,
    )
    with caplog.at_level(logging.WARNING, logger="synthtune"), pytest.raises(RedditError):
        client.get_json("/r/x/top")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == len(sleeps) == 2  # one line before each wait
    # The first request is the token's.
    assert lines[0].startswith(
        "reddit: cannot reach https://reddit.test/api/v1/access_token ([Errno -2] Name or service not known); "
    )
    assert re.search(r"; retry 1 of 2 in \d+\.\ds$", lines[0]) and "retry 2 of 2" in lines[1]


@pytest.mark.usefixtures("encodings")
def test_the_status_line_reaches_the_terminal_before_the_wait(fake_openai: FakeOpenAI, workdir: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["OPENAI_BASE_URL"] = fake_openai.base_url
    env.update(REDDIT_CLIENT_ID="app-id", REDDIT_CLIENT_SECRET="app-secret", REDDIT_USERNAME="someone")
    unreachable = f"http://127.0.0.1:{port}"
    settings = [f"source.base_url={unreachable}", f"source.auth_url={unreachable}", "source.max_retries=1"]
    result = subprocess.run(
        [str(TUNE), "run", "--preset", "writing-coach", "--yes", *[f"--set={s}" for s in settings]],
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=120,
        env=env,
    )
    lines = result.stderr.splitlines()
    assert result.returncode != 0
    assert re.match(
        rf"reddit: cannot reach http://127.0.0.1:{port}/api/v1/access_token .*; retry 1 of 1 in", lines[0]
    )
    assert lines[-1].startswith("error: ") and "cannot reach" in lines[-1]


# -- local jobs ---------------------------------------------------------------------------------


class LocalTrainer(Probe):
    @hookimpl
    def train(self, dataset: Any, settings: Any, context: Any) -> TrainingJob:
        return TrainingJob(
            id="local:models/tiny",
            backend="local-probe",
            status="succeeded",
            base_model="tiny-llama",
            fine_tuned_model="models/tiny",
        )


def test_jobs_list_local_lists_every_trainers_jobs(cli_for, workdir: Path, host: PluginHost) -> None:
    (workdir / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with host.registered(LocalTrainer(), "local-probe"):
        trained = cli_for(host)("train", "train.jsonl", "--backend", "local-probe")
        assert trained.exit_code == 0, trained.output
        listed = cli_for(host)("jobs", "list", "--local")
        as_json = cli_for(host)("jobs", "list", "--local", "--json")
    assert listed.exit_code == 0, listed.output
    assert re.match(
        r"local:models/tiny +local-probe +succeeded +tiny-llama +models/tiny +\d{4}-", listed.stdout
    )
    assert json.loads(as_json.stdout)[0]["backend"] == "local-probe"


def test_jobs_list_local_without_a_run_store_says_so(cli, workdir: Path) -> None:
    result = cli("jobs", "list", "--local")
    assert result.exit_code == 2 and "no run store at synthtune.db" in result.stderr
    assert not (workdir / "synthtune.db").exists()


# -- bundled presets: a validation split where the dataset is big enough -------------------------

# The rule: a bundled preset whose default run asks for 100 answers or more writes a seeded 10%
# validation split; presets on the 40-passage sample corpus, or on a folder of unknown size, do not.
EXPECTED_SPLITS = {
    "plot-generator": 0.1,  # 200 records
    "writing-coach": 0.1,  # up to 100 posts, several stories each
    "compassionate-chatbot": 0.1,  # 51 topics x 2 conversations
    "question-generator": 0.0,  # the 40-passage sample corpus
    "agent-chat": 0.0,  # the same corpus
    "writing-coach-local": 0.0,  # the user's folder, size unknown
}


@pytest.mark.parametrize(("name", "fraction"), EXPECTED_SPLITS.items())
def test_bundled_presets_split_where_the_dataset_is_big_enough(
    host: PluginHost, name: str, fraction: float
) -> None:
    assert load_preset(name, host, []).output.valid_fraction == fraction


# -- paths that work when pasted ----------------------------------------------------------------


def test_the_scaffold_prints_a_path_pip_reads_as_a_path(cli, workdir: Path) -> None:
    result = cli("plugin", "new", "word-explainer")
    assert result.exit_code == 0, result.output
    assert "  pip install -e ./word-explainer\n" in result.stdout
    assert "  pytest ./word-explainer\n" in result.stdout
    (workdir / "sub").mkdir()
    nested = cli("plugin", "new", "word-explainer", "--dir", "sub")
    assert "  pip install -e ./sub/word-explainer\n" in nested.stdout


def test_the_readme_uses_one_command_style() -> None:
    """The README activates the virtual environment once, then writes bare commands."""
    text = README.read_text()
    uses = re.findall(r"\.venv/bin/[\w.-]+", text)
    assert uses == [".venv/bin/activate"], uses
