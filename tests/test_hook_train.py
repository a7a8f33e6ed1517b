"""Hook `train`: a trainer's settings are validated with the preset and its job is returned as is.

(The core has no `tune train` command on this branch; these tests cover what the contract
promises today: settings validation and the stage call.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_helpers import Probe, write_probe_preset
from pydantic import BaseModel
from synthtune.core import DatasetFiles, RunContext, TrainingJob, hookimpl
from synthtune.core.errors import PluginError
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import load_preset
from synthtune.core.settings import StageSettings


class TrainSettings(StageSettings):
    epochs: int = 3


class Trainer(Probe):
    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        return TrainSettings if stage == "train" else super().stage_settings(stage)

    @hookimpl
    def train(self, dataset: DatasetFiles, settings: TrainSettings, context: RunContext) -> TrainingJob:
        if settings.epochs > 10:
            raise RuntimeError("too many epochs")
        return TrainingJob(id="job-1", backend="probe", status="queued", trained_tokens=dataset.examples)


def test_train_settings_are_validated_and_the_job_returned(host: PluginHost, workdir: Path) -> None:
    preset_path = write_probe_preset(workdir)
    preset_path.write_text(preset_path.read_text() + '[train]\nplugin = "probe"\nepochs = 2\n')
    with host.registered(Trainer(), "probe"):
        preset = load_preset(str(preset_path), host)
        assert preset.train is not None and preset.train.settings == TrainSettings(epochs=2)
        call = host.stage("probe", "train")
        dataset = DatasetFiles(train=workdir / "train.jsonl", examples=7)
        job = call(dataset=dataset, settings=preset.train.settings, context=RunContext(run_id="r", seed=0))
        assert job == TrainingJob(id="job-1", backend="probe", status="queued", trained_tokens=7)
        with pytest.raises(PluginError, match="plugin 'probe' failed in stage 'train': too many epochs"):
            call(dataset=dataset, settings=TrainSettings(epochs=11), context=RunContext(run_id="r", seed=0))
