"""Per-trainer alternatives in a preset's ``[train]`` table.

A preset names one trainer in ``[train]`` and may document others in ``[train.alternatives.NAME]``
tables, each with that trainer's own settings::

    [train]
    plugin = "openai"
    model = "gpt-4.1-mini-2025-04-14"

    [train.alternatives.together]
    model = "Qwen/Qwen3-8B"

``--set train.plugin=together`` then trains with the ``together`` table instead of the base one
(the base table's settings belong to another trainer). Settings given with ``--set train.KEY=...``
in the same command win over the alternative's. Switching to a trainer the preset has no table
for keeps only those ``--set`` settings.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from synthtune.core.errors import ConfigError

ALTERNATIVES = "alternatives"


def overridden_train_keys(overrides: Iterable[tuple[list[str], Any]]) -> set[str]:
    """The ``[train]`` keys that ``--set train.KEY=VALUE`` overrides name."""
    return {path[1] for path, _ in overrides if len(path) >= 2 and path[0] == "train"} - {ALTERNATIVES}


def choose_train_table(table: Any, original_plugin: object, overridden: set[str], origin: str) -> Any:
    """The ``[train]`` table to validate: the base one, or the alternative for the plugin that
    ``--set train.plugin=...`` chose. ``table`` is returned untouched when it is not a table."""
    if not isinstance(table, dict):
        return table
    chosen = dict(table)
    alternatives = chosen.pop(ALTERNATIVES, {})
    if not isinstance(alternatives, dict) or not all(isinstance(v, dict) for v in alternatives.values()):
        raise ConfigError(f"{origin}: [train.alternatives] must hold one table per trainer plugin")
    plugin = chosen.get("plugin")
    if plugin == original_plugin:
        return chosen
    alternative = dict(alternatives.get(plugin, {}))
    alternative.pop("plugin", None)
    return {**alternative, **{k: chosen[k] for k in overridden if k in chosen}, "plugin": plugin}
