"""What a preset may decide on its own, and what needs the user's word.

A preset is a file anyone can share, so it is read as data: it chooses plugins and their
settings, but it cannot choose where files go outside the run folder, which secret is read from
the environment, or, silently, where that secret is sent. Plugins mark the settings that matter
with the helpers below (a pydantic ``Field`` carrying a ``synthtune_trust`` marker), and
:func:`check_preset` applies the rules to every stage of a resolved preset:

- ``secret_env(...)``: the name of an environment variable holding a key. A preset file may only
  name one of the plugin's ``allowed`` names (the plugin documents them); any other name must be
  given on the command line (``--set generate.api_key_env=MY_KEY``).
- ``output_path(...)``: a folder or file the plugin writes. A preset file may only give a relative
  path without ``..``; anything else must be given on the command line.
- ``user_only(...)``: a switch a preset file may not turn (``trust_remote_code``).
- ``endpoint(...)``: a URL the plugin sends the key named by its ``key_field`` to. A preset file
  pointing it at a host that is neither one of ``known_hosts`` nor this machine is allowed, but
  ``tune run`` says so and asks first (or needs ``--yes``) when that key is set
  (:func:`confirm_endpoints`).

Preset names become folder names (``runs/NAME``), so they must be simple names
(:func:`check_name`), from the file or from ``--set name=...`` alike. Values given on the command
line and the user's environment (``$OPENAI_BASE_URL``) are the user's own and are trusted.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, Field
from synthtune.core.errors import ConfigError

TRUST_KEY = "synthtune_trust"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def secret_env(default: str, allowed: Iterable[str], description: str = "variable holding the key") -> Any:
    """A setting naming the environment variable a key is read from (see the module docstring)."""
    names: list[Any] = sorted(set(allowed) | {default})
    return Field(
        default=default,
        description=f"{description}; a preset file may name {', '.join(names)}",
        json_schema_extra={TRUST_KEY: "secret_env", "allowed": names},
    )


def output_path(description: str, default: str | None = None) -> Any:
    """A setting naming where a plugin writes (see the module docstring)."""
    return Field(default=default, description=description, json_schema_extra={TRUST_KEY: "output_path"})


def endpoint(description: str, known_hosts: Iterable[str], key_field: str = "api_key_env") -> Any:
    """A URL setting the key named by ``key_field`` is sent to. ``known_hosts`` may hold
    ``*.suffix`` patterns."""
    hosts: list[Any] = sorted(known_hosts)
    return Field(
        default=None,
        description=description,
        json_schema_extra={TRUST_KEY: "endpoint", "known_hosts": hosts, "key_field": key_field},
    )


def user_only(default: Any, description: str) -> Any:
    """A setting only the user may change (``--set``): a preset file may give its default only
    (e.g. a switch that runs code downloaded from elsewhere)."""
    return Field(default=default, description=description, json_schema_extra={TRUST_KEY: "user_only"})


def check_name(name: str, origin: str) -> None:
    """A preset name is a simple name: it becomes the folder ``runs/NAME``."""
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ConfigError(
            f"{origin}: preset name {name!r} must be a simple name (letters, digits, '.', '_', '-'; "
            "no '/' or '..'): it names the output folder runs/NAME. Use --out to write elsewhere"
        )


@dataclass(frozen=True)
class Endpoint:
    """A preset-chosen URL that is not a known host: the key in ``key_env`` would go there."""

    where: str  # e.g. "generate.base_url"
    url: str
    host: str
    key_env: str


def is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_known(host: str, known: Iterable[str]) -> bool:
    for pattern in known:
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
        if host == pattern:
            return True
    return False


def _marker(info: Any) -> dict[str, Any] | None:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) and extra.get(TRUST_KEY) else None


def check_stage(
    where: str,
    settings: BaseModel,
    from_file: dict[str, Any],
    on_command_line: Callable[[str], bool],
    origin: str,
) -> list[Endpoint]:
    """Apply the rules to one stage's settings. ``from_file`` is the stage's table as the preset
    file wrote it; ``on_command_line(field)`` says whether ``--set`` gave the field. Returns the
    endpoints the user should confirm; raises ConfigError for what a preset may not do."""
    endpoints: list[Endpoint] = []
    for name, info in type(settings).model_fields.items():
        marker = _marker(info)
        if marker is None or name not in from_file or on_command_line(name):
            continue
        value = getattr(settings, name)
        kind = marker[TRUST_KEY]
        if kind == "secret_env" and value not in marker["allowed"]:
            raise ConfigError(
                f"{origin}: [{where}] {name} = {value!r}: a preset may only read a key from "
                f"{', '.join(marker['allowed'])}; to use {value}, pass --set {where}.{name}={value}"
            )
        if kind == "output_path" and value:
            path = PurePath(str(value))
            if path.is_absolute() or ".." in path.parts or str(value).startswith("~"):
                raise ConfigError(
                    f"{origin}: [{where}] {name} = {value!r}: a preset may only name a relative path "
                    f"inside the run's folder; to write there, pass --set {where}.{name}={value}"
                )
        if kind == "user_only" and value != info.default:
            raise ConfigError(
                f"{origin}: [{where}] {name} = {value!r}: a preset may not set this; "
                f"pass --set {where}.{name}={value!r} to choose it yourself"
            )
        if kind == "endpoint" and value:
            host = (urlparse(str(value)).hostname or "").lower()
            if host and not is_local(host) and not is_known(host, marker["known_hosts"]):
                key_env = str(getattr(settings, marker["key_field"], "") or "")
                endpoints.append(Endpoint(f"{where}.{name}", str(value), host, key_env))
    return endpoints


def confirm_endpoints(
    endpoints: list[Endpoint],
    *,
    yes: bool,
    interactive: bool,
    say: Callable[[str], None],
    ask: Callable[[str], bool],
    origin: str,
) -> None:
    """Before a key goes to a host the preset chose: say so, and ask (or need ``--yes``).
    Nothing to ask when the key is not set (no secret would be sent)."""
    for point in endpoints:
        if not point.key_env or not os.environ.get(point.key_env):
            continue
        line = (
            f"{origin} sends your ${point.key_env} to {point.host} ({point.where} = {point.url}), "
            "which is not a known provider or this machine"
        )
        if yes:
            say(f"warning: {line}")
            continue
        if not interactive:
            raise ConfigError(f"{line}: pass --yes to send it, or --set {point.where}=... to change it")
        if not ask(f"{line}. Send the key there?"):
            raise ConfigError(f"not sending ${point.key_env} to {point.host}")


def check_preset(
    origin: str,
    file_data: dict[str, Any],
    override_paths: list[list[str]],
    stages: list[tuple[str, int | None, str, BaseModel]],
) -> list[Endpoint]:
    """Apply :func:`check_stage` to every stage of a preset: ``stages`` holds (table name,
    filter position or None, plugin, validated settings); ``file_data`` is the file as parsed,
    before any ``--set`` (``override_paths``)."""
    endpoints: list[Endpoint] = []
    filters = file_data.get("filter") or []
    if isinstance(filters, dict):
        filters = [filters]
    for table, position, plugin, settings in stages:
        if position is None:
            raw = file_data.get(table)
            selectors = {table}
        else:
            raw = filters[position] if isinstance(filters, list) and position < len(filters) else None
            selectors = {str(position), plugin}

        def given(field: str, table: str = table, selectors: set[str] = selectors) -> bool:
            for path in override_paths:
                if table == "filter" and len(path) >= 3 and path[1] in selectors and path[2] == field:
                    return True
                if table != "filter" and path[:2] == [table, field]:
                    return True
            return False

        where = table if position is None else f"filter.{position}"
        endpoints += check_stage(where, settings, raw if isinstance(raw, dict) else {}, given, origin)
    return endpoints
