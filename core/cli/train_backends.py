"""``tune train --list-backends``: the installed trainer plugins and whether their credentials are
set (the variable's name, never its value)."""

from __future__ import annotations

import os

import typer
from synthtune.core.jobs.backend import Credential, job_backends
from synthtune.core.plugins import PluginHost


def trainer_credentials(host: PluginHost, name: str) -> list[Credential] | None:
    """The credentials a trainer reads: from its job backend, else from an ``api_key_env``
    default in its train settings; ``None`` when it needs none (a local trainer)."""
    backend = job_backends(host).get(name)
    if backend is not None:
        return backend.credentials()
    field = host.settings_model(name, "train").model_fields.get("api_key_env")
    if field is not None and isinstance(field.default, str):
        return [Credential(env=field.default, present=bool(os.environ.get(field.default)))]
    return None


def list_backends(host: PluginHost) -> None:
    rows = []
    for info in host.info():
        if "train" not in info.stages:
            continue
        credentials = trainer_credentials(host, info.name)
        if credentials is None:
            ready, detail = "yes", "no key needed (trains locally)"
        else:
            ready = "yes" if all(c.present for c in credentials if c.required) else "no"
            detail = ", ".join(
                f"{c.env} {'set' if c.present else 'not set'}{'' if c.required else ' (optional)'}"
                for c in credentials
            )
        package = f"{info.distribution} {info.version or ''}".strip() if info.distribution else "-"
        rows.append((info.name, package, ready, detail))
    width = max([len(r[0]) for r in rows] + [7])
    pwidth = max([len(r[1]) for r in rows] + [7])
    typer.echo(f"{'trainer':<{width}}  {'package':<{pwidth}}  ready  credentials")
    for name, package, ready, detail in rows:
        typer.echo(f"{name:<{width}}  {package:<{pwidth}}  {ready:<5}  {detail}")
