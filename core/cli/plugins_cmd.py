"""``tune plugins list``: what is installed and which hooks each plugin implements."""

from __future__ import annotations

import json

import typer
from synthtune.core.plugins import PluginHost


def register(app: typer.Typer, host: PluginHost) -> None:
    group = typer.Typer(help="Installed plugins.", no_args_is_help=True)

    @group.command("list")
    def list_plugins(
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """List installed plugins: name, version, distribution and hooks.

        A plugin whose name another distribution's plugin already has is listed as ignored.
        """
        infos = host.info()
        if as_json:
            typer.echo(json.dumps([i.model_dump() for i in infos], indent=2))
            return
        for info in infos:
            version = f" {info.version}" if info.version else ""
            dist = f" ({info.distribution}{version})" if info.distribution else ""
            what = ", ".join(info.hooks) if info.status == "loaded" else f"{info.status}: {info.note}"
            typer.echo(f"{info.name}{dist}: {what}")

    app.add_typer(group, name="plugins")
