"""Errors raised by plugin code reach the user as one line naming the plugin, the stage and the
record; the traceback only with --debug / -v / --traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_helpers import Probe, install_distribution, tune, write_probe_preset
from synthtune.core import PluginError, hookimpl
from synthtune.core.plugins import PluginHost
from synthtune.core.testing import FakeOpenAI

# A real process running `tune run` with a filter plugin that raises, over the real OpenAI
# backend (concurrent requests in flight when the filter fails): everything it prints counts,
# including what asyncio prints while the event loop shuts down.
RUN_WITH_A_RAISING_FILTER = textwrap.dedent(
    """
    import sys
    from synthtune.core import hookimpl
    from synthtune.core.cli import build_app
    from synthtune.core.plugins import PluginHost

    class Judge:
        @hookimpl
        def filter(self, sample):
            raise ValueError("the judge is out to lunch")

    host = PluginHost()
    host.load_entrypoints()
    host.register(Judge(), "lunch-judge")
    build_app(host)(sys.argv[1:], prog_name="tune")
    """
)


@pytest.fixture(autouse=True)
def restore_the_traceback_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tune --debug` in-process sets SYNTHTUNE_TRACEBACK for the rest of the process: undo it
    after each test, so later tests get one-line errors again."""
    monkeypatch.setenv("SYNTHTUNE_TRACEBACK", "")


def _run_in_a_process(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = workdir / "run_with_a_raising_filter.py"  # a file, so tracebacks show its lines
    script.write_text(RUN_WITH_A_RAISING_FILTER)
    with FakeOpenAI() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SYNTHTUNE_TRACEBACK"))}
        env["OPENAI_BASE_URL"] = server.base_url
        return subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            cwd=workdir,
            env=env,
            timeout=120,
        )


RUN_ARGS = (
    "run",
    "--preset",
    "plot-generator",
    "--limit",
    "12",
    "--yes",
    "--set",
    'filter=[{plugin="lunch-judge"}]',
)


def test_a_raising_filter_prints_one_line_and_no_asyncio_traceback(workdir: Path) -> None:
    result = _run_in_a_process(workdir, *RUN_ARGS)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: plugin 'lunch-judge' failed in stage 'filter' on record '")
    assert lines[0].endswith("': the judge is out to lunch")


def test_debug_shows_the_traceback(workdir: Path) -> None:
    result = _run_in_a_process(workdir, "--debug", *RUN_ARGS)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert 'raise ValueError("the judge is out to lunch")' in result.stderr  # the plugin's own line
    assert "PluginError: plugin 'lunch-judge' failed in stage 'filter' on record" in result.stderr


@pytest.mark.parametrize("switch", ["--debug", "-v", "--traceback"])
def test_each_debug_switch_lets_the_original_error_through(
    host: PluginHost, cli_for, workdir: Path, switch: str
) -> None:
    with host.registered(Probe(fail_in="filter", message="no"), "probe"):
        quiet = cli_for(host)("run", "--preset", str(write_probe_preset(workdir)), "--yes")
        loud = cli_for(host)(switch, "run", "--preset", str(write_probe_preset(workdir)), "--yes")
    assert quiet.exit_code == 1 and isinstance(quiet.exception, SystemExit)  # one line, then exit 1
    assert isinstance(loud.exception, PluginError) and isinstance(loud.exception.__cause__, ValueError)


@pytest.mark.parametrize(
    ("stage", "record"), [("source", None), ("prompt", "r1"), ("filter", "r1"), ("format", "r1")]
)
def test_plugin_error_carries_the_record_id(
    host: PluginHost, cli_for, workdir: Path, stage: str, record: str | None
) -> None:
    with host.registered(Probe(fail_in=stage, message="no"), "probe"):
        result = cli_for(host)("--traceback", "run", "--preset", str(write_probe_preset(workdir)), "--yes")
    error = result.exception
    assert isinstance(error, PluginError)
    assert (error.plugin, error.stage, error.record_id) == ("probe", stage, record)
    assert isinstance(error.original, ValueError)


def test_a_key_error_names_its_type(host: PluginHost, cli_for, workdir: Path) -> None:
    class Format(Probe):
        @hookimpl
        def format(self, sample):  # type: ignore[no-untyped-def]
            return sample.record.data["missing"]

    with host.registered(Format(), "probe"):
        result = cli_for(host)("run", "--preset", str(write_probe_preset(workdir)), "--yes")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "error: plugin 'probe' failed in stage 'format' on record 'r0': KeyError: 'missing'\n"
    )


def test_debug_before_the_command_adds_tracebacks_to_load_warnings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path
) -> None:
    site = install_distribution(
        monkeypatch,
        tmp_path / "site",
        "synthtune-crashy",
        "1.0",
        {"crashy": "raise RuntimeError('no luck')\n"},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHTUNE_TRACEBACK")}
    env["PYTHONPATH"] = str(site)
    quiet = tune("plugins", "list", env=env, cwd=workdir)
    loud = tune("--debug", "plugins", "list", env=env, cwd=workdir)
    warning = "warning: plugin 'crashy' failed to import: RuntimeError: no luck"
    assert quiet.returncode == 0 and quiet.stderr.splitlines() == [warning]
    assert loud.returncode == 0 and loud.stderr.startswith(warning + "\nTraceback (most recent call last):")
    assert "synthtune_crashy_crashy.py" in loud.stderr
