"""Plugin loading and a typed facade over the stage hooks.

Plugins are found through the ``synthtune`` entry-point group (see
:mod:`synthtune.core.discovery` for which are loaded); bundled plugins are registered through the
same group. A plugin that fails to import or register is set aside with one warning line naming
it, and the rest keep working (no plugin can stop ``tune`` from starting). A plugin that raises
while serving a stage becomes a one-line :class:`PluginError` naming the plugin, the stage and
the record, generators included. The pipeline never calls ``pm.hook`` directly: it asks
:meth:`PluginHost.stage` for the one implementation the preset chose.

``SYNTHTUNE_TRACEBACK=1`` (or ``tune --debug``) adds the original traceback to every warning.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, cast

import pluggy
from pydantic import BaseModel, ConfigDict
from synthtune.core import hookspecs
from synthtune.core.discovery import (
    BUNDLED_DISTRIBUTION,
    DISABLE_ENV,
    LOAD_ENV,
    EntryPoint,
    bundled_version,
    dist_info,
    dist_label,
    entry_points_by_name,
    name_list,
    skip_reason,
    unmet_requirement,
)
from synthtune.core.errors import ConfigError, PluginError, SynthtuneError
from synthtune.core.hookspecs import PROJECT, STAGES
from synthtune.core.models import GenerationOutcome, GenerationRequest

TRACEBACK_ENV = "SYNTHTUNE_TRACEBACK"
RESERVED_SETTING = "plugin"  # the key of a preset's stage table that names its plugin
# What the items of a stage's result must be where the core uses them without checking.
ITEM_TYPES: dict[str, type] = {"prompt": GenerationRequest, "generate": GenerationOutcome}


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
    status: str = "loaded"  # or "ignored": another distribution's plugin has the name
    note: str | None = None


def traceback_requested() -> bool:
    """True when ``SYNTHTUNE_TRACEBACK`` (or ``--traceback``) asks for original tracebacks."""
    return os.environ.get(TRACEBACK_ENV, "").lower() not in ("", "0", "false", "no")


def one_line(error: BaseException) -> str:
    """``Type: message`` on a single line (pluggy's validation errors span several lines)."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
            if len(kwargs) == len(self.argnames):  # takes every argument: pass them as they are
                result = self.function(**kwargs)
            else:
                result = self.function(**{name: kwargs[name] for name in self.argnames})
        except SynthtuneError:
            raise
        except Exception as error:
            raise PluginError(self.plugin, self.stage, error, _record_id(kwargs)) from error
        kind = type(result)
        if kind is list or kind is tuple:  # the common case first: prompt and format lists
            for item in result:
                self._check(item, kwargs)
            return result
        # Generators and coroutines (``async def`` hooks) run their body only when iterated or
        # awaited: guard that too.
        if isinstance(result, Coroutine):
            return self._guard_coroutine(result, _record_id(kwargs))
        if isinstance(result, AsyncIterator):
            return self._guard_async(result, _record_id(kwargs))
        if isinstance(result, Iterator):
            return self._guard(result, _record_id(kwargs))
        if isinstance(result, list | tuple):
            for item in result:
                self._check(item, kwargs)
        return result

    def _check(self, item: Any, kwargs: dict[str, Any] | None = None, record_id: str | None = None) -> Any:
        """``item`` if it has the type the stage promises (where the core relies on it)."""
        expected = ITEM_TYPES.get(self.stage)
        if expected is not None and not isinstance(item, expected):
            problem = TypeError(f"returned {type(item).__name__}, not a {expected.__name__}")
            record_id = record_id if kwargs is None else _record_id(kwargs)
            raise PluginError(self.plugin, self.stage, problem, record_id)
        return item

    def _guard(self, items: Iterator[Any], record_id: str | None) -> Iterator[Any]:
        try:
            for item in items:
                yield self._check(item, record_id=record_id)
        except SynthtuneError:
            raise
        except Exception as error:
            raise PluginError(self.plugin, self.stage, error, record_id) from error
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    async def _guard_coroutine(self, work: Coroutine[Any, Any, Any], record_id: str | None) -> Any:
        try:
            result = await work
        except SynthtuneError:
            raise
        except Exception as error:
            raise PluginError(self.plugin, self.stage, error, record_id) from error
        if isinstance(result, list | tuple):
            for item in result:
                self._check(item, record_id=record_id)
        return result

    async def _guard_async(
        self, items: AsyncIterator[Any], record_id: str | None = None
    ) -> AsyncIterator[Any]:
        try:
            async for item in items:
                yield self._check(item, record_id=record_id)
        except SynthtuneError:
            raise
        except Exception as error:
            raise PluginError(self.plugin, self.stage, error, record_id) from error
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()


def _record_id(kwargs: dict[str, Any]) -> str | None:
    """The id of the record a stage call works on (``record``, or ``sample.record``), if any."""
    record = kwargs.get("record")
    if record is None:
        record = getattr(kwargs.get("sample"), "record", None)
    record_id = getattr(record, "id", None)
    return record_id if isinstance(record_id, str) else None


@dataclass
class PluginHost:
    """Owns the pluggy manager: loads plugins, reports the broken ones, hands out stage calls."""

    pm: pluggy.PluginManager = field(default_factory=lambda: pluggy.PluginManager(PROJECT))
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # plugin name -> why it is not loaded
    shadowed: list[PluginInfo] = field(default_factory=list)  # same name as a loaded plugin
    _dists: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    _calls: dict[tuple[str, str], StageCall] = field(default_factory=dict)
    _reported: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.pm.add_hookspecs(hookspecs)

    # -- loading -----------------------------------------------------------------------------

    def load_entrypoints(self) -> None:
        """Load every plugin of the ``synthtune`` entry-point group, honouring the allow- and
        block-list environment variables (plugin or distribution names). Failures become one
        warning line each and an entry in :attr:`skipped`, never exceptions (see
        :mod:`synthtune.core.discovery` for the rules).

        When several installed distributions register the same plugin name, one is loaded (the
        bundled one, else the first by distribution name that loads) and a warning names them
        all; the others are listed in :attr:`shadowed` (``tune plugins list`` shows them)."""
        allow, block = name_list(LOAD_ENV), name_list(DISABLE_ENV) or set()
        by_name = entry_points_by_name()
        version: list[str | None] = []  # the installed synthtune's, looked up on first need

        def current() -> str | None:
            if not version:
                version.append(bundled_version(by_name))
            return version[0]

        for name, candidates in by_name.items():
            if self.pm.has_plugin(name):
                continue
            allowed = []
            for ep in candidates:
                reason = skip_reason(name, dist_info(ep)[0], allow, block)
                if reason is None:
                    allowed.append(ep)
                elif not allowed:
                    self.skipped[name] = reason
            loaded, failed = None, []
            for ep in allowed:
                if self._load(ep, current):
                    loaded = ep
                    break
                failed.append(ep)  # already warned about: the next one may load
            # Left out by the environment: the user's choice, not a clash to warn about.
            others = [ep for ep in allowed if ep is not loaded and ep not in failed]
            if loaded is not None and others:
                self._report_clash(name, loaded, others)

    def _load(self, ep: EntryPoint, current: Callable[[], str | None]) -> bool:
        """Import and register one entry point; False (with a warning) when that fails."""
        unmet = unmet_requirement(ep, current)
        if unmet is not None:
            self.skipped[ep.name] = unmet
            self.warnings.append(f"plugin {ep.name!r} was not loaded: {unmet}")
            return False
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as error:  # a broken plugin must not break the CLI
            self._warn(ep.name, "failed to import", error)
            return False
        return self.register(plugin, ep.name, dist_info(ep))

    def _report_clash(self, name: str, loaded: EntryPoint, others: list[EntryPoint]) -> None:
        winner = dist_label(loaded)
        for ep in others:
            dist, version = dist_info(ep)
            note = f"plugin name taken by {winner}"
            self.shadowed.append(
                PluginInfo(
                    name=name,
                    version=version,
                    distribution=dist,
                    module=ep.value,
                    hooks=[],
                    stages=[],
                    status="ignored",
                    note=note,
                )
            )
        fix = (
            "rename one of them"
            if dist_info(loaded)[0] == BUNDLED_DISTRIBUTION
            else f"uninstall one, or choose with {DISABLE_ENV}={dist_info(others[0])[0] or name}"
        )
        self.warnings.append(
            f"plugin name {name!r} is registered by {len(others) + 1} distributions: {winner} (loaded), "
            f"{', '.join(dist_label(ep) for ep in others)} (ignored); {fix}"
        )

    def register(
        self,
        plugin: object,
        name: str,
        dist_info: tuple[str | None, str | None] = (None, None),
    ) -> bool:
        """Register ``plugin`` under ``name``; on a bad hook, warn, unregister, return False."""
        try:
            self.pm.register(plugin, name=name)
        except Exception as error:  # pluggy's PluginValidationError: an argument not in the spec
            self._warn(name, "was not registered", error)
            return False
        unknown = [caller.name for caller in self.pm.get_hookcallers(plugin) or [] if not caller.spec]
        if unknown:
            self.pm.unregister(plugin)
            hooks, known = ", ".join(sorted(unknown)), ", ".join(hook_names())
            self._warn(name, "was not registered", ValueError(f"unknown hook(s) {hooks} (known: {known})"))
            return False
        self._dists[name] = dist_info
        self.skipped.pop(name, None)
        self._calls.clear()
        return True

    def unregister(self, name: str) -> None:
        """Remove the plugin registered as ``name``."""
        self.pm.unregister(name=name)
        self._dists.pop(name, None)
        self._calls.clear()

    @contextmanager
    def registered(self, plugin: object, name: str | None = None) -> Iterator[str]:
        """Register ``plugin`` for the duration of a ``with`` block, then unregister it.

        Yields the name it was registered under (default: the module's or class's name). Raises
        :class:`ConfigError` with the warning line if the plugin cannot be registered, so a test
        fails loudly instead of running without it.
        """
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if not self.register(plugin, name):
            line = self.warnings.pop()
            self.skipped.pop(name, None)
            raise ConfigError(line)
        try:
            yield name
        finally:
            if self.pm.get_plugin(name) is plugin:
                self.unregister(name)

    def _warn(self, name: str, what: str, error: BaseException) -> None:
        line = f"plugin {name!r} {what}: {one_line(error)}"
        self.skipped[name] = f"{what}: {one_line(error)}"
        if traceback_requested():
            line += "\n" + "".join(traceback.format_exception(error)).rstrip()
        self.warnings.append(line)

    def unreported_warnings(self) -> list[str]:
        """Warnings not yet returned by this method (each distinct line once); the CLI prints
        them before and after every command, so a broken plugin is named exactly once."""
        fresh = []
        for line in self.warnings:
            if line not in self._reported:
                self._reported.add(line)
                fresh.append(line)
        return fresh

    # -- queries -----------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(name for name, _ in self.pm.list_name_plugin() if name in self._dists)

    def plugin(self, name: str) -> object:
        plugin = self.pm.get_plugin(name)
        if plugin is None or name not in self._dists:
            if name in self.skipped:
                raise ConfigError(f"plugin {name!r} is not loaded: {self.skipped[name]}")
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
        infos += self.shadowed
        return sorted(infos, key=lambda info: (info.name, info.status != "loaded"))

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
                if model is None:
                    return NoSettings
                if not (isinstance(model, type) and issubclass(model, BaseModel)):
                    problem = TypeError(f"returned {model!r} for {stage!r}, not a pydantic model class")
                    raise PluginError(plugin_name, "stage_settings", problem)
                if RESERVED_SETTING in model.model_fields:
                    # The preset's `plugin` key names the plugin and is taken out before the
                    # settings are validated: this field would silently keep its default.
                    line = (
                        f"plugin {plugin_name!r} settings model {model.__name__} for {stage!r} has a "
                        f"field {RESERVED_SETTING!r}, which presets use to name the plugin: it never "
                        "gets a preset's value; rename it"
                    )
                    if line not in self.warnings:  # settings models are looked up on every resolve
                        self.warnings.append(line)
                return model
        return NoSettings

    def each(self, hook: str) -> Iterator[tuple[str, Callable[..., Any]]]:
        """(plugin name, function) for every registered implementation of a registration hook."""
        by_plugin = {id(p): n for n, p in self.pm.list_name_plugin()}
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            name = by_plugin.get(id(impl.plugin))
            if name in self._dists:
                yield name, impl.function


def hook_names() -> list[str]:
    """Every hook of the contract, in the order ``core/hookspecs.py`` declares them."""
    return [name for name in vars(hookspecs) if hasattr(getattr(hookspecs, name), f"{PROJECT}_spec")]


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
