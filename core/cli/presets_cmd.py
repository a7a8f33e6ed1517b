"""``tune presets list|show``."""

from __future__ import annotations

import json

import typer
from synthtune.core.errors import ConfigError
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import available_presets, load_preset, parse_toml
from synthtune.core.terminal import printable
from synthtune.core.toml_out import dumps


def register(app: typer.Typer, host: PluginHost) -> None:
    group = typer.Typer(help="Bundled, plugin and user presets.", no_args_is_help=True)

    @group.command("list")
    def list_presets() -> None:
        """List every preset with its one-line description and where it comes from."""
        presets = available_presets(host)
        width = max((len(n) for n in presets), default=0)
        for name in sorted(presets):
            entry = presets[name]
            try:
                description = str(parse_toml(entry.text, entry.origin).get("description", ""))
            except ConfigError:
                description = "(invalid TOML)"
            line = f"{name.ljust(width)}  {description}  [{entry.provider}]"
            typer.echo(printable(line))

    @group.command("show")
    def show_preset(
        name: str = typer.Argument(..., help="Preset name or path to a .toml file."),
        set_: list[str] = typer.Option([], "--set", help="Override: STAGE.KEY=VALUE."),
        filter_: list[str] = typer.Option([], "--filter", help="Append a filter: PLUGIN (repeatable)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of TOML."),
    ) -> None:
        """Show a preset resolved: read over the presets it extends, every default filled in.

        Printed as TOML (a preset file that gives the same settings), or JSON with --json.
        Where it comes from is printed on stderr.
        """
        preset = load_preset(name, host, set_, filter_)
        extends = f" (extends {' <- '.join(preset.parents)})" if preset.parents else ""
        typer.echo(f"# {preset.origin}{extends}", err=True)
        if as_json:
            typer.echo(json.dumps(preset.as_dict(), indent=2))
        else:
            typer.echo(dumps(preset.as_dict()), nl=False)

    app.add_typer(group, name="presets")
