"""The public testing helpers: synthtune.core.testkit and the pytest fixtures (pytest11 plugin)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_helpers import Probe
from synthtune.core import Verdict, hookimpl
from synthtune.core.errors import ConfigError
from synthtune.core.plugins import PluginHost
from synthtune.core.testing import Reply
from synthtune.core.testkit import fake_openai_server, make_sample, registered_plugin, run_preset


def test_run_preset_runs_a_bundled_preset_in_a_temporary_folder(workdir: Path, host: PluginHost) -> None:
    out = run_preset("plot-generator", limit=3, host=host)
    assert out.preset == "plot-generator" and out.report["status"] == "finished"
    assert len(out.train) == 3 and out.line_errors() == [] and len(out.requests) == 3
    assert not out.out_dir.exists()  # the temporary folder is gone, the lines were read first
    assert list(workdir.iterdir()) == []  # nothing written to the current folder
    assert "OPENAI_BASE_URL" not in os.environ  # the environment is restored


def test_run_preset_with_a_responder_and_overrides(workdir: Path, host: PluginHost) -> None:
    def responder(body: dict) -> Reply:
        return Reply(text="too short", finish_reason="stop")

    out = run_preset("plot-generator", limit=2, host=host, responder=responder, overrides=["seed=5"])
    assert out.train == [] and out.report["dropped"] == {"plot-generator: too short": 2}
    assert len(out.rejected) == 2


def test_line_errors_reports_invalid_lines() -> None:
    from synthtune.core.testkit import RunOutput

    out = RunOutput(
        "x", Path("."), train=[{"messages": [{"role": "wizard"}]}], valid=[], rejected=[], report={}
    )
    assert out.line_errors() and out.line_errors()[0].startswith("train.jsonl:1: ")


def test_fake_openai_server_sets_and_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-user")
    with fake_openai_server() as server:
        assert os.environ["OPENAI_BASE_URL"] == server.base_url and "OPENAI_API_KEY" not in os.environ
    assert os.environ["OPENAI_API_KEY"] == "sk-user" and "OPENAI_BASE_URL" not in os.environ


def test_registered_plugin_is_gone_after_the_block(host: PluginHost) -> None:
    with registered_plugin(host, Probe(), "probe"):
        assert "probe" in host.names()
    assert "probe" not in host.names()
    with pytest.raises(ConfigError, match="already registered"):
        with registered_plugin(host, Probe(), "openai"):
            pass


def test_make_sample_builds_what_a_filter_sees() -> None:
    sample = make_sample("some text", finish_reason="length")
    assert sample.text == sample.generation.text == "some text"
    assert sample.generation.finish_reason == "length" and sample.request.record_id == sample.record.id


# -- the pytest fixtures, loaded through the pytest11 entry point (no conftest line) -----------


def test_fixtures_run_register_and_cli(
    synthtune_run, synthtune_register, synthtune_cli, synthtune_fake_openai
) -> None:
    class DropAll:
        @hookimpl
        def filter(self, sample):
            return Verdict.drop("nope")

    assert synthtune_register(DropAll(), "drop-all") == "drop-all"
    assert "drop-all" in synthtune_cli("plugins", "list").stdout
    out = synthtune_run("plot-generator", limit=2, overrides=['filter=[{plugin = "drop-all"}]'])
    assert out.train == [] and synthtune_fake_openai.chat_count == 2
    again = synthtune_run("plot-generator", limit=2)  # same store: a rerun is answered from it
    assert again.report["cached"] == 2 and synthtune_fake_openai.chat_count == 2


def test_the_pytest_plugin_is_inert_until_used(tmp_path: Path) -> None:
    probe = (
        "import sys, synthtune.core.pytest_plugin as p; "
        "heavy = ('openai', 'aiohttp', 'jsonschema', 'typer', 'synthtune.core.test'); "
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--fixtures", str(tmp_path)]
    listed = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert "synthtune_run" in listed.stdout and "synthtune_fake_openai" in listed.stdout
    disabled = subprocess.run([*command, "-p", "no:synthtune"], capture_output=True, text=True, cwd=tmp_path)
    assert "synthtune_run" not in disabled.stdout
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(tmp_path)], capture_output=True, text=True
    )
    assert plain.returncode == 0 and "1 passed" in plain.stdout
