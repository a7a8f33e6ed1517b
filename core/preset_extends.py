"""Preset inheritance: ``extends = "NAME-or-path"`` and the merge rule.

A preset that extends another is read on top of it (the parent resolved first, its own parent
included):

- Top-level values (``seed``, ``description``) replace the parent's. ``name`` is never inherited:
  a preset without one is named after its file.
- Tables (``[source]``, ``[prompt]``, ``[generate]``, ``[format]``, ``[train]``, ``[output]``) merge
  key by key, nested tables too; arrays and other values replace the parent's. A stage table
  naming another ``plugin`` than the parent's replaces the parent's table whole: the parent's
  settings belong to the parent's plugin.
- ``[[filter]]`` replaces the parent's filter list; ``[[filter_append]]`` (or
  ``filter_append = [...]``) adds filters after the parent's (after the child's ``[[filter]]``
  when it has both).

``extends`` names a preset (looked up like ``--preset``) or a ``.toml`` path, relative to the
extending file's folder. A user preset may extend the preset it overrides (same name): the name
then means the next preset down (a plugin's or the bundled one), never itself. Cycles and
unknown parents are one-line errors naming the files.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthtune.core.errors import ConfigError
from synthtune.core.nesting import TooDeep, check_depth

EXTENDS = "extends"
FILTER_APPEND = "filter_append"
STAGE_TABLES = ("source", "prompt", "generate", "format", "train")


@dataclass(frozen=True)
class PresetSource:
    """A preset's text and where it was found. ``key`` tells files apart however they were
    reached (the resolved path; the origin for presets that are not files)."""

    origin: str
    text: str
    folder: Path | None = None  # where relative ``extends`` paths start
    key: str = ""

    @classmethod
    def of_file(cls, origin: str, text: str, path: Path | None) -> PresetSource:
        if path is None:
            return cls(origin, text, None, origin)
        return cls(origin, text, path.parent, str(path.resolve()))


# (name or path, the extending file's folder) -> the presets it may mean, the preferred first: a
# name can have several (the user's folder over a plugin over bundled).
ParentLookup = Callable[[str, Path | None], list[PresetSource]]


def parse(text: str, origin: str) -> dict[str, Any]:
    """A preset's TOML as a dict; a ConfigError naming ``origin`` when it is not valid TOML or
    nests deeper than :data:`~synthtune.core.nesting.MAX_DEPTH`."""
    try:
        data = tomllib.loads(text)
        check_depth(data)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{origin}: invalid TOML: {error}") from None
    except (RecursionError, TooDeep):
        raise ConfigError(f"{origin}: {TooDeep()}") from None
    return data


def inherit(preset: PresetSource, lookup: ParentLookup) -> tuple[dict[str, Any], list[str]]:
    """``preset`` merged over its ancestors, and the origins of those ancestors (nearest first)."""
    chain = [preset]
    merged = _resolve(parse(preset.text, preset.origin), preset, lookup, chain)
    return merged, [found.origin for found in chain[1:]]


def _resolve(
    data: dict[str, Any], preset: PresetSource, lookup: ParentLookup, chain: list[PresetSource]
) -> dict[str, Any]:
    origin = preset.origin
    reference = data.get(EXTENDS)
    if reference is None:
        return _own(data, origin)
    if not isinstance(reference, str) or not reference.strip():
        raise ConfigError(f"{origin}: extends must be a preset name or a path to a .toml file")
    try:
        candidates = lookup(reference, preset.folder)
    except ConfigError as error:
        raise ConfigError(f"{origin}: extends {reference!r}: {error}") from None
    seen = {found.key for found in chain}
    fresh = [found for found in candidates if found.key not in seen]
    if not fresh:
        cycle = " -> ".join(found.origin for found in [*chain, *candidates[:1]])
        raise ConfigError(f"{origin}: extends {reference!r} makes a cycle: {cycle}")
    parent = fresh[0]
    chain.append(parent)
    return merge(_resolve(parse(parent.text, parent.origin), parent, lookup, chain), data, origin)


def _own(data: dict[str, Any], origin: str) -> dict[str, Any]:
    """A preset without a parent, with its ``filter_append`` applied to its own filters."""
    return merge({}, data, origin)


def merge(parent: dict[str, Any], child: dict[str, Any], origin: str) -> dict[str, Any]:
    """``child`` read over ``parent`` by the rule in the module docstring."""
    merged = {key: copy.deepcopy(value) for key, value in parent.items() if key != "name"}
    for key, value in child.items():
        if key in (EXTENDS, FILTER_APPEND):
            continue
        earlier = merged.get(key)
        if key in STAGE_TABLES and isinstance(value, dict) and isinstance(earlier, dict):
            if "plugin" in value and value["plugin"] != earlier.get("plugin"):
                merged[key] = copy.deepcopy(value)
                continue
        if isinstance(value, dict) and isinstance(earlier, dict) and key != "filter":
            merged[key] = _merge_tables(earlier, value)
        else:
            merged[key] = copy.deepcopy(value)
    appended = child.get(FILTER_APPEND)
    if appended is not None:
        if isinstance(appended, dict):
            appended = [appended]
        if not isinstance(appended, list) or not all(isinstance(f, dict) for f in appended):
            raise ConfigError(f"{origin}: filter_append must be an array of tables ([[filter_append]])")
        filters = merged.get("filter", [])
        merged["filter"] = [*([filters] if isinstance(filters, dict) else filters), *copy.deepcopy(appended)]
    return merged


def _merge_tables(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(earlier)
    for key, value in later.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_tables(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
