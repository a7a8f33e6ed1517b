"""Which generate stage answers a ``tune eval --model`` spec.

- ``base``: the preset's own generate stage (its model, its server);
- a ``.gguf`` file: the bundled ``local`` plugin (in-process llama.cpp);
- a folder: the ``transformers`` generate plugin (a checkpoint, or a PEFT adapter folder with
  its base model named in ``adapter_config.json``), when one is installed;
- ``PLUGIN:MODEL``, where PLUGIN is an installed generate plugin: MODEL on that plugin with its
  default settings (``transformers:HuggingFaceTB/SmolLM2-135M-Instruct``);
- anything else: a model id (``ft:...`` included) on the preset's generate plugin, with the
  preset's other generate settings (base URL, key variable, concurrency).

``LABEL=SPEC`` names a model in the tables (``tuned=./out/model``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from synthtune.core.errors import ConfigError
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import ResolvedPreset, StageChoice

LABEL = re.compile(r"^([A-Za-z0-9_.-]{1,40})=(.+)$")
GGUF_PLUGIN = "local"
FOLDER_PLUGIN = "transformers"


@dataclass
class ModelSpec:
    """One ``--model``: its label in the tables and what was asked for."""

    label: str
    spec: str


def parse_specs(values: list[str]) -> list[ModelSpec]:
    """``--model`` values as specs with unique labels (a repeated label is a ConfigError)."""
    specs: list[ModelSpec] = []
    for value in values:
        match = LABEL.match(value)
        label, spec = (match.group(1), match.group(2)) if match else (value, value)
        if any(s.label == label for s in specs):
            raise ConfigError(f"--model {value}: the label {label!r} is given twice")
        specs.append(ModelSpec(label, spec.strip()))
    return specs


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("./", "../", "/", "~")) or spec.endswith(".gguf")


def _settings(host: PluginHost, plugin: str, values: dict[str, Any], spec: str) -> StageChoice:
    try:
        settings = host.settings_model(plugin, "generate").model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(settings)"
        raise ConfigError(f"generate plugin {plugin!r}: {where}: {first['msg']}") from None
    return StageChoice(plugin, settings)


def _serves_generate(host: PluginHost, plugin: str) -> bool:
    return plugin in host.names() and "generate" in host.hooks_of(plugin)


def generate_choice(host: PluginHost, preset: ResolvedPreset, spec: str) -> StageChoice:
    """The generate stage that answers ``spec`` (see the module doc); a ConfigError (one line)
    when it cannot be loaded."""
    if spec == "base":
        return preset.generate
    plugin, _, model = spec.partition(":")
    if model and plugin != preset.generate.plugin and _serves_generate(host, plugin):
        # PLUGIN:MODEL first: the model may itself be a path (transformers:/x/model.gguf)
        return _settings(host, plugin, {"model": model}, spec)
    path = Path(spec).expanduser()
    if spec.endswith(".gguf"):
        if not path.is_file():
            raise ConfigError(f"no such GGUF file: {spec}")
        if not _serves_generate(host, GGUF_PLUGIN):
            raise ConfigError('a .gguf file needs the local plugin: pip install -e ".[gguf]"')
        return _settings(host, GGUF_PLUGIN, {"model": str(path)}, spec)
    if path.is_dir():
        if not _serves_generate(host, FOLDER_PLUGIN):
            raise ConfigError(
                f"a model folder needs the {FOLDER_PLUGIN!r} generate plugin, which is not "
                'installed: pip install -e ".[local]" (transformers, peft)'
            )
        values: dict[str, Any] = {"model": str(path)}
        adapter = path / "adapter_config.json"
        if adapter.is_file():  # a PEFT adapter: its base model loads first
            try:
                base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
            except (OSError, ValueError):
                base = None
            if not isinstance(base, str) or not base:
                raise ConfigError(f"{adapter} names no base_model_name_or_path")
            values = {"model": base, "adapter": str(path)}
        return _settings(host, FOLDER_PLUGIN, values, spec)
    if _looks_like_path(spec):
        raise ConfigError(f"no such file or folder: {spec}")
    values = {**preset.generate.settings.model_dump(), "model": spec}
    return _settings(host, preset.generate.plugin, values, spec)
