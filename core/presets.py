"""Presets: TOML files that pick a plugin per stage and its settings.

Presets come from the bundled ``synthtune.presets`` package, installed plugins
(``register_presets``), and the user's folder (``$SYNTHTUNE_PRESETS_DIR``, default
``~/.config/synthtune/presets``). A plugin's preset cannot replace a bundled one or another
plugin's (a warning names it); the user's folder wins over both. A path to a ``.toml`` file is
always accepted as well. A preset asked for by name is looked for in the user's folder, then in
the bundled ones, before any plugin is imported to ask for its presets.

A preset is resolved completely, every stage's settings validated against its plugin's model,
before any work starts; errors name the file, the stage and the field.
"""

from __future__ import annotations

import copy
import importlib.resources
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from synthtune.core.errors import ConfigError
from synthtune.core.plugins import PluginHost
from synthtune.core.preset_extends import ParentLookup, PresetSource, inherit, parse
from synthtune.core.rubric import fill_rubrics
from synthtune.core.settings import EvalSettings, GenerateSettings, OutputSettings, ReaskSettings
from synthtune.core.train_alternatives import choose_train_table, overridden_train_keys
from synthtune.core.trust import Endpoint, check_name, check_preset

USER_DIR_ENV = "SYNTHTUNE_PRESETS_DIR"
SINGLE_STAGES = ("source", "prompt", "generate", "format", "train")
TOP_LEVEL_KEYS = {"name", "description", "seed", "filter", "output", "reask", "eval", *SINGLE_STAGES}


@dataclass(frozen=True)
class PresetEntry:
    """A preset found somewhere, not yet parsed."""

    name: str
    origin: str  # a path, or "plugin NAME: path"
    text: str
    provider: str  # "bundled", "user", "path", or the plugin's name
    path: Path | None = None  # the file, when there is one (relative `extends` paths start there)


@dataclass
class StageChoice:
    """One stage of a resolved preset: the plugin and its validated settings."""

    plugin: str
    settings: BaseModel


@dataclass
class ResolvedPreset:
    name: str
    description: str
    origin: str
    seed: int
    source: StageChoice
    prompt: StageChoice
    generate: StageChoice
    filters: list[StageChoice]
    format: StageChoice
    train: StageChoice | None
    output: OutputSettings
    raw: dict[str, Any] = field(default_factory=dict)
    # [reask]: ask again when a filter drops a sample (attempts = 0: never).
    reask: ReaskSettings = field(default_factory=ReaskSettings)
    parents: list[str] = field(default_factory=list)  # origins of the presets it extends, nearest first
    # URLs the preset file chose that are not known hosts: tune run asks before sending a key.
    untrusted_endpoints: list[Endpoint] = field(default_factory=list)
    # The [eval] table: the held-out split (None: the preset holds nothing out).
    eval: EvalSettings | None = None

    @property
    def model(self) -> str:
        assert isinstance(self.generate.settings, GenerateSettings)
        return self.generate.settings.model

    def as_dict(self) -> dict[str, Any]:
        """The resolved preset with every default filled in (what ``presets show`` prints)."""

        def stage(choice: StageChoice) -> dict[str, Any]:
            return {"plugin": choice.plugin, **choice.settings.model_dump(mode="json")}

        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "source": stage(self.source),
            "prompt": stage(self.prompt),
            "generate": stage(self.generate),
            "filter": [stage(f) for f in self.filters],
            "format": stage(self.format),
            "output": self.output.model_dump(mode="json"),
        }
        if self.reask.attempts:  # left out when off, so presets without it read as before
            out["reask"] = self.reask.model_dump(mode="json")
        if self.train is not None:
            out["train"] = stage(self.train)
        if self.eval is not None:
            out["eval"] = self.eval.model_dump(mode="json")
        return out


# -- finding presets -----------------------------------------------------------------------------


def parse_toml(text: str, origin: str) -> dict[str, Any]:
    """A preset's TOML as a dict; a ConfigError naming ``origin`` when it is not valid TOML or
    nests deeper than :data:`~synthtune.core.nesting.MAX_DEPTH`."""
    return parse(text, origin)


def read_preset_text(path: Path, origin: str | None = None) -> str:
    """A preset file's text; a ConfigError naming the file when it cannot be read as UTF-8."""
    where = origin or str(path)
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{where}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"{where}: {error.strerror or error}") from None


def _name_of(text: str, origin: str, fallback: str) -> str:
    try:
        data = parse_toml(text, origin)
    except ConfigError:
        return fallback
    name = data.get("name")
    return name if isinstance(name, str) and name else fallback


def _may_be_named(text: str, stem: str, wanted: str | None) -> bool:
    """False only when the file cannot be the preset named ``wanted``: its name is its ``name``
    key (the text holds it, unless written with escapes) or else its file name."""
    return wanted is None or stem == wanted or wanted in text or "\\" in text


def _bundled(wanted: str | None = None) -> Iterable[PresetEntry]:
    """The bundled presets (only those that may be named ``wanted``, when given: the others are
    not parsed)."""
    folder = importlib.resources.files("synthtune.presets")
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            text = item.read_text(encoding="utf-8")
            if not _may_be_named(text, item.name[:-5], wanted):
                continue
            origin = f"presets/{item.name}"
            path = item if isinstance(item, Path) else None
            yield PresetEntry(_name_of(text, origin, item.name[:-5]), origin, text, "bundled", path)


def user_preset_dir() -> Path:
    env = os.environ.get(USER_DIR_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "synthtune" / "presets"


def _user(warnings: list[str], wanted: str | None = None) -> Iterable[PresetEntry]:
    """The user's presets (only those that may be named ``wanted``, when given)."""
    folder = user_preset_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.toml")):
            try:
                text = read_preset_text(path)
            except ConfigError as error:  # one unreadable file must not hide every other preset
                warnings.append(f"preset file skipped: {error}")
                continue
            if not _may_be_named(text, path.stem, wanted):
                continue
            yield PresetEntry(_name_of(text, str(path), path.stem), str(path), text, "user", path)


def _from_plugins(host: PluginHost) -> Iterable[PresetEntry]:
    for plugin_name, function in host.each("register_presets"):
        found: list[PresetEntry] = []

        def register(
            preset: str | Path,
            origin: str | None = None,
            _plugin: str = plugin_name,
            _found: list[PresetEntry] = found,
        ) -> None:
            if isinstance(preset, Path) or (isinstance(preset, str) and preset.endswith(".toml")):
                path = Path(preset)
                text = path.read_text(encoding="utf-8")  # errors become the warning below
                where = f"{origin or path} (plugin {_plugin})"
                _found.append(PresetEntry(_name_of(text, where, path.stem), where, text, _plugin, path))
            else:
                where = f"{origin or 'preset'} (plugin {_plugin})"
                _found.append(PresetEntry(_name_of(preset, where, "?"), where, preset, _plugin))

        try:
            function(register=register)
        except Exception as error:
            _warn(host, f"plugin {plugin_name!r} failed in register_presets: {type(error).__name__}: {error}")
            continue
        yield from found


def _entries(host: PluginHost) -> list[PresetEntry]:
    """Every preset, in increasing precedence (of two with one name, the later wins): bundled,
    plugins, the user's folder. A plugin's preset cannot take a bundled preset's name or another
    plugin's: it is left out with a warning naming it."""
    entries = list(_bundled())
    taken = {entry.name: entry for entry in entries}
    for entry in _from_plugins(host):
        earlier = taken.get(entry.name)
        if earlier is not None and earlier.provider != entry.provider:
            hint = " (a bundled preset: give yours another name; it can extend that one)"
            _warn(
                host,
                f"preset {entry.name!r} from plugin {entry.provider!r} ignored: already provided by "
                f"{earlier.origin}{hint if earlier.provider == 'bundled' else ''}",
            )
            continue
        taken[entry.name] = entry
        entries.append(entry)
    return [*entries, *_user(host.warnings)]


def _warn(host: PluginHost, line: str) -> None:
    if line not in host.warnings:  # presets are listed more than once per command
        host.warnings.append(line)


def available_presets(host: PluginHost) -> dict[str, PresetEntry]:
    """Every preset by name: the user's folder over plugins over bundled (see :func:`_entries`)."""
    return {entry.name: entry for entry in _entries(host)}


def find_preset(name_or_path: str, host: PluginHost) -> PresetEntry:
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"preset file not found: {name_or_path}")
        text = read_preset_text(path)
        return PresetEntry(_name_of(text, str(path), path.stem), str(path), text, "path", path)
    # The files first, in the order of precedence: the user's folder wins over everything, and
    # a plugin's preset can never take a bundled name, so a preset found in either is the one
    # the full list would give, and no plugin is imported to find it.
    for found in (_user(host.warnings, name_or_path), _bundled(name_or_path)):
        named = [entry for entry in found if entry.name == name_or_path]
        if named:
            return named[-1]  # of two files with one name, the later wins (as in the full list)
    presets = available_presets(host)
    if name_or_path not in presets:
        known = ", ".join(sorted(presets)) or "none"
        raise ConfigError(f"unknown preset {name_or_path!r} (available: {known})")
    return presets[name_or_path]


# -- overrides -----------------------------------------------------------------------------------


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """``generate.model=gpt-4.1-mini`` -> (["generate", "model"], "gpt-4.1-mini").

    The value is read as a TOML value when it is one (``42``, ``true``, ``[1, 2]``, ``"x"``) and as
    a plain string otherwise.
    """
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected STAGE.KEY=VALUE")
    dotted, raw = assignment.split("=", 1)
    path = [part.strip() for part in dotted.split(".")]
    if not all(path):
        raise ConfigError(f"--set {assignment!r}: expected STAGE.KEY=VALUE")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return path, value


def apply_override(data: dict[str, Any], path: list[str], value: Any, origin: str) -> None:
    head, rest = path[0], path[1:]
    if head not in TOP_LEVEL_KEYS:
        raise ConfigError(f"--set {'.'.join(path)}: unknown section {head!r}")
    if not rest:
        data[head] = value
        return
    if head == "filter":
        filters = data.get("filter") or []
        selector, rest = rest[0], rest[1:]
        if selector.isdigit() and int(selector) < len(filters):
            target = filters[int(selector)]
        else:
            matches = [f for f in filters if isinstance(f, dict) and f.get("plugin") == selector]
            if not matches:
                raise ConfigError(
                    f"--set {'.'.join(path)}: {origin} has no filter {selector!r} "
                    "(use its position or plugin name)"
                )
            target = matches[0]
        if not rest:
            raise ConfigError(f"--set {'.'.join(path)}: expected filter.N.KEY=VALUE")
    else:
        target = data.setdefault(head, {})
        if not isinstance(target, dict):
            raise ConfigError(f"--set {'.'.join(path)}: {head!r} is not a table in {origin}")
    for depth, key in enumerate(rest[:-1], start=1):
        target = target.setdefault(key, {})
        if not isinstance(target, dict):
            inner = ".".join([head, *rest[:depth]])
            raise ConfigError(
                f"--set {'.'.join(path)}: {inner} is a value ({target!r}), not a table; "
                f"use --set {inner}=VALUE"
            )
    target[rest[-1]] = value


# -- resolving -----------------------------------------------------------------------------------


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(table)"
        parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)


def _stage(
    host: PluginHost, data: dict[str, Any], stage: str, origin: str, where: str | None = None
) -> StageChoice:
    where = where or f"[{stage}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: {where} must be a table")
    settings = dict(data)
    plugin = settings.pop("plugin", None)
    if not isinstance(plugin, str) or not plugin:
        raise ConfigError(f"{origin}: {where} plugin: missing (name the plugin for this stage)")
    hook_stage = "filter" if stage.startswith("filter") else stage
    try:
        model = host.settings_model(plugin, hook_stage)
    except ConfigError as error:
        raise ConfigError(f"{origin}: {where} {error}") from None
    try:
        validated = model.model_validate(settings)
    except ValidationError as error:
        raise ConfigError(f"{origin}: {where} {_describe(error)}") from None
    if hook_stage == "generate" and not isinstance(validated, GenerateSettings):
        raise ConfigError(f"{origin}: {where} plugin {plugin!r}'s settings do not extend GenerateSettings")
    return StageChoice(plugin, validated)


def _parent_lookup(host: PluginHost) -> ParentLookup:
    """How ``extends`` finds a parent: a path (relative to the extending file's folder), or a
    name, with every preset of that name, the one ``--preset`` would pick first."""
    entries: list[PresetEntry] = []

    def lookup(reference: str, folder: Path | None) -> list[PresetSource]:
        if reference.endswith(".toml") or "/" in reference or os.sep in reference:
            path = Path(reference).expanduser()
            path = path if path.is_absolute() else (folder or Path.cwd()) / path
            if not path.is_file():
                raise ConfigError(f"preset file not found: {path}")
            return [PresetSource.of_file(str(path), path.read_text(encoding="utf-8"), path)]
        # A plugin's preset never has a bundled preset's name: when a bundled one has it, the
        # files hold every candidate and no plugin is imported to find them.
        bundled = [entry for entry in _bundled(reference) if entry.name == reference]
        if bundled:
            user = [entry for entry in _user(host.warnings, reference) if entry.name == reference]
            found = [*reversed(user), *reversed(bundled)]
            return [PresetSource.of_file(entry.origin, entry.text, entry.path) for entry in found]
        if not entries:
            entries.extend(_entries(host))
        found = [entry for entry in reversed(entries) if entry.name == reference]
        if not found:
            known = ", ".join(sorted({entry.name for entry in entries})) or "none"
            raise ConfigError(f"unknown preset (available: {known})")
        return [PresetSource.of_file(entry.origin, entry.text, entry.path) for entry in found]

    return lookup


def append_filters(data: dict[str, Any], plugins: Iterable[str], origin: str) -> None:
    """Add a filter with its default settings for each plugin name (``--filter PLUGIN``)."""
    found = data.get("filter", [])
    filters: list[Any] = [found] if isinstance(found, dict) else found
    for plugin in plugins:
        if not plugin.strip() or "=" in plugin:
            raise ConfigError(
                f"--filter {plugin!r}: expected a plugin name (set its settings with "
                "--set filter.PLUGIN.KEY=VALUE)"
            )
        filters = [*filters, {"plugin": plugin.strip()}]
    data["filter"] = filters


def resolve(
    entry: PresetEntry, host: PluginHost, overrides: Iterable[str] = (), filters: Iterable[str] = ()
) -> ResolvedPreset:
    """Validate ``entry`` read over the presets it extends, with ``filters`` appended (``--filter``)
    and then ``overrides`` applied (``--set``)."""
    origin = entry.origin
    data, parents = inherit(PresetSource.of_file(origin, entry.text, entry.path), _parent_lookup(host))
    file_data = copy.deepcopy(data)  # what the preset files chose, before the command line
    append_filters(data, filters, origin)
    base_trainer = data["train"].get("plugin") if isinstance(data.get("train"), dict) else None
    parsed = [parse_override(assignment) for assignment in overrides]
    for path, value in parsed:
        apply_override(data, path, value, origin)
    if "train" in data:  # --set train.plugin=X picks the preset's [train.alternatives.X]
        data["train"] = choose_train_table(data["train"], base_trainer, overridden_train_keys(parsed), origin)
    override_paths = [path for path, _ in parsed]

    unknown = sorted(set(data) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {unknown}")
    for required in ("source", "prompt", "generate", "format"):
        if required not in data:
            raise ConfigError(f"{origin}: [{required}] missing")
    name = data.get("name", entry.name)
    seed = data.get("seed", 0)
    if not isinstance(name, str) or not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{origin}: name must be a string and seed an integer")
    check_name(name, origin)
    filter_tables = data.get("filter", [])
    if isinstance(filter_tables, dict):
        filter_tables = [filter_tables]
    if not isinstance(filter_tables, list):
        raise ConfigError(f"{origin}: [[filter]] must be an array of tables")
    try:
        output = OutputSettings.model_validate(data.get("output", {}))
    except ValidationError as error:
        raise ConfigError(f"{origin}: [output] {_describe(error)}") from None
    try:
        reask = ReaskSettings.model_validate(data.get("reask", {}))
    except ValidationError as error:
        raise ConfigError(f"{origin}: [reask] {_describe(error)}") from None
    try:
        evaluation = EvalSettings.model_validate(data["eval"]) if "eval" in data else None
    except ValidationError as error:
        raise ConfigError(f"{origin}: [eval] {_describe(error)}") from None

    preset = ResolvedPreset(
        name=name,
        description=str(data.get("description", "")),
        origin=origin,
        seed=seed,
        source=_stage(host, data["source"], "source", origin),
        prompt=_stage(host, data["prompt"], "prompt", origin),
        generate=_stage(host, data["generate"], "generate", origin),
        filters=[_stage(host, f, "filter", origin, f"[[filter]] #{i}") for i, f in enumerate(filter_tables)],
        format=_stage(host, data["format"], "format", origin),
        train=_stage(host, data["train"], "train", origin) if "train" in data else None,
        output=output,
        reask=reask,
        eval=evaluation,
        raw=data,
        parents=parents,
    )
    stages: list[tuple[str, int | None, str, BaseModel]] = [
        (s, None, c.plugin, c.settings) for s in SINGLE_STAGES if (c := getattr(preset, s)) is not None
    ]
    stages += [("filter", i, f.plugin, f.settings) for i, f in enumerate(preset.filters)]
    preset.untrusted_endpoints = check_preset(origin, file_data, override_paths, stages)
    fill_rubrics(host, preset)  # after the trust check: the task's text is not the preset's
    return preset


def load_preset(
    name_or_path: str, host: PluginHost, overrides: Iterable[str] = (), filters: Iterable[str] = ()
) -> ResolvedPreset:
    """Find a preset by name or path, read it over the presets it extends, append ``--filter``
    filters, apply ``--set`` overrides and validate every stage."""
    return resolve(find_preset(name_or_path, host), host, overrides, filters)
