"""Hook `framing`: how a model tuned on a task's dataset expects to be prompted (`tune try`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_helpers import PROBE_PRESET, Probe
from synthtune.core import hookimpl
from synthtune.core.models import Framing
from synthtune.core.plugins import PluginHost
from synthtune.core.testing import FakeOpenAI


class Framer(Probe):
    def __init__(self, framing: object) -> None:
        super().__init__()
        self.framing_result = framing
        self.seen_settings: list[object] = []

    @hookimpl
    def framing(self, settings):  # type: ignore[no-untyped-def]
        self.seen_settings.append(settings)
        return self.framing_result


def preset(folder: Path) -> Path:
    path = folder / "framer.toml"
    text = PROBE_PRESET.replace('"probe"', '"framer"').replace(
        '[generate]\nplugin = "framer"', '[generate]\nplugin = "openai"\nmodel = "gpt-4.1-mini"'
    )
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("framing", "messages", "stop"),
    [
        (
            Framing(style="completion", prompt_prefix="Q: ", prompt_suffix="\n\nANSWER:", stop=["\nEND"]),
            [{"role": "user", "content": "Q: hello\n\nANSWER:"}],
            ["\nEND"],
        ),
        (
            Framing(system_prompt="You are terse."),
            [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hello"}],
            None,
        ),
        (None, [{"role": "user", "content": "hello"}], None),  # None: the text goes as is
    ],
    ids=["completion", "chat-with-system", "none"],
)
def test_try_sends_what_the_hook_returns(
    cli_for, fake_openai: FakeOpenAI, workdir: Path, host: PluginHost, framing, messages, stop
) -> None:
    plugin = Framer(framing)
    with host.registered(plugin, "framer"):
        result = cli_for(host)("try", "ft:gpt-4.1-mini:org:x:1", "hello", "--preset", str(preset(workdir)))
    assert result.exit_code == 0, result.output
    assert len(plugin.seen_settings) == 1  # called once, on the format plugin, with its settings
    (body,) = fake_openai.chat_requests
    assert body["model"] == "ft:gpt-4.1-mini:org:x:1"
    assert body["messages"] == messages
    assert body.get("stop") == stop


def test_a_wrong_return_type_is_one_line_naming_plugin_and_hook(
    cli_for, fake_openai: FakeOpenAI, workdir: Path, host: PluginHost
) -> None:
    with host.registered(Framer("not a framing"), "framer"):
        result = cli_for(host)("try", "m", "hello", "--preset", str(preset(workdir)))
    assert result.exit_code == 1
    assert "plugin 'framer' failed in stage 'framing'" in result.output
    assert fake_openai.chat_requests == []
