"""`tune try`: one request to a tuned model, framed like the preset's dataset."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel
from synthtune.core import TrainingExample, hookimpl
from synthtune.core.settings import StageSettings
from synthtune.core.testing import FakeOpenAI, Reply
from synthtune.plugins.plot_generator import SYSTEM

MODEL = "ft:gpt-4.1-mini-2025-04-14:synthtune-fake:plot-generator:abc123"
FIELDS = "Genre: high fantasy\nLocation: Egypt\nPeriod: the 1920s\nModifier: gritty & dark"


def _echo(body: dict) -> str:
    return f"answer to {len(body['messages'])} message(s)"


def test_chat_framing_from_the_preset(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    fake_openai.responder = _echo
    result = cli("try", MODEL, FIELDS, "--preset", "plot-generator", "--max-tokens", "300")
    assert result.exit_code == 0, result.output
    assert result.stdout == "answer to 2 message(s)\n"
    (body,) = fake_openai.chat_requests
    assert body["model"] == MODEL
    assert body["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": FIELDS}]
    assert body["max_completion_tokens"] == 300 and "stop" not in body


def test_completion_framing_sends_the_demarcator_and_stops_at_the_end_marker(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    fake_openai.responder = _echo
    (workdir / "fields.txt").write_text(FIELDS)
    result = cli(
        "try", MODEL, "--file", "fields.txt", "--preset", "plot-generator", "--set", "format.style=completion"
    )
    assert result.exit_code == 0, result.output
    (body,) = fake_openai.chat_requests
    assert body["messages"] == [{"role": "user", "content": f"{FIELDS}\n\nPLOT OUTLINE:"}]
    assert body["stop"] == ["\n\nEND"]


def test_without_a_preset_the_text_goes_as_is(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    fake_openai.responder = _echo
    result = cli("try", "gpt-4.1-mini", "Hello there", "--temperature", "0.2")
    assert result.exit_code == 0 and result.stdout == "answer to 1 message(s)\n"
    assert fake_openai.chat_requests[0]["messages"] == [{"role": "user", "content": "Hello there"}]
    assert fake_openai.chat_requests[0]["temperature"] == 0.2


class ConventionFormat(StageSettings):
    style: str = "completion"
    demarcator: str = "PROFESSIONAL FEEDBACK:"
    end_marker: str = " END"


class ConventionPlugin:
    """A task plugin with no framing hook: tune try reads its format settings by convention."""

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        return ConventionFormat if stage == "format" else None

    @hookimpl
    def format(self, sample, settings, context) -> list[TrainingExample]:
        return []


def test_a_plugin_without_the_hook_gets_the_conventional_framing(
    cli, host, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    assert host.register(ConventionPlugin(), "convention-task")
    preset = workdir / "coach.toml"
    preset.write_text(
        'name = "coach"\n[source]\nplugin = "plot-generator"\n[prompt]\nplugin = "plot-generator"\n'
        '[generate]\nplugin = "openai"\nmodel = "gpt-4.1-mini"\n[format]\nplugin = "convention-task"\n'
    )
    fake_openai.responder = _echo
    result = cli("try", MODEL, "A story.", "--preset", str(preset), "--show-request")
    assert result.exit_code == 0, result.output
    (body,) = fake_openai.chat_requests
    assert body["messages"] == [{"role": "user", "content": "A story.\n\nPROFESSIONAL FEEDBACK:"}]
    assert body["stop"] == [" END"]
    assert "[stop] [' END']" in result.stderr


def test_errors_are_one_line(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    neither = cli("try", MODEL)
    assert neither.exit_code == 2 and "give the input as TEXT or with --file" in neither.output
    fake_openai.responder = lambda body: Reply(status=404, error_message="The model does not exist")
    missing = cli("try", MODEL, "hi")
    assert missing.exit_code == 1
    assert missing.stderr.strip().startswith("error: ") and "The model does not exist" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_a_local_model_file_or_folder_is_asked_in_process(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    """A .gguf file goes to the local plugin and a model folder to the transformers plugin, not
    to the OpenAI-compatible server (tests/test_transformers_plugin.py asks real folders)."""
    from synthtune.core.cli.try_cmd import local_backend

    (workdir / "plots.gguf").write_bytes(b"GGUF" + bytes(64))
    (workdir / "adapter").mkdir()
    (workdir / "adapter" / "adapter_config.json").write_text("{}")
    (workdir / "checkpoint").mkdir()
    (workdir / "checkpoint" / "config.json").write_text("{}")
    assert local_backend("plots.gguf") == "local"
    assert local_backend("adapter") == local_backend("checkpoint") == "transformers"
    assert local_backend("gpt-4.1-mini") is None and local_backend("missing.gguf") is None
    answered = cli("try", "adapter", "hi")
    assert answered.exit_code == 2
    assert answered.stderr.strip().splitlines() == [
        "error: adapter adapter: adapter_config.json names no base_model_name_or_path; give the base "
        "model yourself (generate.model with generate.adapter, or --base)"
    ]
    assert fake_openai.chat_requests == []
    both = cli("try", "x", "hi", "--model", "adapter")
    assert both.exit_code == 2 and "give the model once" in both.stderr
