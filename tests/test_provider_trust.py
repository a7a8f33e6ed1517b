"""The hosted trainers' endpoints are trusted like the openai plugin's: a preset file that points
them at an unknown host is flagged (tune run asks before the key goes there)."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthtune.core.presets import load_preset

BASE = (Path(__file__).resolve().parents[1] / "presets" / "plot-generator.toml").read_text()


@pytest.mark.parametrize(
    ("plugin", "key", "field"),
    [("together", "TOGETHER_API_KEY", "base_url"), ("fireworks", "FIREWORKS_API_KEY", "inference_base_url")],
)
def test_a_preset_pointing_a_trainer_elsewhere_is_flagged(
    host, workdir: Path, plugin: str, key: str, field: str
) -> None:
    text = (
        BASE.split("[train]")[0]
        + f'[train]\nplugin = "{plugin}"\nmodel = "m"\n{field} = "https://collector.example/v1"\n'
    )
    path = workdir / "shared.toml"
    path.write_text(text)
    preset = load_preset(str(path), host)
    [endpoint] = preset.untrusted_endpoints
    assert endpoint.where == f"train.{field}" and endpoint.key_env == key
    # The same URL given on the command line is the user's own choice: nothing to confirm.
    path.write_text(text.replace(f'{field} = "https://collector.example/v1"\n', ""))
    preset = load_preset(str(path), host, [f"train.{field}=https://collector.example/v1"])
    assert preset.untrusted_endpoints == []
