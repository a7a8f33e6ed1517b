"""Plugin discovery and a typed facade over the stage hooks.

Plugins are found through the ``synthtune`` entry-point group; bundled plugins are registered
through the same group. A plugin that fails to import or register is set aside with one warning
line and the rest keep working. The pipeline never calls ``pm.hook`` directly: it asks
:meth:`PluginHost.stage` for the one implementation the preset chose.
"""

from __future__ import annotations

import importlib.metadata
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast

import pluggy
from pydantic import BaseModel, ConfigDict
from synthtune.core import hookspecs
from synthtune.core.errors import ConfigError, PluginError, SynthtuneError
from synthtune.core.hookspecs import PROJECT, STAGES

ENTRY_POINT_GROUP = PROJECT
LOAD_ENV = "SYNTHTUNE_LOAD_PLUGINS"
DISABLE_ENV = "SYNTHTUNE_DISABLE_PLUGINS"
TRACEBACK_ENV = "SYNTHTUNE_TRACEBACK"


class NoSettings(BaseModel):
    """Settings model for a stage whose plugin declares none: rejects every key."""

    model_config = ConfigDict(extra="forbid")


class PluginInfo(BaseModel):
    """What ``tune plugins list`` shows about one plugin."""

    name: str
    version: str | None = None
    distribution: str | None = None
    module: str
    hooks: list[str]
    stages: list[str]


def traceback_requested() -> bool:
    return os.environ.get(TRACEBACK_ENV, "").lower() not in ("", "0", "false", "no")


def _name_list(env: str) -> set[str] | None:
    raw = os.environ.get(env)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


@dataclass
class StageCall:
    """One plugin's implementation of one stage hook, callable with keyword arguments.

    Arguments the implementation does not declare are left out, as pluggy does.
    """

    plugin: str
    stage: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]

    def __call__(self, **kwargs: Any) -> Any:
        try:
            return self.function(**{name: kwargs[name] for name in self.argnames})
        except SynthtuneError:
            raise
        except Exception as error:
            raise PluginError(self.plugin, self.stage, error) from error


@dataclass
class PluginHost:
    """Owns the pluggy manager: loads plugins, reports the broken ones, hands out stage calls."""

    pm: pluggy.PluginManager = field(default_factory=lambda: pluggy.PluginManager(PROJECT))
    warnings: list[str] = field(default_factory=list)
    _dists: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    _calls: dict[tuple[str, str], StageCall] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pm.add_hookspecs(hookspecs)

    # -- loading -----------------------------------------------------------------------------

    def load_entrypoints(self) -> None:
        """Load every plugin of the ``synthtune`` entry-point group, honouring the allow- and
        block-list environment variables. Failures become warnings, never exceptions."""
        allow, block = _name_list(LOAD_ENV), _name_list(DISABLE_ENV) or set()
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in block or (allow is not None and ep.name not in allow):
                continue
            if self.pm.has_plugin(ep.name):
                continue
            dist = getattr(ep, "dist", None)
            dist_info = (dist.name, dist.version) if dist is not None else (None, None)
            try:
                plugin = ep.load()
            except Exception as error:  # a broken plugin must not break the CLI
                self._warn(ep.name, "failed to import", error)
                continue
            self.register(plugin, ep.name, dist_info)

    def register(
        self,
        plugin: object,
        name: str,
        dist_info: tuple[str | None, str | None] = (None, None),
    ) -> bool:
        """Register ``plugin`` under ``name``; on a bad hook, warn, unregister, return False."""
        try:
            self.pm.register(plugin, name=name)
        except Exception as error:
            self._warn(name, "was not registered", error)
            return False
        unknown = [caller.name for caller in self.pm.get_hookcallers(plugin) or [] if not caller.spec]
        if unknown:
            self.pm.unregister(plugin)
            self._warn(name, "was not registered", ValueError(f"unknown hook(s): {unknown}"))
            return False
        self._dists[name] = dist_info
        self._calls.clear()
        return True

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._dists.pop(name, None)
        self._calls.clear()

    def _warn(self, name: str, what: str, error: BaseException) -> None:
        detail = " ".join(str(error).split())  # pluggy's messages span several lines
        line = f"plugin {name!r} {what}: {type(error).__name__}: {detail}"
        if traceback_requested():
            line += "\n" + "".join(traceback.format_exception(error))
        self.warnings.append(line)

    # -- queries -----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(name for name, _ in self.pm.list_name_plugin() if name in self._dists)

    def plugin(self, name: str) -> object:
        plugin = self.pm.get_plugin(name)
        if plugin is None or name not in self._dists:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"unknown plugin {name!r} (installed: {known})")
        return plugin

    def hooks_of(self, name: str) -> list[str]:
        callers = self.pm.get_hookcallers(self.plugin(name)) or []
        return sorted(caller.name for caller in callers)

    def info(self) -> list[PluginInfo]:
        infos = []
        for name in self.names():
            plugin = self.plugin(name)
            hooks = self.hooks_of(name)
            dist, version = self._dists[name]
            module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__
            infos.append(
                PluginInfo(
                    name=name,
                    version=version,
                    distribution=dist,
                    module=module,
                    hooks=hooks,
                    stages=[stage for stage in STAGES if stage in hooks],
                )
            )
        return infos

    def stage(self, plugin_name: str, stage: str) -> StageCall:
        """The named plugin's implementation of ``stage``, or a ConfigError if it has none."""
        cached = self._calls.get((plugin_name, stage))
        if cached is not None:
            return cached
        plugin = self.plugin(plugin_name)
        caller = getattr(self.pm.hook, stage)
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin:
                call = StageCall(plugin_name, stage, impl.function, tuple(impl.argnames))
                self._calls[(plugin_name, stage)] = call
                return call
        raise ConfigError(f"plugin {plugin_name!r} does not implement the {stage!r} stage")

    def settings_model(self, plugin_name: str, stage: str) -> type[BaseModel]:
        """The settings model ``plugin_name`` declares for ``stage`` (see ``stage_settings``)."""
        self.stage(plugin_name, stage)  # fails clearly if the plugin lacks the stage
        plugin = self.plugin(plugin_name)
        for impl in self.pm.hook.stage_settings.get_hookimpls():
            if impl.plugin is plugin:
                try:
                    model = cast("type[BaseModel] | None", impl.function(stage=stage))
                except Exception as error:
                    raise PluginError(plugin_name, "stage_settings", error) from error
                return model if model is not None else NoSettings
        return NoSettings

    def each(self, hook: str) -> Iterator[tuple[str, Callable[..., Any]]]:
        """(plugin name, function) for every registered implementation of a registration hook."""
        by_plugin = {id(p): n for n, p in self.pm.list_name_plugin()}
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            name = by_plugin.get(id(impl.plugin))
            if name in self._dists:
                yield name, impl.function


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide host with every installed plugin loaded (done once)."""
    global _host
    if _host is None:
        _host = PluginHost()
        _host.load_entrypoints()
    return _host


def reset_host() -> None:
    """Forget the process-wide host (tests that install or remove plugins use this)."""
    global _host
    _host = None
