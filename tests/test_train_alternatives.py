"""A preset's [train.alternatives.NAME] tables: `--set train.plugin=NAME` trains with that table,
and every bundled preset documents one that validates for each trainer."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthtune.core.presets import available_presets, load_preset
from synthtune.core.train_alternatives import choose_train_table

TRAINERS = ("together", "fireworks", "trl")


def test_every_bundled_preset_has_a_train_table_for_every_trainer(host) -> None:
    bundled = [entry.name for entry in available_presets(host).values() if entry.provider == "bundled"]
    assert len(bundled) >= 6
    for name in bundled:
        base = load_preset(name, host)
        assert base.train is not None and base.train.plugin == "openai", name
        for trainer in TRAINERS:
            preset = load_preset(name, host, [f"train.plugin={trainer}"])
            assert preset.train is not None and preset.train.plugin == trainer
            assert getattr(preset.train.settings, "model", "").strip(), (name, trainer)
            assert "alternatives" not in preset.raw["train"]


def test_the_alternative_replaces_the_base_settings_and_set_wins(host) -> None:
    together = load_preset("plot-generator", host, ["train.plugin=together"])
    assert together.train is not None
    assert together.train.settings.model_dump(include={"model", "suffix", "n_epochs"}) == {
        "model": "Qwen/Qwen3-8B",
        "suffix": "plot-generator",
        "n_epochs": 3,
    }
    chosen = load_preset(
        "plot-generator",
        host,
        ["train.model=meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", "train.plugin=together"],
    )
    assert (
        chosen.train is not None
        and chosen.train.settings.model == "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
    )
    base = load_preset("plot-generator", host, ["train.suffix=plots"])
    assert base.train is not None and base.train.plugin == "openai" and base.train.settings.suffix == "plots"


def test_a_trainer_without_a_table_keeps_only_the_set_settings(host, workdir: Path) -> None:
    preset = workdir / "mine.toml"
    text = (Path(__file__).parents[1] / "presets" / "plot-generator.toml").read_text()
    preset.write_text(text[: text.index("[train.alternatives.together]")])
    with pytest.raises(Exception, match=r"\[train\] model: Field required"):
        load_preset(str(preset), host, ["train.plugin=together"])
    ok = load_preset(str(preset), host, ["train.plugin=together", "train.model=Qwen/Qwen3-8B"])
    assert ok.train is not None and ok.train.settings.model_dump(include={"model", "suffix"}) == {
        "model": "Qwen/Qwen3-8B",
        "suffix": None,
    }


def test_a_malformed_alternatives_table_is_one_error() -> None:
    with pytest.raises(Exception, match=r"\[train.alternatives\] must hold one table per trainer plugin"):
        choose_train_table({"plugin": "openai", "alternatives": {"trl": "x"}}, "openai", set(), "p.toml")


def test_presets_show_resolves_the_chosen_trainer(cli, workdir: Path) -> None:
    shown = cli("presets", "show", "writing-coach", "--set", "train.plugin=fireworks")
    assert shown.exit_code == 0, shown.output
    assert (
        "accounts/fireworks/models/qwen3-8b" in shown.stdout and "gpt-4.1-mini-2025-04-14" not in shown.stdout
    )
